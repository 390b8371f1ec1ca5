"""Issue 14, items 1 and 2, in real Chromium on short real runs of four model families: the Results
card at the top of the run page states the run's result with numbers equal to the API's (latest
metrics and the last frame's panels), each labelled held-out or training; the run list shows it in
one line; the orientation map appears for the topographic preset and is absent for a tree model."""
from __future__ import annotations

import pytest

from ..conftest import TINY_RUN, launch_and_finish

pytestmark = pytest.mark.browser

SHORT = {"frame_every_steps": 10, "frame_every_seconds": 0.2}
RUNS = {
    "topographic": {**TINY_RUN, "config": {**TINY_RUN["config"], "train": {**TINY_RUN["config"]["train"], "steps": 60}}},
    "tree": {"preset": "lateral-tree", "config": {
        "data": {"pool_size": 2000}, "model": {"inference_steps": 15},
        "train": {"steps": 30, "batch_size": 64, **SHORT}}},
    "lista": {"preset": "lista-vs-fista", "config": {
        "data": {"pool_size": 2000}, "model": {"units": 64, "fista_steps": 50},
        "train": {"steps": 30, "batch_size": 64, **SHORT}}},
    "drsae": {"preset": "drsae-mnist", "config": {
        "data": {"kind": "sklearn_digits", "train_size": 1200, "test_size": 300},
        "model": {"units": 64, "steps": 5, "unsupervised_steps": 10},
        "train": {"steps": 40, "batch_size": 64, **SHORT}}},
    # a probe is due every 10 steps and a due probe waits for the running one: the last frame carries one
    "conv": {"preset": "conv-stack", "config": {
        "model": {"steps_per_layer": 20, "lam_warmup_steps": 5, "probe_every_steps": 10, "probe_train": 400},
        "data": {"train_size": 600, "test_size": 200},
        "train": {"steps": 40, "batch_size": 32, **SHORT}}},
    # local filters: the orientation map at the receptive fields' places on the image
    "local": {"preset": "pinwheels-local", "config": {
        "model": {"grid": 12, "pool": 3, "anneal_steps": 10, "lam_warmup_steps": 5},
        "data": {"pool_size": 300}, "train": {"steps": 30, "batch_size": 32, **SHORT}}},
}
# the row that carries each family's headline number, and the label it must wear
HEADLINE = {"topographic": ("topographic_map.smoothness", "weights"), "tree": ("tree_inhibition.branch.ratio", "weights"),
            "lista": ("heldout_energy_lista_T", "held-out"), "drsae": ("test_error", "held-out"),
            "conv": (None, "held-out"), "local": ("topographic_map.smoothness", "weights")}  # conv: the best probe on the stack's features


@pytest.fixture(scope="module")
def runs(stack):
    import httpx

    from tests.services import auth_headers

    out = {}
    with httpx.Client(base_url=stack["url"], timeout=30, headers=auth_headers()) as client:
        for name, run in launch_and_finish(client, RUNS, "results", timeout=300).items():
            last = client.get(f"/api/runs/{run['id']}/frames", params={"from_step": run["step"], "limit": 1}).json()["frames"][0]
            assert last["step"] == run["step"]
            out[name] = {**run, "panels": last["panels"]}
    return out


PAGE_OPTIONS = {"viewport": {"width": 1440, "height": 1000}}


def lookup(panels: dict, path: str):
    value = panels
    for part in path.split("."):
        value = value[part]
    return value


def card_rows(page) -> list[dict]:
    return page.evaluate("""() => [...document.querySelectorAll('#results-card tr')].map(tr => ({
        source: tr.dataset.source, key: tr.dataset.key, value: tr.dataset.value,
        text: tr.querySelector('td.num').textContent, badge: tr.querySelector('[data-badge]').dataset.badge}))""")


@pytest.mark.parametrize("name", list(RUNS))
def test_results_card_states_the_api_numbers(stack, runs, page, artifacts_dir, name):
    run = runs[name]
    page.goto(f"{stack['url']}/#/runs/{run['id']}")
    # the card holds the last frame's metrics and panels once the page has fetched them
    page.wait_for_function("s => { const c = document.querySelector('#results-card');"
                           " return c && +c.dataset.step === s && +c.dataset.panelsStep === s; }",
                           arg=run["step"], timeout=60_000)
    rows = card_rows(page)
    assert rows, "the card lists no numbers"
    assert page.locator("#results-card").get_attribute("data-family") == run["config"]["model"]["kind"]
    for row in rows:
        expected = run["metrics"][row["key"]] if row["source"] == "metric" else lookup(run["panels"], row["key"])
        assert float(row["value"]) == expected, row  # the very number the API answers
        shown = float(row["text"].rstrip("%")) / (100 if row["text"].endswith("%") else 1)
        assert shown == pytest.approx(expected, rel=0.01, abs=1e-3), row  # and the text says it, rounded
    key, badge = HEADLINE[name]
    if key is None:
        features = {k: v for k, v in run["metrics"].items() if k.startswith("probe_") and k != "probe_pixels"}
        assert features and "probe_pixels" in run["metrics"], run["metrics"]
        key = max(features, key=features.get)
    row = next((r for r in rows if r["key"] == key), None)
    assert row is not None and row["badge"] == badge, (key, rows)
    headline = page.locator("#results-headline").inner_text()
    assert row["text"] in headline, (row, headline)  # the headline states that number

    # item 2: the orientation map exists only where units have a spatial layout
    page.wait_for_function("s => +document.querySelector('canvas[data-panel=filter_grid]')?.dataset.drawnStep === s",
                           arg=run["step"], timeout=60_000)
    has_map = name in ("topographic", "local")
    assert page.locator("[data-panel-box]").count() == len(run["panels"])  # a box for each kind the frame has
    assert ("topographic_map" in run["panels"]) is has_map
    assert page.locator("[data-panel-box=topographic_map]").count() == int(has_map)
    if has_map:
        page.wait_for_function("s => +document.querySelector('canvas[data-panel=topographic_map]')?.dataset.drawnStep === s",
                               arg=run["step"], timeout=60_000)
    page.screenshot(timeout=120_000, path=str(artifacts_dir / f"results_card_{name}.png"))

    # the run list: the same result in one line (from the metrics alone)
    page.goto(f"{stack['url']}/#/?q={run['title'].replace(' ', '+')}")
    line = page.locator(f"tr[data-run='{run['id']}'] [data-result] .result-line")
    line.wait_for(timeout=30_000)
    if row["source"] == "metric":
        assert row["text"] in line.inner_text(), (row, line.inner_text())
    if name == "lista":
        page.locator("#run-filters").screenshot(timeout=60_000, path=str(artifacts_dir / "results_list_filter.png"))
        page.locator("table.runs").screenshot(timeout=60_000, path=str(artifacts_dir / "results_list.png"))
