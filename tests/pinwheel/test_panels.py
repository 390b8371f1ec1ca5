"""Panel producers on real models and on synthetic filters whose answer is known."""
from __future__ import annotations

import base64
import io
import json
import time

import numpy as np
import pytest
import torch
from PIL import Image

from pinwheel.configs import PRESETS, RunConfig, deep_merge
from pinwheel.data import build_dataset
from pinwheel.models import build_model
from pinwheel.panels import produce_panels


def png(text: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(text))))


def model_and_probe(groups: dict, units: int):
    cfg = RunConfig.model_validate(deep_merge(PRESETS[0]["config"], {
        # plain global filters: retinotopic windows need a torus, and blocks and trees are not one
        "data": {"pool_size": 1000}, "model": {"units": units, "groups": groups, "retinotopy": None}}))
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
    # the orientation map only where units lie on a 2-D grid: absent for 1-D blocks and trees
    spatial = set(model.panel_kinds) if layout == "grid" else set(model.panel_kinds) - {"topographic_map"}
    assert set(panels) == spatial
    json.dumps(panels)  # JSON-able
    fg = panels["filter_grid"]
    assert fg["layout"]["type"] == layout and fg["count"] == units
    img = png(fg["atlas_png"])
    assert img.shape == (fg["size"][1], fg["size"][0]) and len(np.unique(img)) > 30
    assert len(fg["stats"]["mean"]) == units
    if layout == "grid":  # torus pools go as the rule that made them (the renderer lists a unit's pools)
        assert fg["group_rule"] == {"type": "torus_2d", "side": 8, "pool": groups["pool"], "stride": groups["stride"]}
    else:
        assert len(fg["groups"]) == units
    assert png(fg["encoder_png"]).shape == img.shape  # tied init: encoder atlas sent for small models
    ga = panels["group_activations"]
    assert len(ga["norms"]) == ga["n_groups"] == model.groups.n_groups and 0 <= ga["zero_share"] <= 1
    z = model.encode(probe).detach().numpy()
    np.testing.assert_allclose(ga["unit_mean"], z.mean(axis=0), atol=1e-3)
    sp = panels["sparsity"]
    assert sp["l0_mean"] == pytest.approx(float((z > 1e-6).sum(axis=1).mean()), abs=1e-3)
    assert sum(sp["abs_hist"]["counts"]) + sp["abs_hist"]["zeros"] == z.size
    active = np.abs(z[np.abs(z) > 1e-6])
    reference, _ = np.histogram(np.clip(active, sp["abs_hist"]["edges"][0], None), bins=sp["abs_hist"]["edges"])
    assert abs(reference - np.array(sp["abs_hist"]["counts"])).sum() <= 2  # edges are sent rounded to 5 decimals
    rec = panels["reconstructions"]
    strip = png(rec["strip_png"])
    assert strip.shape == (2 * (12 + 1) + 1, rec["count"] * 13 + 1)


# ---- tree_inhibition, interaction_matrix, drsae_units, atlas size, reuse of slow kinds ----------

from pinwheel.analysis import unit_types  # noqa: E402
from pinwheel.configs import preset_by_id  # noqa: E402
from pinwheel.panels import MIN_INTERVAL  # noqa: E402
from pinwheel.panels import filter_grid as filter_grid_panel  # noqa: E402


def preset_model(preset: str, override: dict, steps: int = 0):
    cfg = RunConfig.model_validate(deep_merge(preset_by_id(preset)["config"], override))
    ds = build_dataset(cfg.data, 0)
    g = torch.Generator().manual_seed(0)
    model = build_model(cfg.model, ds, g)
    opt = model.make_optimizer(cfg.train.lr)
    for s in range(steps):
        x, y = ds.batch(32, g)
        model.train_step(x, y, s, opt)
    model.eval()
    return model, *ds.probe(64)


