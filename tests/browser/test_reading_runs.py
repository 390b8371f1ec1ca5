"""Issue 14, items 3, 4, 6 and 7 in real Chromium on short real runs of every preset: curves a person
can read (a chart per group of comparable metrics, log/linear toggle, smoothing, nothing ≤ 0 on a log
axis, tick labels clear of the toolbar, one colour per metric name on the live page, the HTML export
and the compare page, LISTA's twelve series in twelve colours), every panel enlarged to the window
at full resolution and following the timeline (Esc back), the tree layouts drawn at a readable
size, the HTML export carrying every panel kind of its run offline, and the compare page showing
every panel kind of both runs with a table of final results. Screenshots of every preset's run
page at 1440 px and 390 px, light and dark, are kept under test-artifacts/presets/."""
from __future__ import annotations

import pytest

from ..conftest import launch_and_finish

pytestmark = pytest.mark.browser

# long enough for filters to form (the screenshots are looked at), ~20-40 frames each
EVERY = lambda n: {"frame_every_steps": n, "frame_every_seconds": 0.2}  # noqa: E731
RUNS = {
    "topographic-natural": {"data": {"pool_size": 4000}, "model": {"units": 64, "groups": {"pool": 4, "stride": 2}},
                            "train": {"steps": 600, "batch_size": 64, **EVERY(20)}},
    "groups-1d-blocks": {"data": {"pool_size": 4000}, "train": {"steps": 300, "batch_size": 64, **EVERY(10)}},
    "groups-tree": {"data": {"pool_size": 4000}, "train": {"steps": 300, "batch_size": 64, **EVERY(10)}},
    "conv-stack": {"model": {"steps_per_layer": 20, "lam_warmup_steps": 5, "probe_every_steps": 10, "probe_train": 400},
                   "data": {"train_size": 600, "test_size": 200}, "train": {"steps": 40, "batch_size": 32, **EVERY(10)}},
    "pinwheels-local": {"model": {"grid": 12, "pool": 3, "anneal_steps": 50, "lam_warmup_steps": 20},
                        "data": {"pool_size": 300}, "train": {"steps": 200, "batch_size": 32, **EVERY(10)}},
    "lateral-tree": {"data": {"pool_size": 4000}, "model": {"inference_steps": 15},
                     "train": {"steps": 200, "batch_size": 64, **EVERY(10)}},
    "lateral-2d": {"data": {"pool_size": 4000}, "model": {"units": 64, "row_sum": 10.0, "inference_steps": 15},
                   "train": {"steps": 200, "batch_size": 64, **EVERY(10)}},
    "drsae-mnist": {"data": {"kind": "sklearn_digits", "train_size": 1200, "test_size": 300},
                    "model": {"units": 64, "steps": 5, "unsupervised_steps": 100},
                    "train": {"steps": 200, "batch_size": 64, **EVERY(10)}},
    "lista-vs-fista": {"data": {"pool_size": 4000}, "model": {"units": 64, "fista_steps": 50},
                       "train": {"steps": 200, "batch_size": 64, **EVERY(10)}},
}

PAGE_OPTIONS = {"viewport": {"width": 1440, "height": 1000}, "accept_downloads": True}

# every trace of every curve chart on the page: name → colour, and the chart's axis
TRACES = """sel => [...document.querySelectorAll(sel)].flatMap(div => (div.data || []).map(t => ({
    group: div.dataset.group, name: t.name, color: t.line.color, dash: t.line.dash || 'solid',
    y: t.y, axis: div._fullLayout.yaxis.type, title: div._fullLayout.yaxis.title.text })))"""


