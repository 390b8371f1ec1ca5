"""In real headless Chromium: a run's worker is killed while the page watches; the page says the run
resumed from step N after a lost worker, drops the redone tail, and ends with one clean timeline."""
from __future__ import annotations

import pytest

from tests import services
from tests.integration.faults import FaultStack, kill
from tests.integration.test_faults import LONG_RUN, checkpointed, launch

pytestmark = pytest.mark.browser


def test_the_run_page_says_it_resumed_and_keeps_one_timeline(tmp_path, artifacts_dir, browser):
    stack = FaultStack(tmp_path, artifacts_dir, "browser-resume")
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        stack.start_worker()
        run_id = launch(stack, LONG_RUN)
        page.goto(f"{stack.url}/#/login?token={services.ADMIN_TOKEN}")
        page.wait_for_function("() => !!localStorage.getItem('pinwheel.token')", timeout=15_000)
        page.goto(f"{stack.url}/#/runs/{run_id}")
        checkpointed(stack, run_id, 300)
        page.wait_for_function("() => +document.querySelector('.timeline input[type=range]').max > 5",
                               timeout=60_000)
        kill(stack.workers[0])
        stack.start_worker()
        notice = page.locator("#run-notice")
        page.wait_for_function("() => /resumed from step \\d+ after a lost worker/.test("
                               "document.querySelector('#run-notice')?.textContent ?? '')", timeout=120_000)
        page.screenshot(path=str(artifacts_dir / "run-page-resumed.png"))
        stack.wait_for(run_id, lambda r: r["status"] == "succeeded", 240, "the run did not finish")
        page.wait_for_function("() => document.querySelector('#run-status').textContent === 'succeeded'",
                               timeout=60_000)
        stored = stack.stored_steps(run_id)
        slider_frames = page.evaluate("() => +document.querySelector('.timeline input[type=range]').max + 1")
        assert slider_frames == len(stored), (slider_frames, len(stored))
        assert "attempt 2" in notice.inner_text().lower()
        page.reload()  # the record lists both attempts, the first ended by its lost worker
        page.wait_for_function("() => document.querySelectorAll('#run-attempts tr[data-attempt]').length === 2",
                               timeout=30_000)
        first = page.locator('#run-attempts tr[data-attempt="1"]').text_content()
        assert "lease expired" in first or "taken over" in first, first
        assert not errors, errors
    finally:
        page.close()
        stack.stop()


def test_a_queued_run_says_where_it_stands(tmp_path, artifacts_dir, browser):
    stack = FaultStack(tmp_path, artifacts_dir, "browser-queued")  # no worker at all
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    try:
        body = {**LONG_RUN, "config": {**LONG_RUN["config"], "train": {**LONG_RUN["config"]["train"], "device": "cuda"}}}
        run_id = launch(stack, body)
        page.goto(f"{stack.url}/#/login?token={services.ADMIN_TOKEN}")
        page.wait_for_function("() => !!localStorage.getItem('pinwheel.token')", timeout=15_000)
        page.goto(f"{stack.url}/#/runs/{run_id}")
        page.wait_for_function("() => /Queued: position 1 in the queue, waiting for a GPU worker/.test("
                               "document.querySelector('#run-notice')?.textContent ?? '')", timeout=30_000)
        assert page.locator("#run-attempts").text_content().startswith("No attempt yet")
        page.screenshot(path=str(artifacts_dir / "run-page-queued.png"))
    finally:
        page.close()
        stack.api.post(f"/api/runs/{run_id}/cancel")
        stack.stop()
