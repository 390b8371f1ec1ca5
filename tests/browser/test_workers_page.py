"""In real headless Chromium: the Workers page lists the live worker and the queue for a member;
the admin page adds the command that joins a GPU machine (or says why there is none)."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_workers_page_and_admin_join_section(stack, browser, login, artifacts_dir):
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    login(page)
    page.wait_for_function("() => !document.getElementById('nav-workers').hidden", timeout=15_000)
    page.goto(stack["url"] + "/#/workers")
    page.wait_for_function("() => document.querySelectorAll('#workers tr[data-worker]').length >= 1", timeout=30_000)
    row = page.locator("#workers tr[data-worker]").first.inner_text()
    assert "celery" in row and "cpu" in row
    assert page.locator("#queue").inner_text().startswith("Queue — GPU:")
    page.screenshot(path=str(artifacts_dir / "workers-page.png"))
    page.goto(stack["url"] + "/#/admin")
    page.wait_for_function("() => (document.getElementById('join-message')?.textContent ?? '').length > 0",
                           timeout=30_000)
    assert "not started as a lab server" in page.locator("#join-message").inner_text()  # the test stack is not one
    assert page.locator("#admin-page #workers tr[data-worker]").count() >= 1
    assert not errors, errors
    page.close()
