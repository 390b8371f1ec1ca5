"""In real headless Chromium: log in with the printed URL, share a live run and open the link in a
fresh context (no token: sees the live page with no control it cannot use, and its address bar keeps
the share link, which reloads in yet another fresh context), compare two runs, and open the HTML
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
        # dispatched: on a loaded machine Playwright's wait after a click (for navigations) can outlast
        # the test while live frames redraw the page; the handler is what matters
        page.locator("#copy-share").dispatch_event("click")
        page.wait_for_function("() => document.querySelector('#share-link')?.value.includes('/#/share/')",
                               timeout=30_000)
        link = page.locator("#share-link").input_value()
        assert link.startswith(url + "/#/share/pws_")
        page.goto("about:blank")  # one live page at a time keeps a loaded machine's renderer responsive

        guest_ctx = browser.new_context(viewport={"width": 1300, "height": 900})  # no token at all
        guest = guest_ctx.new_page()
        guest.on("pageerror", lambda e: errors.append(str(e)))
        guest.goto(link)
        first = guest.wait_for_function(
            "() => +document.querySelector('canvas[data-panel=filter_grid]')?.dataset.drawnStep >= 0",
            timeout=60_000) and int(guest.locator('canvas[data-panel="filter_grid"]').get_attribute("data-drawn-step"))
        guest.wait_for_function(  # live: newer frames keep arriving over SSE (with a read ticket)
            "s => +document.querySelector('canvas[data-panel=filter_grid]').dataset.drawnStep > s", arg=first,
            timeout=60_000)
        # the address bar still holds the share link: the URL a viewer passes on works (issue 14, item 5)
        assert guest.url == link
        # no control the viewer cannot use: no Cancel, no share-link manager, no notes editing, no delete,
        # no Clone, and no Compare link (it would lead to an error)
        for absent in ("#cancel", "#copy-share", "#share-links", "#edit-notes", "#save-notes", "#delete-run", "#clone-run"):
            assert guest.locator(absent).count() == 0, absent
        assert guest.locator("#nav-compare").is_hidden()
        assert guest.locator("#results-card").count() == 1  # the result is read-only, so it is there
        guest.screenshot(timeout=120_000, path=str(artifacts_dir / "share_guest.png"), full_page=True)
        # the server refuses a cancel by the share token all the same
        refused = guest.evaluate(f"""async () => (await fetch('/api/runs/{live["id"]}/cancel', {{method: 'POST',
            headers: {{Authorization: 'Bearer ' + sessionStorage.getItem('pinwheel.share')}}}})).status""")
        assert refused in (401, 403), refused
        assert api.get(f"/api/runs/{live['id']}").json()["status"] == "running"

        other = guest.evaluate(f"""async () => (await fetch('/api/runs/{done["id"]}',
            {{headers: {{Authorization: 'Bearer ' + sessionStorage.getItem('pinwheel.share')}}}})).status""")
        assert other == 403  # the link reaches its own run only
        # passed on: the URL from the viewer's address bar opens the run in a fresh context
        passed_on = guest.url
        guest_ctx.close()
        passed_ctx = browser.new_context(viewport={"width": 1300, "height": 900})
        passed = passed_ctx.new_page()
        passed.on("pageerror", lambda e: errors.append(str(e)))
        passed.goto(passed_on)
        passed.wait_for_function(
            "() => +document.querySelector('canvas[data-panel=filter_grid]')?.dataset.drawnStep >= 0", timeout=60_000)
        assert passed.evaluate("() => document.querySelector('.run-head h2').textContent") == "long live run"
        assert passed.url == link and passed.evaluate("() => document.querySelector('#cancel')") is None
        passed.reload()  # and survives a reload
        passed.wait_for_function(
            "() => +document.querySelector('canvas[data-panel=filter_grid]')?.dataset.drawnStep >= 0", timeout=60_000)
        assert passed.url == link
        passed_ctx.close()

        page.goto(f"{url}/#/compare/{done['id']},{live['id']}")
        page.wait_for_function(f"() => document.querySelector('[data-compare-kind=filter_grid] [data-run=\"{done['id']}\"] canvas')"
                               "?.dataset.drawnStep > ''", timeout=30_000)
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
        offline.wait_for_function("() => document.querySelector('.curves .scatterlayer .trace')", timeout=30_000)
        offline.wait_for_function("() => document.querySelector('canvas[data-panel=filter_grid]')?.dataset.drawnStep > ''",
                                  timeout=30_000)
        assert offline.locator("#title").inner_text() == "finished tiny"
        assert all(r.startswith(("file:", "data:")) for r in requests), requests
        offline.screenshot(timeout=120_000, path=str(artifacts_dir / "export_offline.png"), full_page=True)
        assert not errors, errors
    finally:
        api.post(f"/api/runs/{live['id']}/cancel")
        wait_for_status(api, live["id"], ("cancelled", "succeeded", "failed"), timeout=60)