def test_tree_inhibition_shows_the_model_s_in_tree_order_with_the_mask():
    model, x, y = preset_model("lateral-tree", {"data": {"pool_size": 1000}, "model": {"inference_steps": 10}}, steps=3)
    panels = produce_panels(model, x, y)
    assert "tree_inhibition" in panels and "interaction_matrix" not in panels  # S is shown once, with the tree
    json.dumps(panels)
    p = panels["tree_inhibition"]
    m = model.config.units
    assert p["parents"] == model.parents.tolist() and p["count"] == m
    assert p["depth"][0] == 0 and max(p["depth"]) == model.config.mask.depth - 1
    s = model.S.numpy()
    mat = p["matrix"]
    order = mat["order"]
    assert sorted(order) == list(range(m)) and order[0] == 0 and order[1] == 1 and order[2] == 4  # depth first
    assert [b[1] for b in mat["blocks"]] == [13, 13, 13]  # three subtrees under the root
    img = png(mat["png"]).astype(float)
    np.testing.assert_allclose(img / 255 * mat["scale"], s[np.ix_(order, order)], atol=mat["scale"] / 255 + 1e-6)
    assert mat["scale"] == pytest.approx(float(s.max()), rel=1e-4) and not mat["signed"]
    mask = png(mat["mask_png"]) > 0
    np.testing.assert_array_equal(mask, model.mask.numpy()[np.ix_(order, order)])
    assert not mask[0].any()  # the root is on every branch: it inhibits nobody
    z = model.encode(x).abs().numpy()
    np.testing.assert_allclose(p["activity"], z.mean(axis=0), atol=1e-3)
    np.testing.assert_allclose(p["inhibition"], (z @ s).mean(axis=0), atol=1e-3)
    atlas = png(p["atlas_png"])
    assert atlas.shape == (1 + 6 * 9, 1 + 7 * 9) and len(np.unique(atlas)) > 30  # 40 tiles of 8×8: 7 a row, 6 rows
    # the tree's result, by brute force over pairs: |cos| of decoder filters on one root-to-leaf branch / across
    f = model.W_d.detach().numpy().T.astype(np.float64)  # (m, n): atom i of unit i
    f /= np.linalg.norm(f, axis=1, keepdims=True)

    def ancestors(i):
        out = set()
        while model.parents[i] >= 0:
            i = int(model.parents[i])
            out.add(i)
        return out

    within, across = [], []
    for i in range(m):
        for j in range(m):
            if i != j:
                (within if j in ancestors(i) or i in ancestors(j) else across).append(abs(f[i] @ f[j]))
    b = p["branch"]
    assert b["within"] == pytest.approx(np.mean(within), abs=1e-4) and b["across"] == pytest.approx(np.mean(across), abs=1e-4)
    assert b["ratio"] == pytest.approx(np.mean(within) / np.mean(across), abs=2e-3)
    assert 0.7 < b["relabelled_mean"] < 1.3 and 0 < b["relabelled_std"] < 0.5  # chance: the filters dealt at random


def test_interaction_matrix_of_drsae_is_signed_and_shows_the_most_active_units():
    model, x, y = preset_model("drsae-mnist", {"data": {"kind": "sklearn_digits", "train_size": 1200, "test_size": 300},
                                               "model": {"units": 100, "steps": 4}}, steps=3)
    p = produce_panels(model, x, y)["interaction_matrix"]
    s = model.S.detach().numpy()
    z = model.encode(x).detach().numpy()
    assert p["signed"] and p["units"] == 100 and p["shown"] == 64 and "most active" in p["selection"]
    top = set(np.argsort(-z.mean(axis=0), kind="stable")[:64].tolist())
    assert set(p["order"]) == top and p["order"] == sorted(p["order"])
    sub = s[np.ix_(p["order"], p["order"])]
    off = ~np.eye(64, dtype=bool)
    assert p["scale"] == pytest.approx(float(np.abs(sub[off]).max()), rel=1e-4)
    vals = (png(p["png"]).astype(float) - 127.5) / 127.5 * p["scale"]
    np.testing.assert_allclose(vals[off], sub[off], atol=p["scale"] / 127 + 1e-6)
    assert p["diag_mean"] == pytest.approx(float(np.diag(s).mean()), abs=1e-4)


