"""pinwheel/models/conv_stack.py: the conv group-sparse layer's L2 pooling and its adjoint decoder."""
from __future__ import annotations

import math

import torch

from pinwheel.configs.conv_stack import ConvLayerConfig
from pinwheel.models.conv_stack import ConvGroupSparseLayer

torch.set_num_threads(1)


# ---- conv layer: L2 pooling and the adjoint -----------------------------------------------------

def conv_layer(**kw) -> ConvGroupSparseLayer:
    cfg = ConvLayerConfig(**{"maps": 8, "kernel": 3, "groups": {"kind": "blocks_1d", "size": 4}, **kw})
    return ConvGroupSparseLayer(cfg, 2, torch.Generator().manual_seed(0))


def test_l2_pooling_equals_the_group_norm():
    layer = conv_layer(groups={"kind": "windows_1d", "size": 3, "stride": 2}, neighbourhood=1, pool_stride=1)
    z = torch.randn(2, 8, 5, 6)
    p = layer.pool(z)  # (2, G, 5, 6)
    per_position = z.permute(0, 2, 3, 1).reshape(-1, 8)
    expect = layer.groups.group_norms(per_position).view(2, 5, 6, -1).permute(0, 3, 1, 2)
    torch.testing.assert_close(p, expect, rtol=1e-5, atol=1e-6)


def test_l2_pooling_over_a_neighbourhood_with_stride_matches_the_formula():
    layer = conv_layer(neighbourhood=3, pool_stride=2)
    z = torch.randn(1, 8, 5, 5)
    p = layer.pool(z)
    assert p.shape == (1, 2, 3, 3)
    for j, members in enumerate([range(0, 4), range(4, 8)]):
        for pr in range(3):
            for pc in range(3):
                r, c = 2 * pr, 2 * pc
                e = sum(float(z[0, i, rr, cc]) ** 2 for i in members
                        for rr in range(r - 1, r + 2) for cc in range(c - 1, c + 2) if 0 <= rr < 5 and 0 <= cc < 5)
                assert math.isclose(float(p[0, j, pr, pc]), math.sqrt(e + 1e-8), rel_tol=1e-5)


def test_transposed_conv_decoder_is_the_adjoint_of_the_conv():
    layer = conv_layer(kernel=5)
    x, y = torch.randn(2, 2, 9, 7, dtype=torch.float64), torch.randn(2, 8, 9, 7, dtype=torch.float64)
    w = layer.W_d.detach().double()
    lhs = (layer.conv(x, w) * y).sum()  # ⟨A x, y⟩
    rhs = (x * layer.conv_t(y, w)).sum()  # ⟨x, Aᵀ y⟩
    assert abs(float(lhs - rhs)) < 1e-9 * float(lhs.abs() + 1)
