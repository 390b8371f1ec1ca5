"""Sweeps end to end: `pinwheel sweep … --watch` queues a 2×2 grid on the real stack; the sweep page
in Chromium shows 4 rows whose numbers equal each run's API values, sorts, plots parallel
coordinates; Cancel sweep stops every run of a sweep; bad sweeps are refused naming the field."""
from __future__ import annotations

import json
import re

import pytest

from ..client.helpers import SMALL, cli
from ..conftest import wait_for_status
from ..services import ADMIN_TOKEN

pytestmark = pytest.mark.browser


@pytest.fixture
def config(tmp_path, stack):
    path = tmp_path / "config.json"
    assert cli(["login", stack["url"], "--token", ADMIN_TOKEN], path).returncode == 0
    return path


def table(page) -> list[dict]:
    return page.evaluate("""() => [...document.querySelectorAll('#sweep-table tbody tr')].map((tr) => {
        const row = {id: tr.dataset.run};
        for (const td of tr.querySelectorAll('td[data-key]')) row[td.dataset.key] = JSON.parse(td.dataset.value);
        return row; })""")


def test_sweep_of_four_runs_table_equals_the_api(stack, api, config, page, artifacts_dir):
    res = cli(["sweep", "topographic-natural", "--grid", "model.lam=0.1,0.3", "--grid", "train.lr=0.01,0.02",
               *SMALL, "--set", "train.steps=60", "--title", "lam×lr", "--watch"], config, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    sweep_id = re.search(r"/#/sweeps/([0-9a-f]{12})", res.stdout.splitlines()[0]).group(1)
    run_ids = re.findall(r"/#/runs/([0-9a-f]{32})", res.stdout)
    assert len(run_ids) == 4

    page.goto(f"{stack['url']}/#/sweeps/{sweep_id}")
    page.wait_for_function("() => document.querySelectorAll('#sweep-table tbody tr').length === 4", timeout=30_000)
    rows = table(page)
    assert sorted(r["id"] for r in rows) == sorted(run_ids)
    for row in rows:
        run = api.get(f"/api/runs/{row['id']}").json()
        assert row["status"] == run["status"] == "succeeded" and row["step"] == run["step"] == 60
        assert row["param:model.lam"] == run["config"]["model"]["lam"]
        assert row["param:train.lr"] == run["config"]["train"]["lr"]
        metrics = {k.removeprefix("metric:"): v for k, v in row.items() if k.startswith("metric:")}
        assert metrics == run["metrics"] and "loss" in metrics  # every final number, exactly the API's
    assert {(r["param:model.lam"], r["param:train.lr"]) for r in rows} == {(0.1, 0.01), (0.1, 0.02), (0.3, 0.01), (0.3, 0.02)}

    page.locator("#sweep-table th[data-key='metric:loss']").click()  # sortable: ascending, then descending
    losses = [r["metric:loss"] for r in table(page)]
    assert losses == sorted(losses)
    page.locator("#sweep-table th[data-key='metric:loss']").click()
    assert [r["metric:loss"] for r in table(page)] == sorted(losses, reverse=True)
    page.wait_for_selector("#sweep-parcoords .parcoords", timeout=30_000)  # Plotly's parallel coordinates
    labels = page.evaluate("() => [...document.querySelectorAll('#sweep-parcoords .axis-title')].map((t) => t.textContent)")
    assert labels == ["model.lam", "train.lr", "loss"]
    page.screenshot(path=str(artifacts_dir / "sweep_page.png"), timeout=120_000)

    shown = cli(["sweep-show", sweep_id, "--json"], config)
    assert [r["id"] for r in json.loads(shown.stdout)["runs"]] == run_ids


def test_cancel_sweep_stops_every_run(stack, api, page):
    res = api.post("/api/sweeps", json={"preset": "topographic-natural", "grid": {"model.lam": [0.1, 0.2]},
                                        "config": {"train": {"steps": 100000}}})
    assert res.status_code == 201, res.text
    sweep = res.json()
    page.goto(f"{stack['url']}/#/sweeps/{sweep['id']}")
    page.locator("#sweep-cancel:not([disabled])").click()
    for run in sweep["runs"]:
        assert wait_for_status(api, run["id"], ("cancelled",), timeout=120)["status"] == "cancelled"


@pytest.mark.parametrize("body, field", [
    ({"preset": "topographic-natural", "grid": {"model.lam": [0.1, "much"]}}, ["body", "config", "model"]),
    ({"preset": "topographic-natural", "grid": {"model..lam": [1]}}, ["body", "grid", "model..lam"]),
    ({"preset": "topographic-natural", "grid": {"model.lam": [0.1] * 65}}, ["body", "grid"]),
    ({"preset": "topographic-natural", "random": {"model.lam": {"low": 0.1, "high": 1}}}, ["body", "samples"]),
])
def test_bad_sweeps_are_refused_naming_the_field(api, body, field):
    before = len(api.get("/api/runs", params={"limit": 1000}).json())
    res = api.post("/api/sweeps", json=body)
    assert res.status_code == 422, res.text
    assert res.json()["detail"][0]["loc"][:len(field)] == field
    assert len(api.get("/api/runs", params={"limit": 1000}).json()) == before  # nothing was queued


SMALL_FORM = {"model.units": "64", "model.groups.pool": "4", "model.groups.stride": "2", "data.pool_size": "2000",
              "train.steps": "40", "train.batch_size": "64"}


def open_sweep_form(page, url: str) -> None:
    """The launch form from "New run", filled with a small config, its sweep controls open."""
    page.goto(url + "/#/")
    page.locator("#new-run-toggle").click(timeout=15_000)  # the launch form opens from "New run"
    page.locator("#launch-form [data-path='model.units']").wait_for(timeout=15_000)
    for path, value in SMALL_FORM.items():
        page.locator(f"#launch-form [data-path='{path}']").fill(value)
    page.locator("#sweep-controls summary").click()


def test_sweep_from_the_launch_form(stack, api, page):
    open_sweep_form(page, stack["url"])
    page.locator("#sweep-grid").fill("model.lam=0.1,")
    page.locator("#sweep-launch").click()
    assert page.locator("#sweep-error").inner_text() == "line 1: an empty value in model.lam"
    page.locator("#sweep-grid").fill("model.lam=0.1,0.2")
    page.locator("#sweep-launch").click()
    page.wait_for_function("() => /^#\\/sweeps\\/[0-9a-f]{12}$/.test(location.hash)", timeout=30_000)
    page.wait_for_function("() => document.querySelectorAll('#sweep-table tbody tr').length === 2", timeout=30_000)
    run_ids = page.evaluate("() => [...document.querySelectorAll('#sweep-table tbody tr')].map((tr) => tr.dataset.run)")
    runs = [wait_for_status(api, rid, ("succeeded",), timeout=180) for rid in run_ids]
    assert sorted(r["config"]["model"]["lam"] for r in runs) == [0.1, 0.2]
    assert all(r["config"]["model"]["units"] == 64 and r["config"]["train"]["steps"] == 40 for r in runs)


def test_a_sweep_over_the_members_limit_queues_nothing(api):
    before = len(api.get("/api/runs", params={"limit": 1000}).json())
    res = api.post("/api/sweeps", json={"preset": "topographic-natural", "grid": {"train.seed": list(range(21))}})
    assert res.status_code == 429 and res.json()["detail"].startswith("runs: a sweep of 21")
    assert len(api.get("/api/runs", params={"limit": 1000}).json()) == before


def test_a_random_sweep_from_the_launch_form(stack, api, page):
    open_sweep_form(page, stack["url"])
    page.locator("#sweep-grid").fill("model.lam~x:0.5")
    page.locator("#sweep-launch").click()
    assert page.locator("#sweep-error").inner_text() == "line 1: model.lam: low and high must be numbers"
    page.locator("#sweep-grid").fill("model.lam~0.05:0.5:log")
    page.locator("#sweep-samples").fill("3")
    page.locator("#sweep-launch").click()
    page.wait_for_function("() => /^#\\/sweeps\\/[0-9a-f]{12}$/.test(location.hash)", timeout=30_000)
    page.wait_for_function("() => document.querySelectorAll('#sweep-table tbody tr').length === 3", timeout=30_000)
    run_ids = page.evaluate("() => [...document.querySelectorAll('#sweep-table tbody tr')].map((tr) => tr.dataset.run)")
    runs = [wait_for_status(api, rid, ("succeeded", "running", "queued"), timeout=60) for rid in run_ids]
    lams = [r["config"]["model"]["lam"] for r in runs]
    assert all(0.05 <= lam <= 0.5 for lam in lams) and len(set(lams)) == 3
    for rid in run_ids:
        api.post(f"/api/runs/{rid}/cancel")
