"""In real headless Chromium: launch the preset from the UI, watch the filter canvas redraw live, cancel
(after a confirmation; the header drops its ETA at once)."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.browser


def test_launch_watch_live_and_cancel(stack, browser, artifacts_dir, login):
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    login(page)  # the printed admin URL (write actions need a token)
    page.goto(stack["url"] + "/")
    page.locator("#new-run-toggle").click(timeout=15_000)  # the presets sit one click away, below "New run"
    launch = page.locator('button[data-preset="topographic-natural"]')
    launch.wait_for(timeout=15_000)
    launch.click()
    page.wait_for_url("**/#/runs/*", timeout=15_000)

    # the canvas must redraw at least three times with increasing steps
    drawn: list[int] = []
    canvas = page.locator('canvas[data-panel="filter_grid"]')
    for _ in range(3):
        previous = drawn[-1] if drawn else -1
        page.wait_for_function(
            "prev => { const c = document.querySelector('canvas[data-panel=filter_grid]');"
            " return c && c.dataset.drawnStep !== '' && +c.dataset.drawnStep > prev; }",
            arg=previous, timeout=60_000)
        drawn.append(int(canvas.get_attribute("data-drawn-step")))
    assert drawn == sorted(drawn) and len(set(drawn)) == 3

    # the canvas shows filters, not a blank: many distinct grey levels
    levels = page.evaluate("""() => {
        const c = document.querySelector('canvas[data-panel=filter_grid]');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const seen = new Set(); for (let i = 0; i < d.length; i += 4) seen.add(d[i]); return seen.size; }""")
    assert levels > 50
    assert page.locator("#run-status").inner_text() == "running"
    page.wait_for_function("() => document.querySelector('.curves[data-group=rates] .scatterlayer .trace') !== null", timeout=30_000)
    # loss terms on a log axis, fractions on a linear one (a chart of their own) with evenly spaced ticks
    axes = page.evaluate("() => Object.fromEntries([...document.querySelectorAll('.curves')].map(d =>"
                         " [d.dataset.group, [d._fullLayout.yaxis.type, d._fullLayout.yaxis._vals.map(v => v.x)]]))")
    assert axes["loss"][0] == "log" and axes["rates"][0] == "linear", axes
    steps = np.diff(axes["rates"][1])
    assert len(steps) >= 2 and np.allclose(steps, steps[0], rtol=1e-6), axes["rates"]
    page.screenshot(timeout=120_000, path=str(artifacts_dir / "live_run.png"), full_page=True)

    # Cancel asks first: dismissed, the run goes on; accepted, it stops
    assert "ETA" in page.locator("#run-eta").inner_text()
    asked: list[str] = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    page.locator("#cancel").click()
    assert asked and "Cancel" in asked[0], asked
    assert page.locator("#run-status").inner_text() == "running" and not page.locator("#cancel").is_disabled()
    page.once("dialog", lambda d: d.accept())
    page.locator("#cancel").click()
    # the ETA goes at once (the click handler drops it before the server answers), and stays gone
    assert "ETA" not in page.evaluate("() => document.querySelector('#run-eta').textContent")
    page.wait_for_function("() => document.querySelector('#run-status').textContent === 'cancelled'", timeout=30_000)
    assert "ETA" not in page.locator("#run-eta").inner_text()
    page.locator(".run-head").screenshot(timeout=60_000, path=str(artifacts_dir / "cancelled_run_header.png"))

    # reload: the page replays the stored frames
    page.reload()
    page.wait_for_function("() => document.querySelector('#run-status')?.textContent === 'cancelled'", timeout=15_000)
    page.wait_for_function(
        "() => +document.querySelector('canvas[data-panel=filter_grid]')?.dataset.drawnStep >= 0", timeout=15_000)
    assert "ETA" not in page.locator("#run-eta").inner_text()
    assert not errors, errors
    page.close()
