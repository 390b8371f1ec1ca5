"""tree_inhibition, interaction_matrix and drsae_units drawing real data of short real runs in Chromium
(lateral inhibition on a tree, lateral inhibition on a 2-D grid, DrSAE on the sklearn digits)."""
from __future__ import annotations

import pytest

from ..conftest import launch_and_finish

pytestmark = pytest.mark.browser

RUNS = {
    "tree": {"preset": "lateral-tree", "config": {
        "data": {"pool_size": 2000}, "model": {"inference_steps": 15},
        "train": {"steps": 30, "batch_size": 64, "frame_every_steps": 10, "frame_every_seconds": 0.2}}},
    "grid": {"preset": "lateral-2d", "config": {
        "data": {"pool_size": 2000}, "model": {"units": 64, "row_sum": 10.0, "inference_steps": 15},
        "train": {"steps": 30, "batch_size": 64, "frame_every_steps": 10, "frame_every_seconds": 0.2}}},
    "drsae": {"preset": "drsae-mnist", "config": {
        "data": {"kind": "sklearn_digits", "train_size": 1200, "test_size": 300},
        "model": {"units": 64, "steps": 5, "unsupervised_steps": 10},
        "train": {"steps": 40, "batch_size": 64, "frame_every_steps": 10, "frame_every_seconds": 0.2}}},
}

COLOURS = """kind => {
    const c = document.querySelector(`canvas[data-panel=${kind}]`);
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const greys = new Set(), hues = new Set(); let orange = 0, blue = 0, viridis = 0;
    for (let i = 0; i < d.length; i += 4) {
        const [r, g, b] = [d[i], d[i + 1], d[i + 2]];
        if (r === g && g === b) greys.add(r);
        if (Math.max(r, g, b) - Math.min(r, g, b) > 40) hues.add(`${r >> 4},${g >> 4},${b >> 4}`);
        if (r === 230 && g === 119 && b === 0) orange++;
        if (r === 59 && g === 91 && b === 219) blue++;
        if (g > r && b > 60 && g > 60 && r < 120) viridis++;
    }
    return {w: c.width, h: c.height, greys: greys.size, hues: hues.size, orange, blue, viridis};
}"""


@pytest.fixture(scope="module")
def runs(stack):
    import httpx

    from tests.services import auth_headers

    out = {}
    with httpx.Client(base_url=stack["url"], timeout=30, headers=auth_headers()) as client:
        for name, run in launch_and_finish(client, RUNS, "panels", timeout=240).items():
            frames = client.get(f"/api/runs/{run['id']}/frames", params={"panels": False, "limit": 100}).json()["frames"]
            last = client.get(f"/api/runs/{run['id']}/frames", params={"from_step": frames[-1]["step"], "limit": 1}).json()
            out[name] = {**run, "last": frames[-1]["step"], "panels": last["frames"][0]["panels"]}
    return out


PAGE_OPTIONS = {"viewport": {"width": 1400, "height": 1200}}


def open_run(page, stack, run, kinds):
    page.goto(f"{stack['url']}/#/runs/{run['id']}")
    for kind in kinds:
        page.wait_for_function(f"s => +document.querySelector('canvas[data-panel={kind}]')?.dataset.drawnStep === s",
                               arg=run["last"], timeout=20_000)