@pytest.fixture(scope="module")
def runs(stack):
    import httpx

    from tests.services import auth_headers

    out = {}
    bodies = {name: {"preset": name, "config": config} for name, config in RUNS.items()}
    with httpx.Client(base_url=stack["url"], timeout=30, headers=auth_headers()) as client:
        for name, run in launch_and_finish(client, bodies, "reading", timeout=900).items():
            last = client.get(f"/api/runs/{run['id']}/frames", params={"from_step": run["step"], "limit": 1}).json()["frames"][0]
            steps = [f["step"] for f in client.get(f"/api/runs/{run['id']}/frames",
                                                   params={"panels": False, "limit": 1000}).json()["frames"]]
            out[name] = {**run, "panels": last["panels"], "steps": steps}
    return out


def open_run(page, url, run, kinds=None):
    page.goto(f"{url}/#/runs/{run['id']}")
    # this run's page, not the one before it (a hash change: the old page lingers a moment)
    page.wait_for_function("t => document.querySelector('.run-head h2')?.textContent === t", arg=run["title"], timeout=30_000)
    for kind in kinds or run["panels"]:
        page.wait_for_function(f"s => +document.querySelector('canvas[data-panel={kind}]')?.dataset.drawnStep === s",
                               arg=run["step"], timeout=60_000)
    page.wait_for_function("() => document.querySelector('.curves .scatterlayer .trace')", timeout=30_000)


def colours(page, sel=".curves") -> dict:
    return {t["name"]: t["color"] for t in page.evaluate(TRACES, sel)}


def test_curves_one_chart_per_group_log_toggle_smoothing(stack, page, runs, artifacts_dir):
    run = runs["topographic-natural"]
    open_run(page, stack["url"], run)
    traces = page.evaluate(TRACES, ".curves")
    groups = {t["group"]: (t["axis"], t["title"]) for t in traces}
    assert groups["loss"] == ("log", "log axis: loss terms and energies"), groups  # the axis says its scale
    assert groups["rates"][0] == "linear" and "linear axis" in groups["rates"][1], groups
    assert {t["name"] for t in traces if t["group"] == "rates"} >= {"active_fraction"}
    assert "reconstruction" in {t["name"] for t in traces if t["group"] == "loss"}
    for t in traces:  # nothing a log axis cannot show: a 0 is a gap, not a spike to the bottom
        if t["axis"] == "log":
            assert all(v is None or v > 0 for v in t["y"]), t["name"]

    toggle = page.locator("button[data-scale-toggle=loss]")
    toggle.click()
    page.wait_for_function("() => document.querySelector('.curves[data-group=loss]')._fullLayout.yaxis.type === 'linear'")
    assert "linear axis" in page.evaluate("() => document.querySelector('.curves[data-group=loss]')._fullLayout.yaxis.title.text")
    assert toggle.inner_text() == "linear"
    toggle.click()
    page.wait_for_function("() => document.querySelector('.curves[data-group=loss]')._fullLayout.yaxis.type === 'log'")

    # smoothing: an EMA of the raw values (debiased), the CSV keeps the raw ones
    raw = {t["name"]: t["y"] for t in page.evaluate(TRACES, ".curves")}["reconstruction"]
    page.select_option("#curves-smoothing", "0.9")
    page.wait_for_function("() => document.querySelector('.curves[data-group=loss]').data.length > 0")
    smoothed = {t["name"]: t["y"] for t in page.evaluate(TRACES, ".curves")}["reconstruction"]
    ema, n, expected = 0.0, 0, []
    for v in raw:
        ema, n = 0.9 * ema + 0.1 * v, n + 1
        expected.append(ema / (1 - 0.9 ** n))
    assert smoothed == pytest.approx(expected, rel=1e-9) and smoothed != pytest.approx(raw, rel=1e-6)

    # tick labels clear of Plotly's toolbar (shown on hover)
    chart = page.locator(".curves[data-group=loss]")
    chart.scroll_into_view_if_needed()
    chart.hover()
    clash = page.evaluate("""() => {
        const div = document.querySelector('.curves[data-group=loss]');
        const bar = div.querySelector('.modebar').getBoundingClientRect();
        const hit = (r) => r.left < bar.right && r.right > bar.left && r.top < bar.bottom && r.bottom > bar.top;
        return [...div.querySelectorAll('.xtick text, .ytick text, .legendtext, .g-ytitle')].filter(
            (t) => hit(t.getBoundingClientRect())).map((t) => t.textContent); }""")
    assert clash == []
    # tick labels are numbers, not the "2 5" digits Plotly puts between decades
    ticks = page.evaluate("() => [...document.querySelectorAll('.curves[data-group=loss] .ytick text')].map(t => t.textContent)")
    assert ticks and all(len(t) > 1 or t not in "23456789" for t in ticks), ticks
    # the timeline's cursor is drawn on every chart, at the step the timeline shows
    page.evaluate("() => document.activeElement.blur()")  # the smoothing <select> had the keys
    page.keyboard.press("Home")  # the first frame (step 0) has no metrics yet: two frames on
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.wait_for_function("s => [...document.querySelectorAll('.curve-chart')].every(c => +c.dataset.cursor === s"
                           " && !c.querySelector('.curve-cursor').hidden)", arg=run["steps"][2], timeout=20_000)
    page.keyboard.press("End")
    page.locator(".curves-panel").screenshot(timeout=120_000, path=str(artifacts_dir / "curves_groups.png"))


