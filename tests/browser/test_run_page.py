"""The run page in real Chromium: the schema-generated launch form (browser and server errors by
the field), every panel drawing real data of a short real run, the timeline (scrub, keys, play,
live-follow and rejoin), and the exports (panel PNG, filter-grid GIF and MP4, curves CSV)."""
from __future__ import annotations

import io

import imageio.v2 as imageio
import numpy as np
import pytest
from PIL import Image

from ..conftest import TINY_RUN, wait_for_status

pytestmark = pytest.mark.browser

KINDS = ("filter_grid", "group_activations", "topographic_map", "reconstructions", "sparsity")
CANVAS = "document.querySelector('canvas[data-panel={kind}]')"


@pytest.fixture(scope="module")
def finished_run(stack):
    import httpx

    from tests.services import auth_headers

    with httpx.Client(base_url=stack["url"], timeout=30, headers=auth_headers()) as client:
        res = client.post("/api/runs", json={**TINY_RUN, "title": "run page test"})
        assert res.status_code == 201, res.text
        run = wait_for_status(client, res.json()["id"], ("succeeded",), timeout=180)
        frames = client.get(f"/api/runs/{run['id']}/frames", params={"panels": False, "limit": 5000}).json()["frames"]
    return {**run, "steps": [f["step"] for f in frames]}


PAGE_OPTIONS = {"accept_downloads": True}  # the page fixture (tests/conftest.py)


def drawn_step(page, kind: str) -> int | None:
    v = page.evaluate(f"() => {CANVAS.format(kind=kind)}?.dataset.drawnStep")
    return None if v in (None, "") else int(v)


def wait_drawn(page, kind: str, step: int, timeout: float = 15_000) -> None:
    page.wait_for_function(f"s => +{CANVAS.format(kind=kind)}?.dataset.drawnStep === s", arg=step, timeout=timeout)


def pixels(page, kind: str) -> dict:
    return page.evaluate("""kind => {
        const c = document.querySelector(`canvas[data-panel=${kind}]`);
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const grey = new Set(), colour = new Set(); let coloured = 0, blue = 0;
        for (let i = 0; i < d.length; i += 4) {
            const [r, g, b] = [d[i], d[i + 1], d[i + 2]];
            grey.add(r);
            if (Math.max(r, g, b) - Math.min(r, g, b) > 40) { coloured++; colour.add(`${r >> 4},${g >> 4},${b >> 4}`); }
            if (r === 59 && g === 91 && b === 219) blue++;
        }
        return {w: c.width, h: c.height, levels: grey.size, coloured, hues: colour.size, blue};
    }""", kind)


def test_launch_form_validates_in_the_browser_and_shows_server_errors_by_the_field(stack, page, artifacts_dir):
    page.goto(stack["url"] + "/#/")
    page.locator("#new-run-toggle").click(timeout=15_000)  # the launch form opens from "New run"
    page.locator("#launch-form [data-path='model.units']").wait_for(timeout=15_000)
    # grouped by section, a kind selector for every union
    assert page.locator("#launch-form fieldset[data-section]").count() >= 4
    assert page.locator("#launch-form select[data-path='model.groups.kind']").input_value() == "torus_2d"
    # browser-side: a bound from the schema, no request sent
    lr = page.locator("#launch-form [data-path='train.lr']")
    lr.fill("-1")
    page.locator("#launch-submit").click()
    assert "> 0" in page.locator(".field-error[data-for='train.lr']").inner_text()
    runs_before = page.evaluate("async () => (await (await fetch('/api/runs', {headers: {Authorization: "
                                "'Bearer ' + localStorage.getItem('pinwheel.token')}})).json()).length")
    lr.fill("0.003")
    # server-side: 63 units cannot lie on a square torus — only the server's model check knows
    page.locator("#launch-form [data-path='model.units']").fill("63")
    page.locator("#launch-submit").click()
    err = page.locator(".field-error[data-for='model.units']")
    page.wait_for_function("() => document.querySelector(\".field-error[data-for='model.units']\").textContent !== ''",
                           timeout=10_000)
    assert "square" in err.inner_text()
    assert page.locator(".field-error[data-for='train.lr']").inner_text() == ""
    assert "invalid" in page.locator("#launch-form [data-path='model.units']").get_attribute("class")
    # a field-level server error (loc names it): data.pool_size below its minimum… set via JSON-free path
    page.locator("#launch-form [data-path='model.units']").fill("64")
    page.locator("#launch-form [data-path='model.groups.pool']").fill("9")  # larger than the 8×8 grid
    page.locator("#launch-submit").click()
    page.wait_for_function("() => document.querySelector(\".field-error[data-for='model.groups.pool']\")"
                           "?.textContent.includes('larger')", timeout=10_000)
    page.locator("#launch-form").screenshot(timeout=120_000, path=str(artifacts_dir / "launch_form_errors.png"))
    assert page.evaluate("async () => (await (await fetch('/api/runs', {headers: {Authorization: "
                         "'Bearer ' + localStorage.getItem('pinwheel.token')}})).json()).length") == runs_before
    # the run list: model, data set, metrics and thumbnails of earlier runs are shown
    assert page.locator("canvas.thumb").count() >= 1