def test_tree_inhibition_draws_the_tree_of_filters_and_s(stack, page, runs, artifacts_dir):
    run = runs["tree"]
    assert "interaction_matrix" not in run["panels"]  # S is drawn with the tree
    open_run(page, stack, run, ["tree_inhibition"])
    px = page.evaluate(COLOURS, "tree_inhibition")
    assert px["greys"] > 60  # filter pictures (contrast-normalised grey tiles)
    assert px["viridis"] > 2000  # the S heat map and the node frames
    # every node's picture is where the layout put it: hovering its centre names the unit
    page.locator("canvas[data-panel=tree_inhibition]").scroll_into_view_if_needed()  # below the Results card: in view to hover
    box = page.locator("canvas[data-panel=tree_inhibition]").bounding_box()
    nodes = page.evaluate("() => document.querySelector('canvas[data-panel=tree_inhibition]').width")
    assert nodes == px["w"]
    root_x = (px["w"] - 300) / 2  # the root sits mid-tree; the tree is the canvas less S and its colour bar (300 px)
    page.mouse.move(box["x"] + box["width"] * (root_x / px["w"]), box["y"] + box["height"] * ((18 + 32) / px["h"]))
    assert page.locator("[data-hover=tree_inhibition]").inner_text().startswith("unit 0 · depth 0")
    info = page.locator("[data-info=tree_inhibition]").inner_text()
    assert "40 units on a tree of 4 levels" in info and "as of" not in info  # the last frame is fresh
    page.locator("[data-panel-box=tree_inhibition]").screenshot(timeout=120_000, path=str(artifacts_dir / "panel_tree_inhibition.png"))


def test_interaction_matrix_draws_s_with_its_mask(stack, page, runs, artifacts_dir):
    run = runs["grid"]
    open_run(page, stack, run, ["interaction_matrix"])
    px = page.evaluate(COLOURS, "interaction_matrix")
    p = run["panels"]["interaction_matrix"]
    assert p["shown"] == 64 and not p["signed"]
    # 256×256 matrix area: masked neighbours (light grey 225) and learned entries in viridis
    masked = page.evaluate("""() => { const c = document.querySelector('canvas[data-panel=interaction_matrix]');
        const d = c.getContext('2d').getImageData(10, 18, 256, 256).data; let n = 0, col = 0;
        for (let i = 0; i < d.length; i += 4) {
            if (d[i] === 225 && d[i + 1] === 225 && d[i + 2] === 225) n++;
            if (Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]) > 30) col++;
        }
        return [n, col]; }""")
    masked, coloured = masked
    assert masked >= 64 * 16  # the diagonal and the 8 neighbours of each unit (4×4 pixels an entry)
    assert coloured > 0.9 * (256 * 256 - masked) and px["hues"] > 5  # every free entry in viridis
    page.locator("canvas[data-panel=interaction_matrix]").scroll_into_view_if_needed()  # below the Results card: in view to hover
    box = page.locator("canvas[data-panel=interaction_matrix]").bounding_box()
    page.mouse.move(box["x"] + box["width"] * (12 / px["w"]), box["y"] + box["height"] * (20 / px["h"]))
    assert page.locator("[data-hover=interaction_matrix]").inner_text() == "S[0, 0] fixed at 0 by the mask"
    page.locator("[data-panel-box=interaction_matrix]").screenshot(timeout=120_000, path=str(artifacts_dir / "panel_interaction_matrix.png"))


def test_drsae_units_draws_the_split_buildup_and_columns(stack, page, runs, artifacts_dir):
    run = runs["drsae"]
    open_run(page, stack, run, ["drsae_units", "interaction_matrix", "filter_grid"])
    p = run["panels"]["drsae_units"]
    px = page.evaluate(COLOURS, "drsae_units")
    c = p["counts"]
    info = page.locator("[data-info=drsae_units]").inner_text()
    assert f"{c['categorical']} categorical · {c['part']} part · {c['dead']} dead of 64 units" in info
    assert px["blue"] > 100  # part units' dots and build-up curve
    if c["categorical"]:
        assert px["orange"] > 30
    assert px["greys"] > 40  # decoder columns
    im = page.evaluate(COLOURS, "interaction_matrix")
    assert run["panels"]["interaction_matrix"]["signed"] and im["hues"] > 20  # blue–white–red
    page.locator("[data-panel-box=drsae_units]").screenshot(timeout=120_000, path=str(artifacts_dir / "panel_drsae_units.png"))
    page.locator("[data-panel-box=interaction_matrix]").screenshot(timeout=120_000, path=str(artifacts_dir / "panel_interaction_matrix_drsae.png"))