def test_drsae_units_match_the_unit_type_analysis():
    model, x, y = preset_model("drsae-mnist", {"data": {"kind": "sklearn_digits", "train_size": 1200, "test_size": 300},
                                               "model": {"units": 100, "steps": 5, "unsupervised_steps": 0}}, steps=20)
    p = produce_panels(model, x, y)["drsae_units"]
    json.dumps(p)
    ref = unit_types.split(model, x, y, 10)
    assert p["counts"] == ref["counts"] and sum(p["counts"].values()) == 100 and p["labels_from"] == "data"
    codes = {"dead": 0, "part": 1, "categorical": 2}
    assert p["kinds"] == [codes[str(k)] for k in ref["labels"]]
    np.testing.assert_allclose(p["selectivity"], ref["stats"]["selectivity"], atol=6e-3)
    traj = [t.detach().numpy() for t in model.trajectory(x)]
    assert p["steps"] == 5 and len(p["buildup"]["part"]["mean"]) == 5
    part = ref["labels"] == "part"
    if part.any():
        np.testing.assert_allclose(p["buildup"]["part"]["mean"], [t[:, part].mean() for t in traj], atol=1e-4)
        assert p["buildup"]["part"]["relative"][-1] == pytest.approx(1.0)
    cols = png(p["columns_png"])
    th, tw = p["tile"]
    assert (th, tw) == (8, 8) and cols.shape == (1 + 2 * 9, 1 + 12 * 9)
    for row, units in enumerate(p["columns"]):
        assert all(ref["labels"][u] == ("categorical", "part")[row] for u in units)
        for k, u in enumerate(units):  # the tile is unit u's decoder column, contrast-normalised
            tile = cols[1 + row * 9:1 + row * 9 + 8, 1 + k * 9:1 + k * 9 + 8].astype(float)
            d = model.D.detach().numpy()[:, u].reshape(8, 8)
            assert np.corrcoef(tile.ravel(), d.ravel())[0, 1] > 0.99
    p_unlabelled = produce_panels(model, x, None)["drsae_units"]
    assert p_unlabelled["labels_from"] == "predicted"


def test_big_filter_banks_are_shrunk_to_keep_frames_small():
    model, x, y = preset_model("drsae-mnist", {"model": {"units": 400, "steps": 3}}, steps=0)
    panels = produce_panels(model, x, y)
    fg = panels["filter_grid"]
    assert fg["source_tile"] == [28, 28] and fg["tile"] == [9, 9] and fg["count"] == 400
    img = png(fg["atlas_png"])
    assert img.shape == (fg["size"][1], fg["size"][0]) == (1 + 20 * 10, 1 + 20 * 10)
    for i in range(400):  # per-filter contrast survives shrinking: every tile reaches black or white
        r, c = divmod(i, 20)
        tile = img[1 + r * 10:10 + r * 10, 1 + c * 10:10 + c * 10].astype(int)
        assert max(tile.max() - 128, 128 - tile.min()) >= 120
    assert len(json.dumps(fg)) < 45_000 and len(json.dumps(panels)) < 70_000
    small = filter_grid_panel.tile_size(256, 12, 12)
    assert small == (12, 12)  # the 256-unit 12×12 bank is drawn at full size


def test_slow_kinds_are_reused_within_their_interval_and_marked():
    model, x, y = preset_model("lateral-tree", {"data": {"pool_size": 1000}, "model": {"inference_steps": 5}})
    t = [100.0]
    first = produce_panels(model, x, y, step=10, clock=lambda: t[0])
    assert "as_of_step" not in first["tree_inhibition"]
    with torch.no_grad():
        model.W_d.mul_(-1)  # a visible change
    t[0] += MIN_INTERVAL["tree_inhibition"] / 2
    second = produce_panels(model, x, y, step=20, clock=lambda: t[0])
    assert second["tree_inhibition"]["as_of_step"] == 10
    assert second["tree_inhibition"]["atlas_png"] == first["tree_inhibition"]["atlas_png"]
    assert second["filter_grid"]["atlas_png"] != first["filter_grid"]["atlas_png"]  # fast kinds every frame
    last = produce_panels(model, x, y, step=25, fresh=True, clock=lambda: t[0])  # a run's last frame
    assert "as_of_step" not in last["tree_inhibition"]
    t[0] += MIN_INTERVAL["tree_inhibition"]
    third = produce_panels(model, x, y, step=30, clock=lambda: t[0])
    assert "as_of_step" not in third["tree_inhibition"]
    assert third["tree_inhibition"]["atlas_png"] != first["tree_inhibition"]["atlas_png"]