def test_every_panel_draws_real_data(stack, page, finished_run, artifacts_dir):
    last = finished_run["steps"][-1]
    page.goto(f"{stack['url']}/#/runs/{finished_run['id']}")
    for kind in KINDS:
        wait_drawn(page, kind, last)
    fg = pixels(page, "filter_grid")
    assert fg["levels"] > 40 and fg["w"] == 8 * 13 + 1  # 8×8 grid of 12×12 tiles
    tm = pixels(page, "topographic_map")
    assert tm["coloured"] > 0.5 * tm["w"] * tm["h"] and tm["hues"] > 20  # hue-coded orientations
    stats = page.locator("[data-info=topographic_map]").inner_text()
    assert "Λ" in stats and "ρ" in stats and "pin-wheels" in stats
    # ρ beside π where the map spans enough periods; otherwise the producer's note in its place
    assert "π" in stats or "too few periods" in stats, stats
    ga = pixels(page, "group_activations")
    assert ga["hues"] > 5 and "all-zero" in page.locator("[data-info=group_activations]").inner_text()
    rec = pixels(page, "reconstructions")
    assert rec["levels"] > 40 and rec["h"] == 2 * 13 + 1
    sp = pixels(page, "sparsity")
    assert sp["blue"] > 50 and "L0" in page.locator("[data-info=sparsity]").inner_text()
    # hover names the unit, its grid place, its groups and its statistics
    page.locator("canvas[data-panel=filter_grid]").scroll_into_view_if_needed()  # below the Results card: in view to hover
    box = page.locator("canvas[data-panel=filter_grid]").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.6)
    hover = page.locator("[data-hover=filter_grid]").inner_text()
    assert "unit" in hover and "grid (" in hover and "group" in hover and "mean z" in hover
    # the encoder view
    page.locator("[data-kind=filter_grid] button[data-view=encoder]").click()
    page.wait_for_function(f"() => {CANVAS.format(kind='filter_grid')}.dataset.view === 'encoder'", timeout=5000)
    for kind in KINDS:
        page.locator(f"[data-panel-box={kind}]").screenshot(timeout=120_000, path=str(artifacts_dir / f"panel_{kind}.png"))
    page.screenshot(timeout=120_000, path=str(artifacts_dir / "run_page.png"), full_page=True)


def test_timeline_scrub_keys_and_play(stack, page, finished_run):
    steps = finished_run["steps"]
    page.goto(f"{stack['url']}/#/runs/{finished_run['id']}")
    wait_drawn(page, "filter_grid", steps[-1])
    page.locator("#timeline").fill("5")  # scrub
    for kind in KINDS:  # one timeline drives every panel
        wait_drawn(page, kind, steps[5])
    assert f"step {steps[5]}" in page.locator("#cursor-step").inner_text()
    page.locator("body").press("ArrowRight")
    wait_drawn(page, "filter_grid", steps[6])
    page.locator("body").press("Shift+ArrowLeft")
    wait_drawn(page, "filter_grid", steps[0])
    page.locator("body").press("End")
    wait_drawn(page, "filter_grid", steps[-1])
    # play from the start at 20 frames/s: every panel moves through the run, then stops at the end
    page.locator("#speed").select_option("20")
    page.locator("body").press("Home")
    wait_drawn(page, "filter_grid", steps[0])
    page.evaluate("() => { window.__seen = []; document.querySelector('canvas[data-panel=filter_grid]')"
                  ".addEventListener('drawn', e => window.__seen.push(e.detail.step)); }")
    page.locator("#play").click()
    wait_drawn(page, "filter_grid", steps[-1], timeout=30_000)
    page.wait_for_function("() => document.querySelector('#view').dataset.playing === '0'", timeout=5000)
    seen = page.evaluate("() => window.__seen")
    assert len(set(seen)) >= len(steps) // 2 and seen == sorted(seen)
    # never the whole history in the tab: image frames come a few at a time around the cursor (how
    # many requests that takes depends on how fast the server answers, so their count is not asserted)
    limits = page.evaluate("() => performance.getEntriesByType('resource').map(r => r.name)"
                           ".filter(n => n.includes('/frames?') && !n.includes('panels=false'))"
                           ".map(n => +new URL(n).searchParams.get('limit'))")
    assert limits and max(limits) <= 9 < len(steps), limits


