"""In real headless Chromium: log in with the printed URL, share a live run and open the link in a
fresh context (no token: sees the live page, cannot cancel), compare two runs, and open the HTML
export from disk with the network off."""
from __future__ import annotations

import pytest

from ..conftest import TINY_RUN, wait_for_status

pytestmark = pytest.mark.browser


def test_login_share_compare_and_offline_export(stack, api, browser, login, artifacts_dir, tmp_path):
    url = stack["url"]
    done = api.post("/api/runs", json={**TINY_RUN, "title": "finished tiny"}).json()
    wait_for_status(api, done["id"], ("succeeded",))
    live_cfg = {**TINY_RUN["config"], "train": {**TINY_RUN["config"]["train"], "steps": 1_000_000}}
    live = api.post("/api/runs", json={**TINY_RUN, "config": live_cfg, "title": "long live run"}).json()
    errors: list[str] = []
    try:
        owner = browser.new_context(viewport={"width": 1300, "height": 900})
        page = owner.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        login(page)
        assert "token" not in page.url  # stripped from the address bar (and history)

        page.goto(f"{url}/#/runs/{live['id']}")
        page.locator("#copy-share").click()
        page.wait_for_function("() => document.querySelector('#share-link')?.value.includes('/#/share/')",
                               timeout=15_000)
        link = page.locator("#share-link").input_value()
        assert link.startswith(url + "/#/share/pws_")

        guest_ctx = browser.new_context(viewport={"width": 1300, "height": 900})  # no token at all
        guest = guest_ctx.new_page()
        guest.on("pageerror", lambda e: errors.append(str(e)))
        guest.goto(link)
        guest.wait_for_url(f"**/#/runs/{live['id']}", timeout=15_000)
        first = guest.wait_for_function(
            "() => +document.querySelector('canvas[data-panel=filter_grid]')?.dataset.drawnStep >= 0",
            timeout=60_000) and int(guest.locator('canvas[data-panel="filter_grid"]').get_attribute("data-drawn-step"))
        guest.wait_for_function(  # live: newer frames keep arriving over SSE (with a read ticket)
            "s => +document.querySelector('canvas[data-panel=filter_grid]').dataset.drawnStep > s", arg=first,
            timeout=60_000)
        assert guest.locator("#copy-share").count() == 0 and guest.locator("#delete-run").count() == 0
        # dispatch the click directly: live redraws keep the layout moving, and on a loaded machine
        # Playwright's wait for a "stable" element can outlast the test; the handler is what matters
        guest.locator("#cancel").dispatch_event("click")
        guest.wait_for_function("() => /read|403|authori/i.test(document.querySelector('#run-error').textContent)",
                                timeout=15_000)
        guest.screenshot(timeout=120_000, path=str(artifacts_dir / "share_guest.png"), full_page=True)
        assert api.get(f"/api/runs/{live['id']}").json()["status"] == "running"
        other = guest.evaluate(f"""async () => (await fetch('/api/runs/{done["id"]}',
            {{headers: {{Authorization: 'Bearer ' + sessionStorage.getItem('pinwheel.share')}}}})).status""")
        assert other == 403  # the link reaches its own run only

        page.goto(f"{url}/#/compare/{done['id']},{live['id']}")
        page.wait_for_function(f"() => document.querySelector('img[data-run=\"{done['id']}\"]')?.naturalWidth > 0",
                               timeout=30_000)
        page.wait_for_function("() => document.querySelector('#compare-curves .scatterlayer .trace')", timeout=30_000)
        diff = page.locator("#config-diff tr.diff").all_inner_texts()
        assert any(row.startswith("train.steps") for row in diff), diff
        page.select_option("#compare-align", "fraction")
        page.wait_for_function("() => /% of training/.test(document.querySelector('#compare-cursor').textContent)")
        page.screenshot(timeout=120_000, path=str(artifacts_dir / "compare.png"), full_page=True)

        page.goto(f"{url}/#/runs/{done['id']}")
        with page.expect_download(timeout=60_000) as dl:
            page.locator("#export-html").click()
        exported = tmp_path / "export.html"
        dl.value.save_as(exported)
        offline_ctx = browser.new_context(offline=True, viewport={"width": 1300, "height": 900})
        offline = offline_ctx.new_page()
        requests: list[str] = []
        offline.on("request", lambda r: requests.append(r.url))
        offline.goto(exported.as_uri())
        offline.wait_for_function("() => document.body.dataset.ready === '1'", timeout=30_000)
        offline.wait_for_function("() => document.querySelector('#curves .scatterlayer .trace')", timeout=30_000)
        assert offline.evaluate("() => document.querySelector('#filters').naturalWidth") > 0
        assert offline.locator("#title").inner_text() == "finished tiny"
        assert all(r.startswith(("file:", "data:")) for r in requests), requests
        offline.screenshot(timeout=120_000, path=str(artifacts_dir / "export_offline.png"), full_page=True)
        assert not errors, errors
    finally:
        api.post(f"/api/runs/{live['id']}/cancel")
        wait_for_status(api, live["id"], ("cancelled", "succeeded", "failed"), timeout=60)