def test_lista_series_each_in_its_own_colour(stack, page, runs, artifacts_dir):
    run = runs["lista-vs-fista"]
    open_run(page, stack["url"], run, ["filter_grid"])
    page.wait_for_function("() => [...document.querySelectorAll('.curves')].reduce((n, d) => n + (d.data?.length || 0), 0) >= 12",
                           timeout=30_000)
    seen = colours(page)
    assert len(seen) >= 12 and len(set(seen.values())) == len(seen), seen
    page.locator(".curves-panel").screenshot(timeout=120_000, path=str(artifacts_dir / "curves_lista.png"))


def test_enlarged_panel_follows_the_timeline_and_esc_closes_it(stack, page, runs, artifacts_dir):
    run = runs["topographic-natural"]
    open_run(page, stack["url"], run)
    size = "kind => { const c = document.querySelector(`canvas[data-panel=${kind}]`); const r = c.getBoundingClientRect();" \
           " return {w: c.width, h: c.height, cssW: r.width, cssH: r.height, step: +c.dataset.drawnStep}; }"
    for kind in run["panels"]:
        before = page.evaluate(size, kind)
        page.locator(f"button[data-enlarge={kind}]").click()
        box = page.locator(f"[data-panel-box={kind}]")
        assert "enlarged" in box.get_attribute("class")
        cover = box.bounding_box()
        assert cover["width"] >= 1400 and cover["height"] >= 950  # the whole window
        page.wait_for_function("([k, w]) => document.querySelector(`canvas[data-panel=${k}]`).width > w", arg=[kind, before["w"]])
        big = page.evaluate(size, kind)
        # redrawn with more pixels (not the small bitmap blown up): backing store ≥ its size on screen
        assert big["w"] >= big["cssW"] - 1 and big["cssW"] > before["cssW"], (before, big)
        # still follows the timeline: the first frame, then the next, drawn in the enlarged panel
        page.keyboard.press("Home")
        page.wait_for_function("([k, s]) => +document.querySelector(`canvas[data-panel=${k}]`).dataset.drawnStep === s",
                               arg=[kind, run["steps"][0]], timeout=20_000)
        page.keyboard.press("ArrowRight")
        page.wait_for_function("([k, s]) => +document.querySelector(`canvas[data-panel=${k}]`).dataset.drawnStep === s",
                               arg=[kind, run["steps"][1]], timeout=20_000)
        assert page.evaluate(size, kind)["w"] == big["w"]  # at the enlarged resolution
        if kind == "filter_grid":
            page.screenshot(timeout=120_000, path=str(artifacts_dir / "enlarged_filter_grid.png"))
        page.keyboard.press("Escape")
        assert "enlarged" not in box.get_attribute("class")
        page.wait_for_function("([k, w]) => document.querySelector(`canvas[data-panel=${k}]`).width === w", arg=[kind, before["w"]])
        page.keyboard.press("End")


