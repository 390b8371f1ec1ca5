"""Issue 14, items 8 and 10, in real Chromium: the home page shows the runs first with the presets and
the launch form one click away, and tells a logged-out visitor how to log in; the run page has a
dark theme that follows the system setting, lists its keyboard shortcuts on `?`, and fits a 390 px
phone without horizontal scrolling. Screenshots at 1440 px and 390 px, light and dark, are kept."""
from __future__ import annotations

import pytest

from ..conftest import TINY_RUN, wait_for_status

pytestmark = pytest.mark.browser

SMALL = {**TINY_RUN, "title": "home and theme", "config": {**TINY_RUN["config"],
         "train": {**TINY_RUN["config"]["train"], "steps": 60, "frame_every_steps": 10}}}


def test_a_logged_out_visitor_is_told_how_to_log_in(stack, browser):
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(stack["url"] + "/#/")
    help_box = page.locator("#login-help")
    help_box.wait_for(timeout=20_000)
    text = help_box.inner_text()
    assert "#/login?token=" in text and "make run" in text and "admin" in text
    assert page.locator(".error").count() == 0  # not only "a bearer token is required"
    context.close()
    assert not errors, errors


def test_the_run_list_comes_first_and_a_new_run_is_one_click_away(stack, browser, login, api):
    res = api.post("/api/runs", json=SMALL)
    assert res.status_code == 201, res.text
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    login(page)
    page.locator(f"tr[data-run='{res.json()['id']}']").wait_for(timeout=20_000)
    # the list sits near the top; the presets and the form are collapsed below "New run"
    assert page.locator("table.runs").bounding_box()["y"] < 300
    assert not page.locator("#new-run").evaluate("d => d.open")
    assert not page.locator("button[data-preset]").first.is_visible()
    page.locator("#new-run-toggle").click()
    page.locator("button[data-preset='topographic-natural']").wait_for(timeout=10_000)
    page.locator("#launch-form [data-path='model.units']").wait_for(timeout=10_000)
    page.close()
    assert not errors, errors


def no_horizontal_scroll(page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_run_page_theme_shortcuts_and_phone_width(stack, browser, login, api, artifacts_dir, scheme):
    res = api.post("/api/runs", json={**SMALL, "title": f"theme {scheme}"})
    assert res.status_code == 201, res.text
    run_id = res.json()["id"]
    wait_for_status(api, run_id, ("succeeded",), timeout=300)
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, color_scheme=scheme)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    login(page)
    page.goto(f"{stack['url']}/#/runs/{run_id}")
    page.wait_for_function("() => document.querySelector('canvas[data-panel=filter_grid]')?.dataset.drawnStep > 0"
                           " && document.querySelector('.curves .main-svg')", timeout=60_000)
    bg = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    channels = [int(c) for c in bg[bg.index("(") + 1:bg.index(")")].split(",")[:3]]
    assert (sum(channels) / 3 < 60) if scheme == "dark" else (sum(channels) / 3 > 200), bg
    # the curves' tick labels follow the theme (light text on dark)
    tick = page.evaluate("() => getComputedStyle(document.querySelector('.curves .xtick text')).fill")
    tick_rgb = [int(c) for c in tick[tick.index("(") + 1:tick.index(")")].split(",")[:3]]
    assert (sum(tick_rgb) / 3 > 150) if scheme == "dark" else (sum(tick_rgb) / 3 < 100), tick
    page.screenshot(path=str(artifacts_dir / f"run_page_1440_{scheme}.png"), full_page=True, timeout=120_000)

    # `?` lists the shortcuts, Esc closes them
    page.locator("body").press("?")
    sheet = page.locator("#shortcuts")
    sheet.wait_for(state="visible", timeout=10_000)
    listed = sheet.inner_text()
    for key in ("←", "Shift+←", "Home", "End", "Space", "L", "Esc"):
        assert key in listed, key
    if scheme == "dark":
        page.screenshot(path=str(artifacts_dir / "shortcuts_dark.png"), timeout=120_000)
    page.keyboard.press("Escape")
    sheet.wait_for(state="hidden", timeout=10_000)

    # a phone: 390 px wide, nothing wider than the screen
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_function("() => document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1",
                           timeout=20_000)
    assert no_horizontal_scroll(page)
    page.screenshot(path=str(artifacts_dir / f"run_page_390_{scheme}.png"), full_page=True, timeout=120_000)
    page.goto(f"{stack['url']}/#/")
    page.locator("table.runs tr[data-run]").first.wait_for(timeout=20_000)
    assert no_horizontal_scroll(page)
    page.screenshot(path=str(artifacts_dir / f"home_390_{scheme}.png"), full_page=True, timeout=120_000)
    context.close()
    assert not errors, errors
