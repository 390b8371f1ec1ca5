"""In real headless Chromium: the admin page (members, tokens shown once, revoke, who launched
what), share-link management on the run page, run-list search and filters, bundle import with the
server's refusal shown, and notes / titles carrying scripts that stay inert. Runs come from
hand-built bundles (POST /api/bundles), so no training is needed."""
from __future__ import annotations

import io
import json
import secrets
import zipfile

import httpx
import numpy as np
import pytest
from PIL import Image

from pinwheel.configs import RunConfig, preset_by_id

from .. import services

pytestmark = pytest.mark.browser


def bundle(title: str, status: str = "succeeded", tags: tuple[str, ...] = (), notes: str = "",
           extra: dict | None = None) -> bytes:
    """A small valid bundle: record, config, five frames of metrics and a filter atlas."""
    config = RunConfig.model_validate(preset_by_id("topographic-natural")["config"]).model_dump(mode="json")
    png = io.BytesIO()
    Image.fromarray((np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64)).save(png, format="PNG")
    metrics = "step,wall_time,time,loss,active_fraction\n" + "".join(
        f"{i * 10},{i * 0.5},{1e9 + i},{1 / (i + 1)},{0.1 * i}\n" for i in range(5))
    entries = {"record.json": json.dumps({"format": "pinwheel-bundle/1", "id": secrets.token_hex(16), "title": title,
                                          "status": status, "tags": list(tags), "notes": notes}),
               "config.json": json.dumps(config), "metrics.csv": metrics, "frames.json": "[]",
               "final_frame.json": json.dumps({"filter_grid": {"count": 64, "cols": 8}}),
               "filters.png": png.getvalue(), **(extra or {})}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return out.getvalue()


def import_run(client: httpx.Client, title: str, **kw) -> dict:
    res = client.post("/api/bundles", content=bundle(title, **kw), headers={"Content-Type": "application/zip"})
    assert res.status_code == 201, res.text
    return res.json()


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 1300, "height": 900})
    yield ctx
    ctx.close()


def watched(ctx):
    """A page that records uncaught errors and unexpected dialogs (dismissed); confirm_next(page)
    accepts the one confirm() the test is about to cause."""
    page = ctx.new_page()
    page.errors, page.dialogs, page.expect_confirm = [], [], []
    page.on("pageerror", lambda e: page.errors.append(str(e)))

    def on_dialog(d):
        if d.type == "confirm" and page.expect_confirm:
            page.expect_confirm.pop()
            d.accept()
        else:
            page.dialogs.append(f"{d.type}: {d.message}")
            d.dismiss()
    page.on("dialog", on_dialog)
    return page


def confirm_next(page) -> None:
    page.expect_confirm.append(True)


def test_admin_page_members_tokens_revoke_and_launches(stack, api, browser, context, login, artifacts_dir):
    url = stack["url"]
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=url)
    page = watched(context)
    login(page)
    page.locator("#nav-admin").wait_for(state="visible", timeout=10_000)
    page.locator("#nav-admin").click()
    page.locator("#members").wait_for(timeout=10_000)
    assert page.locator("#token-once").is_hidden()

    name = f"alice-{secrets.token_hex(3)}"
    page.fill("#member-name", name)
    page.click("#member-create")
    page.locator("#token-once").wait_for(state="visible", timeout=10_000)
    token = page.locator("#new-token").input_value()
    assert token.startswith("pwu_") and name in page.locator("#token-once-title").inner_text()
    assert page.locator("#new-login").input_value() == f"{url}/#/login?token={token}"
    page.click("#copy-token")
    page.wait_for_function("() => /copied/.test(document.querySelector('#copy-status').textContent)", timeout=5000)
    assert page.evaluate("() => navigator.clipboard.readText()") == token
    row = page.locator("#members tr", has_text=name)
    assert "member" in row.inner_text() and "active" in row.locator("[data-user-state]").inner_text()
    page.fill("#member-name", name)  # the same name again: the server's 409 is shown by the form
    page.click("#member-create")
    page.wait_for_function("() => /exists/.test(document.querySelector('#member-error').textContent)", timeout=5000)

    # the new member launches (imports) a run; the admin sees who launched what
    with httpx.Client(base_url=url, timeout=30, headers=services.auth_headers(token)) as member:
        run = import_run(member, f"run by {name}")
        assert run["launched_by"] == name
    page.reload()
    page.locator("#members").wait_for(timeout=10_000)
    assert page.locator("#members tr", has_text=name).locator("a").inner_text() == "1"
    page.select_option("#launches-by", name)
    launches = page.locator("#launches tr[data-launch]")
    assert launches.count() == 1 and f"run by {name}" in launches.inner_text()
    assert page.locator(f"#launches a[href='#/runs/{run['id']}']").count() == 1
    page.screenshot(timeout=120_000, path=str(artifacts_dir / "admin_page.png"), full_page=True)
    page.locator("#members tr", has_text=name).locator("a").click()  # their runs, in the filtered run list
    page.wait_for_function("""([who, id]) => document.querySelector('#filter-launched-by')?.value === who &&
        [...document.querySelectorAll('table.runs tr[data-run]')].map((r) => r.dataset.run).join() === id""",
                           arg=[name, run["id"]], timeout=10_000)
    page.click("#nav-admin")
    page.locator("#members tr", has_text=name).wait_for(timeout=10_000)

    # the member's own browser: no Admin link, and the page refuses them
    member_ctx = browser.new_context(viewport={"width": 1300, "height": 900})
    try:
        mpage = watched(member_ctx)
        login(mpage, token)
        mpage.locator("#nav-import").wait_for(state="visible", timeout=10_000)
        assert mpage.locator("#nav-admin").is_hidden()
        mpage.goto(f"{url}/#/admin")
        mpage.locator("#admin-refused").wait_for(timeout=10_000)
        assert mpage.locator("#members").count() == 0
        assert not mpage.errors, mpage.errors
    finally:
        member_ctx.close()

    # revoke: the row says so and the token stops working
    user_id = page.locator("#members tr", has_text=name).get_attribute("data-user")
    confirm_next(page)
    page.click(f"[data-revoke-user='{user_id}']")
    page.wait_for_function(f"() => /revoked/.test(document.querySelector('tr[data-user=\"{user_id}\"] [data-user-state]').textContent)",
                           timeout=10_000)
    assert page.locator(f"[data-revoke-user='{user_id}']").is_disabled()
    assert httpx.get(f"{url}/api/runs", headers=services.auth_headers(token)).status_code == 401
    page.screenshot(timeout=120_000, path=str(artifacts_dir / "admin_revoked.png"), full_page=True)
    assert not page.errors, page.errors