class SlowRecorder:
    """Frame callbacks that take their time, so the loop runs ahead of the streamer thread."""

    def __init__(self, delay: float = 0.0, stop_after: int | None = None):
        self.frames, self.checkpoints, self.delay, self.stop_after = [], [], delay, stop_after

    def on_frame(self, frame):
        time.sleep(self.delay)
        self.frames.append(frame)

    def on_checkpoint(self, state, weights):
        self.checkpoints.append((state, weights))

    def should_stop(self):
        return self.stop_after is not None and self.frames[-1]["step"] >= self.stop_after


def streamed_config() -> RunConfig:
    return RunConfig.model_validate(deep_merge(PRESETS[0]["config"], {
        "data": {"pool_size": 1000}, "model": {"units": 16, "groups": {"pool": 2, "stride": 2}},
        "train": {"steps": 40, "batch_size": 32, "frame_every_steps": 5, "frame_every_seconds": 100}}))


def test_frames_are_made_from_a_snapshot_of_their_step_while_training_runs_ahead():
    from pinwheel.train import train

    fast, slow = SlowRecorder(), SlowRecorder(delay=0.15)
    assert train(streamed_config(), fast) == "succeeded" and train(streamed_config(), slow) == "succeeded"
    assert [f["step"] for f in slow.frames] == list(range(0, 41, 5)) == [f["step"] for f in fast.frames]
    for a, b in zip(fast.frames, slow.frames):  # the same panels although the loop was steps ahead of the slow one
        for kind in ("filter_grid", "reconstructions", "sparsity"):
            assert a["panels"][kind] == b["panels"][kind], (a["step"], kind)
        assert a["metrics"] == b["metrics"]
    assert fast.frames[1]["panels"]["filter_grid"] != fast.frames[-1]["panels"]["filter_grid"]  # filters did move


def test_a_cancel_seen_late_checkpoints_the_state_of_its_frame():
    from pinwheel.train import train

    straight = SlowRecorder()
    train(streamed_config(), straight)
    first = SlowRecorder(delay=0.15, stop_after=10)
    assert train(streamed_config(), first) == "cancelled"
    assert [f["step"] for f in first.frames] == [0, 5, 10]  # nothing delivered after the frame that stopped it
    state = first.checkpoints[-1][0]
    assert state["step"] == 10
    resumed = SlowRecorder()
    train(streamed_config(), resumed, resume=state)
    np.testing.assert_allclose(resumed.checkpoints[-1][1]["W_d"], straight.checkpoints[-1][1]["W_d"], rtol=1e-5, atol=1e-6)
    assert resumed.frames[-1]["panels"]["filter_grid"] == straight.frames[-1]["panels"]["filter_grid"]


def test_conv_stack_filter_grid_has_one_labelled_block_per_layer():
    from pinwheel.panels.filter_grid import BG, LABEL_H
    from pinwheel.panels._util import grey_tiles

    model, x, _ = preset_model("conv-stack", {}, steps=2)
    fg = produce_panels(model, x)["filter_grid"]
    layers = fg["layout"]["layers"]
    l1, l2 = model.layers[0], model.layers[1]
    k1, k2, c2 = l1.config.kernel, l2.config.kernel, l1.groups.n_groups
    assert fg["layout"]["type"] == "layers" and fg["count"] == l1.config.maps + l2.config.maps == len(fg["tiles"])
    assert [(d["first"], d["count"], d["tile"], d["channels"]) for d in layers] == [
        (0, l1.config.maps, [k1, k1], 1), (l1.config.maps, l2.config.maps, [k2, c2 * k2], c2)]
    assert layers[0]["label"].startswith("layer 1") and layers[1]["label"].startswith("layer 2")
    assert str(c2) in layers[1]["label"]
    image = png(fg["atlas_png"])
    assert list(image.shape[::-1]) == fg["size"]
    for d in layers:  # the label band above each block is empty background
        assert (image[d["top"]:d["top"] + LABEL_H] == BG).all()
        x0, y0 = fg["tiles"][d["first"]]
        assert y0 >= d["top"] + LABEL_H
    levels = lambda t: grey_tiles(t[None])[0] >> 2 << 2  # noqa: E731 — the atlas quantises to 64 grey levels
    j = 5  # a layer-2 map: its kernel over each pooled group of layer 1, side by side
    x0, y0 = fg["tiles"][l1.config.maps + j]
    w2 = l2.W_d.detach().numpy()[j]  # (C, k, k)
    np.testing.assert_array_equal(image[y0:y0 + k2, x0:x0 + c2 * k2], levels(np.concatenate(list(w2), axis=1)))
    x0, y0 = fg["tiles"][3]
    np.testing.assert_array_equal(image[y0:y0 + k1, x0:x0 + k1], levels(l1.W_d.detach().numpy()[3, 0]))
    assert len(fg["stats"]["norm"]) == fg["count"]


