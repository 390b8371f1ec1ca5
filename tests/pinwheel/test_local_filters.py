"""pinwheel/models/local_filters.py: the locally connected layer, the dihedral augmentation, and how local filters are drawn."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pinwheel.analysis import topography as T
from pinwheel.configs import RunConfig, deep_merge, preset_by_id
from pinwheel.models.local_filters import LocallyConnected, dihedral
from tests.pinwheel.test_topography import gabor  # a Gabor of known orientation

torch.set_num_threads(1)


# ---- locally connected layer ------------------------------------------------------------------

@pytest.mark.parametrize("stride, grid", [(1, None), (3, None), (1, 7)])
def test_locally_connected_layer_equals_a_per_unit_loop(stride, grid):
    g = torch.Generator().manual_seed(0)
    layer = LocallyConnected((11, 11), 4, stride, g, grid)
    with torch.no_grad():
        layer.b.normal_(generator=g)
        layer.W_d.normal_(generator=g)
    x = torch.randn(3, 121, generator=g)
    z = layer.encode(x)
    img = x.view(3, 11, 11)
    offsets = layer.offsets
    if grid is not None:
        assert len(offsets) == 7 and offsets[0] == 0 and offsets[-1] == 11 - 4
    x_hat = torch.zeros(3, 11, 11)
    zz = torch.randn(3, layer.side**2, generator=g)
    for u in range(layer.side**2):
        r, c = offsets[u // layer.side], offsets[u % layer.side]
        patch = img[:, r:r + 4, c:c + 4].reshape(3, 16)
        torch.testing.assert_close(z[:, u], torch.relu(patch @ layer.W_e[u] + layer.b[u]))
        x_hat[:, r:r + 4, c:c + 4] += zz[:, u, None, None] * layer.W_d[u].view(4, 4)
    torch.testing.assert_close(layer.decode(zz), x_hat.view(3, -1).detach(), rtol=1e-5, atol=1e-5)


def test_dihedral_shows_each_image_under_one_of_the_eight_symmetries_of_the_square():
    rng = np.random.default_rng(0)
    imgs = rng.normal(size=(200, 5, 5))
    out = dihedral(torch.tensor(imgs.reshape(200, 25)), (5, 5), torch.Generator().manual_seed(0)).numpy()
    seen = set()
    for img, o in zip(imgs, out.reshape(200, 5, 5)):
        variants = [np.rot90(img, k) for k in range(4)] + [np.fliplr(np.rot90(img, k)) for k in range(4)]
        match = [i for i, v in enumerate(variants) if np.array_equal(o, v)]
        assert len(match) == 1
        seen.add(match[0])
    assert seen == set(range(8))
    # a grating of one orientation comes out at θ, π/2 − θ, π/2 + θ and −θ: its mean moment vanishes
    g = np.repeat(gabor(0.3, size=16)[None], 400, axis=0)
    turned = dihedral(torch.tensor(g.reshape(400, -1)), (16, 16), torch.Generator().manual_seed(1)).numpy()
    props = T.unit_properties(turned.reshape(400, 16, 16))
    assert abs(np.mean(props.selectivity * np.exp(2j * props.theta))) < 0.15


@pytest.mark.parametrize("model, layout", [({"grid": None, "stride": 1, "wrap": False}, "positions"),
                                           ({"grid": 12, "wrap": False}, "grid"),
                                           ({"grid": 28, "wrap": True}, "grid")])  # 2 units per pixel: 4 a field
def test_local_filters_are_drawn_without_covering_each_other(model, layout):
    """Fields at image positions when every unit has its own; on the unit grid when units share fields."""
    from pinwheel.data import build_dataset
    from pinwheel.models import build_model
    from pinwheel.panels import produce_panels

    cfg = RunConfig.model_validate(deep_merge(preset_by_id("pinwheels-local")["config"], {
        "model": {**model, "anneal_steps": 5}, "data": {"image_size": 14, "pool_size": 100}}))
    data = build_dataset(cfg.data, 0)
    net = build_model(cfg.model, data, torch.Generator().manual_seed(0))
    fg = produce_panels(net, data.probe(16)[0])["filter_grid"]
    assert fg["layout"]["type"] == layout and fg["count"] == net.side**2
    h, w = fg["tile"]
    if layout == "grid":
        assert fg["size"] == [net.side * (w + 1) + 1] * 2
        tiles = [((i % net.side) * (w + 1), (i // net.side) * (h + 1)) for i in range(fg["count"])]
    else:
        tiles = fg["tiles"]
    xy = np.array(tiles)
    dx, dy = np.abs(xy[:, None, 0] - xy[None, :, 0]), np.abs(xy[:, None, 1] - xy[None, :, 1])
    overlap = (dx < w) & (dy < h)
    np.fill_diagonal(overlap, False)
    assert not overlap.any()