def test_share_links_listed_created_with_expiry_reused_and_revoked(stack, api, browser, context, login, artifacts_dir):
    url = stack["url"]
    run = import_run(api, "shared run")
    page = watched(context)
    login(page)
    page.goto(f"{url}/#/runs/{run['id']}")
    copy = page.locator("#copy-share")
    copy.click()
    page.wait_for_function("() => document.querySelector('#share-link')?.value.includes('/#/share/pws_')", timeout=10_000)
    first = page.locator("#share-link").input_value()
    page.wait_for_function("() => !document.querySelector('#copy-share').disabled")
    copy.click()  # the same live link again, not a new one
    page.wait_for_function("() => !document.querySelector('#copy-share').disabled")
    assert page.locator("#share-link").input_value() == first
    assert len(api.get(f"/api/runs/{run['id']}/shares").json()) == 1

    page.click("#share-links > summary")
    page.locator("#share-table tr[data-share]").first.wait_for(timeout=10_000)
    assert page.locator("#share-table tr[data-share]").count() == 1
    page.fill("#share-label", "for the reading group")
    page.select_option("#share-expiry", str(86400))
    page.click("#share-create")
    page.wait_for_function("() => document.querySelectorAll('#share-table tr[data-share]').length === 2", timeout=10_000)
    second = page.locator("#share-link").input_value()
    assert second != first and second.startswith(f"{url}/#/share/pws_")
    shares = api.get(f"/api/runs/{run['id']}/shares").json()
    dated = next(s for s in shares if s["label"] == "for the reading group")
    assert dated["expires_at"] is not None and dated["active"]
    row = page.locator(f"#share-table tr[data-share='{dated['id']}']")
    assert "for the reading group" in row.inner_text() and "never" not in row.inner_text()
    page.screenshot(timeout=120_000, path=str(artifacts_dir / "share_links.png"), full_page=False)

    # after a reload the button still reuses the link without expiry
    page.reload()
    copy.click()
    page.wait_for_function("() => document.querySelector('#share-link')?.value.includes('/#/share/')", timeout=10_000)
    assert page.locator("#share-link").input_value() == first
    assert len(api.get(f"/api/runs/{run['id']}/shares").json()) == 2

    # revoke the first: it is marked revoked, stops working, and the button now hands out the dated one
    undated = next(s for s in shares if s["expires_at"] is None)
    page.click("#share-links > summary")
    confirm_next(page)
    page.click(f"[data-revoke-share='{undated['id']}']")
    page.wait_for_selector(f"#share-table tr[data-share='{undated['id']}'][data-state=revoked]", timeout=10_000)
    assert "revoked" in page.locator(f"#share-table tr[data-share='{undated['id']}']").inner_text()
    copy.click()
    page.wait_for_function("s => document.querySelector('#share-link').value === s", arg=second, timeout=10_000)
    assert len(api.get(f"/api/runs/{run['id']}/shares").json()) == 2

    guest_ctx = browser.new_context(viewport={"width": 1300, "height": 900})
    try:
        guest = watched(guest_ctx)
        guest.goto(first)
        guest.wait_for_function("() => /invalid, expired or revoked/.test(document.querySelector('#view').textContent)",
                                timeout=10_000)
        guest.goto(second)
        guest.locator("#run-status").wait_for(timeout=10_000)
        assert guest.url == second  # the link stays in the address bar: it works when passed on
        assert guest.locator("#copy-share").count() == 0 and guest.locator("#share-links").count() == 0
    finally:
        guest_ctx.close()
    assert not page.errors and not page.dialogs, (page.errors, page.dialogs)