def test_live_follow_scrub_away_and_rejoin(stack, api, page):
    cfg = {**TINY_RUN["config"], "train": {**TINY_RUN["config"]["train"], "steps": 1_000_000}}
    run = api.post("/api/runs", json={**TINY_RUN, "config": cfg}).json()
    try:
        page.goto(f"{stack['url']}/#/runs/{run['id']}")
        page.wait_for_function(f"() => +{CANVAS.format(kind='filter_grid')}?.dataset.drawnStep >= 60", timeout=60_000)
        assert page.locator("#live").get_attribute("class") == "on"
        page.locator("body").press("Home")  # scrub away: the panels stay where the user put them
        wait_drawn(page, "filter_grid", 0)
        max_before = int(page.locator("#timeline").get_attribute("max"))
        page.wait_for_function("m => +document.querySelector('#timeline').max >= m + 3", arg=max_before, timeout=30_000)
        assert drawn_step(page, "filter_grid") == 0 and page.locator("#live").get_attribute("class") in ("", None)
        page.locator("#live").click()  # rejoin: the newest frame, and following again
        page.wait_for_function(f"m => +{CANVAS.format(kind='filter_grid')}.dataset.drawnStep > 0 && "
                               "document.querySelector('#view').dataset.following === '1'", arg=0, timeout=10_000)
        now = drawn_step(page, "filter_grid")
        page.wait_for_function(f"s => +{CANVAS.format(kind='filter_grid')}.dataset.drawnStep > s", arg=now, timeout=30_000)
    finally:
        api.post(f"/api/runs/{run['id']}/cancel")
        wait_for_status(api, run["id"], ("cancelled",), timeout=60)


def test_exports_png_gif_mp4_csv(stack, page, finished_run, tmp_path):
    steps = finished_run["steps"]
    page.goto(f"{stack['url']}/#/runs/{finished_run['id']}")
    wait_drawn(page, "topographic_map", steps[-1])
    with page.expect_download() as dl:
        page.locator("button[data-export-png=topographic_map]").click()
    png = Image.open(dl.value.path())
    assert png.format == "PNG" and png.size == (pixels(page, "topographic_map")["w"], pixels(page, "topographic_map")["h"])
    with page.expect_download(timeout=60_000) as dl:
        page.locator("#export-gif").click()
    gif = Image.open(io.BytesIO(open(dl.value.path(), "rb").read()))
    assert gif.format == "GIF" and gif.n_frames == min(120, len(steps))
    with page.expect_download(timeout=60_000) as dl:
        page.locator("#export-mp4").click()
    assert dl.value.suggested_filename.endswith("-filters-decoder.mp4")
    dl.value.save_as(tmp_path / "filters.mp4")  # the download's own path has no extension for ffmpeg to go by
    with imageio.get_reader(str(tmp_path / "filters.mp4"), format="FFMPEG") as reader:
        mp4_frames = [np.asarray(f) for f in reader]
    assert len(mp4_frames) == min(120, len(steps))
    assert mp4_frames[0].std() > 5 and not np.array_equal(mp4_frames[0], mp4_frames[-1])  # filters, and they moved
    with page.expect_download() as dl:
        page.locator("#export-csv").click()
    lines = open(dl.value.path()).read().strip().splitlines()
    assert lines[0].startswith("step,wall_time,") and "loss" in lines[0]
    assert len(lines) - 1 == sum(1 for _ in steps) - 1  # the step-0 frame carries no metrics yet


@pytest.mark.parametrize("side,pool,stride", [(8, 3, 1), (16, 5, 1), (16, 4, 2), (6, 3, 3)])
def test_hover_groups_worked_out_in_the_browser_equal_the_torus_membership(stack, page, side, pool, stride):
    """Torus pools are sent as a rule, not as lists: the renderer's membership must be the library's."""
    from pinwheel.groups import torus_2d
    from pinwheel.panels.filter_grid import MAX_GROUPS

    membership = torus_2d(side, pool, stride).membership()
    page.goto(f"{stack['url']}/#/")
    got = page.evaluate("""async rule => {
        const { unitGroups } = await import('/js/panels/filter_grid.js');
        return [...Array(rule.side * rule.side).keys()].map(u => unitGroups({ group_rule: rule }, u));
    }""", {"type": "torus_2d", "side": side, "pool": pool, "stride": stride})
    for unit, groups in enumerate(membership):
        assert got[unit] == {"groups": groups[:MAX_GROUPS], "count": len(groups)}, unit
