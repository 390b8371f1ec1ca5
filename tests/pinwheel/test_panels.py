"""Panel producers on real models and on synthetic filters whose answer is known."""
from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from pinwheel.configs import PRESETS, RunConfig, deep_merge
from pinwheel.data import build_dataset
from pinwheel.models import build_model
from pinwheel.panels import produce_panels, topographic_map


def png(text: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(text))))


def model_and_probe(groups: dict, units: int):
    cfg = RunConfig.model_validate(deep_merge(PRESETS[0]["config"], {
        "data": {"pool_size": 1000}, "model": {"units": units, "groups": groups}}))
    ds = build_dataset(cfg.data, 0)
    return build_model(cfg.model, ds, torch.Generator().manual_seed(0)), ds.probe(64)[0]


@pytest.mark.parametrize("groups,units,layout", [
    ({"kind": "torus_2d", "pool": 4, "stride": 2}, 64, "grid"),
    ({"kind": "blocks_1d", "size": 4}, 64, "groups"),
    ({"kind": "tree", "branching": 2, "depth": 4}, 15, "tree"),
])
def test_every_panel_of_the_group_sparse_model(groups, units, layout):
    model, probe = model_and_probe(groups, units)
    panels = produce_panels(model, probe)
    assert set(panels) == set(model.panel_kinds)
    json.dumps(panels)  # JSON-able
    fg = panels["filter_grid"]
    assert fg["layout"]["type"] == layout and fg["count"] == units
    img = png(fg["atlas_png"])
    assert img.shape == (fg["size"][1], fg["size"][0]) and len(np.unique(img)) > 30
    assert len(fg["stats"]["mean"]) == units and len(fg["groups"]) == units
    assert png(fg["encoder_png"]).shape == img.shape  # tied init: encoder atlas sent for small models
    ga = panels["group_activations"]
    assert len(ga["norms"]) == ga["n_groups"] == model.groups.n_groups and 0 <= ga["zero_share"] <= 1
    z = model.encode(probe).detach().numpy()
    np.testing.assert_allclose(ga["unit_mean"], z.mean(axis=0), atol=1e-3)
    sp = panels["sparsity"]
    assert sp["l0_mean"] == pytest.approx(float((z > 1e-6).sum(axis=1).mean()), abs=1e-3)
    assert sum(sp["abs_hist"]["counts"]) + sp["abs_hist"]["zeros"] == z.size
    rec = panels["reconstructions"]
    strip = png(rec["strip_png"])
    assert strip.shape == (2 * (12 + 1) + 1, rec["count"] * 13 + 1)


def grating(theta: float, size: int = 12, freq: float = 0.25) -> np.ndarray:
    """Stripes whose edges run along angle theta (x right, y down as on screen... y up in maths)."""
    yy, xx = np.mgrid[0:size, 0:size]
    k = (-np.sin(theta), np.cos(theta))  # wave vector perpendicular to the edge direction
    return np.cos(2 * np.pi * freq * (k[0] * xx + k[1] * yy))


def test_orientation_of_gratings_and_a_pinwheel_with_its_handedness():
    thetas = np.linspace(0, np.pi, 8, endpoint=False)
    est, sel = topographic_map.orientation_selectivity(np.stack([grating(t) for t in thetas]))
    circ = np.angle(np.exp(2j * (est - est[0])) / np.exp(2j * (thetas - thetas[0]))) / 2
    assert np.abs(circ).max() < 0.15  # orientation differences are recovered
    assert (sel > 0.5).all()
    # a map whose orientation is half the polar angle around the centre holds one pin-wheel
    n = 10
    yy, xx = np.mgrid[0:n, 0:n] - (n - 1) / 2
    field = np.mod(0.5 * np.arctan2(yy, xx), np.pi)
    found = [p for p in topographic_map.pinwheels(field) if 2 < p[0] < 7 and 2 < p[1] < 7]
    assert len(found) == 1 and abs(found[0][2]) == 1
    mirrored = [p for p in topographic_map.pinwheels(np.mod(-field, np.pi)) if 2 < p[0] < 7 and 2 < p[1] < 7]
    assert mirrored[0][2] == -found[0][2]
    smooth = np.mod(np.mgrid[0:n, 0:n][1] * np.pi / n, np.pi)
    rng = np.random.default_rng(0)
    assert topographic_map.smoothness(smooth) > 0.7 > topographic_map.smoothness(rng.uniform(0, np.pi, (n, n)))