def test_run_list_search_and_filters(stack, api, context, login, artifacts_dir):
    url = stack["url"]
    mark = f"m{secrets.token_hex(3)}"
    alpha = import_run(api, f"alpha {mark}", tags=(f"{mark}-a", f"{mark}-all"))
    beta = import_run(api, f"beta {mark}", status="failed", tags=(f"{mark}-all",))
    member = api.post("/api/users", json={"name": f"bob-{mark}"}).json()
    with httpx.Client(base_url=url, timeout=30, headers=services.auth_headers(member["token"])) as bob:
        gamma = import_run(bob, f"gamma {mark}", status="cancelled", notes=f"notes mention {mark}-notes")

    page = watched(context)
    login(page)
    rows = page.locator("table.runs tr[data-run]")

    def shown(expected: set[str]) -> None:
        page.wait_for_function("""ids => JSON.stringify([...document.querySelectorAll('table.runs tr[data-run]')]
            .map((r) => r.dataset.run).sort()) === JSON.stringify(ids)""", arg=sorted(expected), timeout=10_000)

    page.fill("#filter-q", mark)
    shown({alpha["id"], beta["id"], gamma["id"]})
    alpha_row = page.locator(f"tr[data-run='{alpha['id']}']")
    assert f"alpha {mark}" in alpha_row.inner_text()
    assert alpha_row.locator(".tag").all_inner_texts() == [f"{mark}-a", f"{mark}-all"]
    assert page.locator(f"tr[data-run='{gamma['id']}'] [data-launched-by]").inner_text() == f"bob-{mark}"
    assert "3 matching" in page.locator("#filter-count").inner_text()

    page.select_option("#filter-status", "failed")
    shown({beta["id"]})
    page.select_option("#filter-status", "")
    page.fill("#filter-launched-by", f"bob-{mark}")
    shown({gamma["id"]})
    page.fill("#filter-launched-by", "")
    page.fill("#filter-q", f"{mark}-notes")  # words in the notes count too
    shown({gamma["id"]})
    page.fill("#filter-q", mark)
    shown({alpha["id"], beta["id"], gamma["id"]})
    page.locator(f"tr[data-run='{beta['id']}'] .tag[data-tag='{mark}-all']").click()
    shown({alpha["id"], beta["id"]})
    assert page.locator("#filter-tag").input_value() == f"{mark}-all"
    page.locator(f"tr[data-run='{alpha['id']}'] .tag[data-tag='{mark}-a']").click()  # both tags required
    shown({alpha["id"]})
    page.screenshot(timeout=120_000, path=str(artifacts_dir / "run_list_filters.png"), full_page=True)

    # the filters live in the address: a reload keeps them
    page.wait_for_function("() => location.hash.includes('tag=')")
    page.reload()
    shown({alpha["id"]})
    assert page.locator("#filter-q").input_value() == mark
    assert page.locator("#filter-tag").input_value() == f"{mark}-all, {mark}-a"
    page.fill("#filter-q", "no-such-run-" + mark)
    page.wait_for_function("() => /No runs match/.test(document.querySelector('#runs-empty')?.textContent)", timeout=10_000)
    assert rows.count() == 0
    page.click("#filter-clear")
    page.wait_for_function("() => document.querySelectorAll('table.runs tr[data-run]').length >= 3", timeout=10_000)
    assert page.locator("#filter-q").input_value() == "" and page.evaluate("() => location.hash") == "#/"
    assert not page.errors and not page.dialogs, (page.errors, page.dialogs)