# ---- the orientation map only where its measure is defined (issue 14, item 2) ------------------

@pytest.mark.parametrize("preset,override,present", [
    ("topographic-natural", {"data": {"pool_size": 1000}, "model": {"units": 64}}, True),
    ("lateral-2d", {"data": {"pool_size": 1000}, "model": {"units": 64, "row_sum": 10.0}}, True),
    ("lateral-tree", {"data": {"pool_size": 1000}}, False),
])
def test_orientation_map_only_for_units_with_a_spatial_layout(preset, override, present):
    model, probe, _ = preset_model(preset, override)
    panels = produce_panels(model, probe)
    assert ("topographic_map" in panels) is present
    if present:
        tm = panels["topographic_map"]
        assert tm["rows"] * tm["cols"] == panels["filter_grid"]["count"] and tm["layout"] == "grid"


def test_orientation_map_of_local_filters_uses_their_positions():
    override = {"data": {"pool_size": 200}}
    model, probe, _ = preset_model("pinwheels-local", override)
    tm = produce_panels(model, probe)["topographic_map"]
    assert (tm["rows"], tm["cols"]) == (model.side, model.side) and tm["layout"] in ("positions", "grid")


def test_a_kind_whose_producer_returns_none_is_left_out(monkeypatch):
    import pinwheel.panels as registry

    model, probe = model_and_probe({"kind": "torus_2d", "pool": 4, "stride": 2}, 64)
    monkeypatch.setitem(registry.PANELS, "sparsity", lambda model, probe_x: None)
    for step in (1, 2):  # also with reuse between intervals (a None is never cached and re-sent)
        panels = produce_panels(model, probe, step=step)
        assert "sparsity" not in panels and "filter_grid" in panels


@pytest.mark.parametrize("preset,override,wraps", [
    ("topographic-natural", {"data": {"pool_size": 1000}, "model": {"units": 64}}, True),  # a torus
    ("pinwheels-local", {"data": {"pool_size": 200}}, True),  # a torus of units over a periodic image
    ("pinwheels-local", {"data": {"pool_size": 200}, "model": {"wrap": False}}, False),  # units over an image: edges
    ("lateral-2d", {"data": {"pool_size": 1000}, "model": {"units": 64, "row_sum": 10.0,
                                                           "mask": {"kind": "grid", "radius": 1.5, "wrap": False}}}, False),
])
def test_map_smoothness_wraps_only_on_a_torus(preset, override, wraps):
    """Smoothness over neighbours across opposite edges belongs to a torus only (it was applied to
    every unit grid, the local filters' included)."""
    from pinwheel.analysis import topography

    model, probe, _ = preset_model(preset, override)
    tm = produce_panels(model, probe)["topographic_map"]
    bank = model.filter_bank()
    omap = topography.orientation_map(np.asarray(bank["filters"]), (tm["rows"], tm["cols"]))
    border = 0 if wraps else bank["layout"].get("border", 0)  # a plain grid's map is read inside its border band
    expected = topography.summarise(omap, wrap=wraps, border=border).smoothness
    assert tm["smoothness"] == pytest.approx(round(float(expected), 4))
    other = topography.summarise(omap, wrap=not wraps, border=0).smoothness
    assert round(float(other), 4) != round(float(expected), 4)  # the two readings differ here