@pytest.mark.parametrize("name,kinds", [("lateral-tree", ["tree_inhibition"]), ("drsae-mnist", ["drsae_units", "interaction_matrix"]),
                                        ("groups-tree", ["filter_grid"])])
def test_tree_layouts_are_drawn_at_a_readable_size(stack, page, runs, artifacts_dir, name, kinds):
    run = runs[name]
    open_run(page, stack["url"], run, kinds)
    for kind in kinds:
        # shown at least at the size it is drawn: its 11 px text stays ≥ 11 px on the screen
        w, css = page.evaluate("k => { const c = document.querySelector(`canvas[data-panel=${k}]`);"
                               " return [c.__logical[0], c.getBoundingClientRect().width]; }", kind)
        assert css >= w - 1, (kind, w, css)
        page.locator(f"[data-panel-box={kind}]").screenshot(timeout=120_000, path=str(artifacts_dir / f"readable_{name}_{kind}.png"))
    if name == "lateral-tree":  # the tree takes the width its leaves need
        leaves = sum(1 for v in range(run["panels"]["tree_inhibition"]["count"])
                     if v not in run["panels"]["tree_inhibition"]["parents"])
        assert page.evaluate("() => document.querySelector('canvas[data-panel=tree_inhibition]').__logical[0]") >= leaves * 26


@pytest.mark.parametrize("name", ["topographic-natural", "lateral-tree", "drsae-mnist", "conv-stack", "lista-vs-fista"])
def test_html_export_carries_every_panel_offline(stack, page, browser, runs, tmp_path, artifacts_dir, name):
    run = runs[name]
    open_run(page, stack["url"], run)
    live_colours = colours(page)
    live_card = page.evaluate("() => [...document.querySelectorAll('#results-card tr')].map(tr => [tr.dataset.key, tr.dataset.value])")
    with page.expect_download(timeout=60_000) as dl:
        page.locator("#export-html").click()
    exported = tmp_path / "export.html"
    dl.value.save_as(exported)

    context = browser.new_context(offline=True, viewport={"width": 1440, "height": 1000})
    requests: list[str] = []
    context.route("**/*", lambda route: (requests.append(route.request.url), route.abort()
                                         if not route.request.url.startswith("file:") else route.continue_()))
    offline = context.new_page()
    errors: list[str] = []
    offline.on("pageerror", lambda e: errors.append(str(e)))
    offline.goto(exported.as_uri())
    offline.wait_for_function("() => document.body.dataset.ready === '1'", timeout=30_000)
    for kind in run["panels"]:  # every panel kind of the run, drawn at the last frame
        offline.wait_for_function(f"s => +document.querySelector('canvas[data-panel={kind}]')?.dataset.drawnStep === s",
                                  arg=run["step"], timeout=30_000)
    assert sorted(offline.evaluate("() => [...document.querySelectorAll('[data-panel-box]')].map(b => b.dataset.panelBox)")) \
        == sorted(run["panels"])
    assert offline.locator("#title").inner_text() == run["title"]
    # the Results card: the same rows and numbers as on the live page
    card = offline.evaluate("() => [...document.querySelectorAll('#results-card tr')].map(tr => [tr.dataset.key, tr.dataset.value])")
    assert card == live_card and card
    # the timeline: back to the first frame the file carries
    offline.keyboard.press("Home")
    offline.wait_for_function("s => +document.querySelector('canvas[data-panel=filter_grid]').dataset.drawnStep === s",
                              arg=run["steps"][0], timeout=20_000)
    # the curves in the same colours as on the live page
    offline.wait_for_function("() => document.querySelector('.curves .scatterlayer .trace')", timeout=30_000)
    assert colours(offline) == live_colours
    assert all(r.startswith(("file:", "data:")) for r in requests), requests
    offline.keyboard.press("End")
    offline.screenshot(timeout=120_000, path=str(artifacts_dir / f"export_{name}.png"), full_page=True)
    context.close()
    assert not errors, errors


