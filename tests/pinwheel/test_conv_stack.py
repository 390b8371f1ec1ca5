"""pinwheel/models/conv_stack.py: the conv group-sparse layer's L2 pooling and its adjoint decoder."""
from __future__ import annotations

import math

import pytest
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


# ---- initialisation on the layer's own input -------------------------------------------------------

def test_init_from_data_gives_unit_patches_and_the_least_squares_scale():
    layer = conv_layer(kernel=3)
    h = torch.rand(4, 2, 9, 9) * (torch.rand(4, 1, 9, 9) > 0.5)  # two-channel "images" with empty areas
    layer.init_from_(h, torch.Generator().manual_seed(1), from_data=True)
    w = layer.W_d.detach().flatten(1)  # (K, C·k²)
    assert torch.equal(layer.W_e, layer.W_d) and torch.allclose(w.norm(dim=1), torch.ones(8), atol=1e-5)
    patches = torch.nn.functional.unfold(h, 3, padding=1).transpose(1, 2).reshape(-1, 18)
    cos = (w @ patches.T) / (patches.norm(dim=1).clamp_min(1e-8))  # each filter is (nearly) one of the patches
    assert (cos.max(dim=1).values > 0.95).all()
    # g is the closed-form least-squares scale: d/ds ½‖h − s·ĥ‖² = 0 at s = 1, i.e. ⟨h − ĥ, ĥ⟩ = 0
    with torch.no_grad():
        recon = layer.decode(layer.encode(h))
    assert abs(float(((h - recon) * recon).sum())) < 1e-4 * float(recon.pow(2).sum())
    assert torch.all(layer.b == 0)


def test_random_init_keeps_gaussian_filters_but_fits_the_scale():
    layer = conv_layer(kernel=5)
    before = layer.W_d.detach().clone()
    h = torch.rand(3, 2, 11, 11)
    with torch.no_grad():
        too_big = layer.decode(layer.encode(h)).norm() / h.norm()
    layer.init_from_(h, torch.Generator().manual_seed(0), from_data=False)
    with torch.no_grad():
        recon = layer.decode(layer.encode(h))
    assert torch.equal(layer.W_d, before) and too_big > 2  # unscaled, ĥ sums k² overlapping filters
    assert float((h - recon).norm()) < float(h.norm())  # the fitted scale makes it a (poor) reconstruction


# ---- the probe over splits -------------------------------------------------------------------------

def test_probe_over_splits_is_paired_logistic_regression_on_disjoint_splits():
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from pinwheel.models.conv_stack import probe_over_splits

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 150)
    pixels = rng.normal(size=(150, 6)) + 0.3 * y[:, None]
    better = np.concatenate([pixels, 2.0 * y[:, None] + rng.normal(size=(150, 1))], axis=1)
    out = probe_over_splits({"pixels": pixels, "layer1": better}, y, splits=3, train_size=100, seed=7)
    assert out["probe_train"] == 100 and out["probe_test"] == 50
    for s in range(3):  # the same accuracies as scikit-learn on the split the docstring defines
        order = np.random.default_rng(7 + s).permutation(150)
        tr, te = order[:100], order[100:]
        assert not set(tr) & set(te)
        for name, f in (("pixels", pixels), ("layer1", better)):
            scaler = StandardScaler().fit(f[tr])
            clf = LogisticRegression(max_iter=300, C=0.1).fit(scaler.transform(f[tr]), y[tr])
            assert out["accuracy"][name][s] == clf.score(scaler.transform(f[te]), y[te])
    gains = np.asarray(out["accuracy"]["layer1"]) - np.asarray(out["accuracy"]["pixels"])
    assert out["gain_layer1"] == list(gains) and out["gain_layer1_mean"] == float(gains.mean()) > 0.1
    assert math.isclose(out["gain_layer1_std"], float(np.std(gains, ddof=1)))
    assert out["gain_layer1_min"] <= out["gain_layer1_mean"] <= out["gain_layer1_max"]
    for bad in ({"train_size": 150}, {"train_size": 0}, {"splits": 1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            probe_over_splits({"pixels": pixels}, y, **{"splits": 3, "train_size": 100, **bad})