def test_bundle_import_page_shows_refusals_and_opens_the_new_run(stack, api, context, login, artifacts_dir):
    page = watched(context)
    login(page)
    page.locator("#nav-import").wait_for(state="visible", timeout=10_000)
    page.click("#nav-import")
    page.locator("#import-form").wait_for(timeout=10_000)
    page.click("#bundle-import")  # nothing chosen
    assert "Choose a bundle" in page.locator("#import-error").inner_text()

    def refused(name: str, data: bytes, reason: str) -> str:
        page.set_input_files("#bundle-file", files=[{"name": name, "mimeType": "application/zip", "buffer": data}])
        page.click("#bundle-import")
        page.wait_for_function("r => !document.querySelector('#import-error').hidden && "
                               "document.querySelector('#import-error').textContent.includes(r)", arg=reason, timeout=10_000)
        text = page.locator("#import-error").inner_text()
        assert name in text and "HTTP 422" in text, text
        assert page.evaluate("() => location.hash") == "#/import"
        return text

    refused("notes.zip", b"this is not a zip", "bundle: not a .zip file")
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("../record.json", "{}")
    refused("evil.zip", evil.getvalue(), "path traversal are refused")
    page.screenshot(timeout=120_000, path=str(artifacts_dir / "import_refused.png"), full_page=True)
    refused("pickle.zip", bundle("with a pickle", extra={"model.pkl": b"\x80\x04K\x01."}), "no pickles")

    title = f"imported {secrets.token_hex(3)}"
    page.set_input_files("#bundle-file", files=[{"name": "good.zip", "mimeType": "application/zip",
                                                  "buffer": bundle(title, tags=("imported",))}])
    page.click("#bundle-import")
    page.wait_for_url("**/#/runs/*", timeout=15_000)
    run_id = page.evaluate("() => location.hash.split('/')[2]")
    page.locator("#run-status").wait_for(timeout=10_000)
    assert page.locator(".run-head h2").inner_text() == title
    run = api.get(f"/api/runs/{run_id}").json()
    assert run["title"] == title and run["provenance"]["imported"]["imported_by"] == "admin"
    page.wait_for_function("() => +document.querySelector('canvas[data-panel=filter_grid]')?.dataset.drawnStep >= 0",
                           timeout=15_000)
    page.screenshot(timeout=120_000, path=str(artifacts_dir / "import_done.png"), full_page=True)
    assert not page.errors and not page.dialogs, (page.errors, page.dialogs)


NOTES = """# Results <script>window.__pwned = 'script'; alert('script')</script>

<img src="x" onerror="window.__pwned = 'img'; alert('img')">
<svg><animate onbegin="window.__pwned = 'svg'" attributeName="x" dur="1s"></animate></svg>
<iframe src="javascript:window.top.__pwned = 'iframe'"></iframe>

- a [markdown javascript link](javascript:window.__pwned='md';alert('md'))
- a <a href="javascript:window.__pwned='a';alert('a')" id="raw-link">raw javascript link</a>
- a [safe link](https://example.org/paper)
"""


def test_notes_and_titles_with_scripts_stay_inert(stack, api, context, login, artifacts_dir):
    url = stack["url"]
    title = "<img src=x onerror=\"window.__pwned='title'; alert('title')\">"
    run = import_run(api, title, tags=("xss",))
    res = api.patch(f"/api/runs/{run['id']}", json={"notes": NOTES})
    assert res.status_code == 200, res.text
    page = watched(context)
    login(page)
    page.goto(f"{url}/#/runs/{run['id']}")
    page.locator("#run-record > summary").click()
    page.wait_for_function("() => /safe link/.test(document.querySelector('#run-notes').textContent)", timeout=10_000)
    page.wait_for_timeout(300)  # time for an onerror / onbegin to fire, were there one
    assert page.evaluate("() => window.__pwned") is None and page.dialogs == [], page.dialogs
    notes = page.locator("#run-notes")
    assert notes.locator("script, img, svg, iframe, [onerror], [onbegin]").count() == 0
    text = notes.inner_text()
    assert "<script>" in text and "<img" in text and "javascript:" in text  # shown as text, not markup
    hrefs = notes.locator("a").evaluate_all("as => as.map((a) => a.getAttribute('href'))")
    assert hrefs == ["https://example.org/paper"], hrefs
    for link in notes.get_by_text("javascript link").all():  # clicking the would-be links does nothing
        link.click()
    assert page.locator(".run-head h2").inner_text() == title  # the title is text too
    page.screenshot(timeout=120_000, path=str(artifacts_dir / "notes_inert.png"), full_page=True)

    page.goto(f"{url}/#/?tag=xss")  # the list and the admin page show the same title
    page.wait_for_selector(f"tr[data-run='{run['id']}']", timeout=10_000)
    assert page.locator(f"tr[data-run='{run['id']}'] td.run-name a").inner_text() == title
    page.goto(f"{url}/#/admin")
    page.wait_for_selector(f"#launches tr[data-launch='{run['id']}']", timeout=10_000)
    page.wait_for_timeout(500)  # time for any onerror / onbegin to have fired
    assert page.evaluate("() => window.__pwned") is None
    assert page.locator("img[src='x'], #view script").count() == 0
    assert page.dialogs == [], page.dialogs
    assert not page.errors, page.errors