def test_compare_shows_every_panel_kind_and_final_results(stack, page, runs, artifacts_dir):
    a, b = runs["topographic-natural"], runs["groups-1d-blocks"]
    open_run(page, stack["url"], a, ["filter_grid"])
    live = colours(page)
    page.goto(f"{stack['url']}/#/compare/{a['id']},{b['id']}")
    for run in (a, b):
        for kind in run["panels"]:
            page.wait_for_function(
                f"s => +document.querySelector('.compare-row[data-compare-kind={kind}] [data-run=\"{run['id']}\"] canvas[data-panel={kind}]')"
                "?.dataset.drawnStep === s", arg=run["step"], timeout=30_000)
    kinds = page.evaluate("() => [...document.querySelectorAll('.compare-row')].map(r => r.dataset.compareKind)")
    assert set(kinds) == set(a["panels"]) | set(b["panels"])
    # the timeline's position is a line on every curve chart: at the end first, at step 0 after the move
    cursor_at = "x => { const c = [...document.querySelectorAll('#compare-curves .curves')]; return c.length && c.every(d => " \
                "d.layout?.shapes?.length === 1 && Math.abs(d.layout.shapes[0].x0 - x) < 1e-9); }"
    page.wait_for_function(cursor_at, arg=max(a["steps"][-1], b["steps"][-1]), timeout=30_000)
    # the shared timeline moves every run's panels
    page.locator("#compare-timeline").fill("0")
    page.wait_for_function(cursor_at, arg=0, timeout=30_000)
    for run in (a, b):
        page.wait_for_function(
            f"s => +document.querySelector('.compare-row[data-compare-kind=filter_grid] [data-run=\"{run['id']}\"] canvas')"
            ".dataset.drawnStep === s", arg=run["steps"][0], timeout=30_000)
    # final results: each run's card rows side by side, differences highlighted
    rows = page.evaluate("""() => [...document.querySelectorAll('#results-compare tr[data-result-key]')].map(tr => ({
        key: tr.dataset.resultKey, diff: tr.classList.contains('diff'),
        values: [...tr.querySelectorAll('td.num')].map(td => td.dataset.value) }))""")
    by_key = {r["key"]: r for r in rows}
    rec = by_key["reconstruction"]
    assert [float(v) for v in rec["values"]] == [a["metrics"]["reconstruction"], b["metrics"]["reconstruction"]]
    assert rec["diff"]  # two runs never reconstruct equally well
    assert all(r["diff"] == (len(set(r["values"])) > 1) for r in rows if all(r["values"])), rows
    highlighted = page.evaluate("() => getComputedStyle(document.querySelector('#results-compare tr.diff td')).backgroundColor")
    assert highlighted not in ("rgba(0, 0, 0, 0)", "transparent")
    # a metric keeps its colour (the run its dash)
    page.wait_for_function("() => document.querySelector('#compare-curves .scatterlayer .trace')", timeout=30_000)
    traces = page.evaluate(TRACES, "#compare-curves .curves")
    for t in traces:
        metric = t["name"].split(" · ", 1)[1]
        if metric in live:
            assert t["color"] == live[metric], t["name"]
    assert {t["dash"] for t in traces} == {"solid", "dash"}
    page.screenshot(timeout=120_000, path=str(artifacts_dir / "compare_panels.png"), full_page=True)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_screenshots_of_every_preset(stack, browser, login, runs, artifacts_dir, scheme):
    folder = artifacts_dir / "presets"
    folder.mkdir(exist_ok=True)
    for width in (1440, 390):
        context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        login(page)
        for name, run in runs.items():
            open_run(page, stack["url"], run)
            overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, (name, width, overflow)  # no sideways scrolling of the page
            page.screenshot(timeout=120_000, path=str(folder / f"{name}_{width}_{scheme}.png"), full_page=True)
        context.close()
        assert not errors, errors
