"""examples/own_sae.py — a user's own training loop logging through pinwheel.log — against the real
stack, then its run page in real Chromium: the filters are on the timeline, frame by frame."""
from __future__ import annotations

import base64
import io
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from .. import services
from ..conftest import wait_for_status

pytestmark = pytest.mark.browser
CANVAS = "document.querySelector('canvas[data-panel={kind}]')"


@pytest.fixture(scope="module")
def example_run(stack):
    env = {**stack["env"], "PINWHEEL_URL": stack["url"], "PINWHEEL_TOKEN": services.ADMIN_TOKEN}
    out = subprocess.run([sys.executable, str(services.ROOT / "examples" / "own_sae.py"), "--steps", "2000",
                          "--log-every", "25", "--min-interval", "0.2"], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    run_id = re.search(r"/#/runs/([0-9a-f]{32})", out.stdout).group(1)
    assert out.stdout.strip().splitlines()[-1].startswith("succeeded at step 2000")
    return run_id


def wait_drawn(page, kind: str, step: int) -> None:
    page.wait_for_function(f"s => +{CANVAS.format(kind=kind)}?.dataset.drawnStep === s", arg=step, timeout=30_000)


def canvas_png(page, kind: str) -> np.ndarray:
    url = page.evaluate(f"() => {CANVAS.format(kind=kind)}.toDataURL('image/png')")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("L"), dtype=float)


def test_example_run_page_shows_its_filters_on_the_timeline(stack, api, page, example_run, artifacts_dir):
    record = wait_for_status(api, example_run, ("succeeded",))
    assert record["provenance"]["origin"] == "external" and record["config"]["steps"] == 2000
    frames = api.get(f"/api/runs/{example_run}/frames", params={"panels": False, "limit": 100}).json()["frames"]
    steps = [f["step"] for f in frames]
    assert steps[-1] == 2000 and len(steps) >= 3  # the first frames may merge while the sender starts
    assert frames[-1]["metrics"]["reconstruction"] < frames[0]["metrics"]["reconstruction"]  # it learned

    page.goto(f"{stack['url']}/#/runs/{example_run}")
    wait_drawn(page, "filter_grid", 2000)  # the page opens on the newest frame
    last = canvas_png(page, "filter_grid")
    assert page.locator("#timeline").get_attribute("max") == str(len(steps) - 1)
    page.locator("body").press("Home")  # the timeline's first frame: the early filters
    wait_drawn(page, "filter_grid", steps[0])
    first = canvas_png(page, "filter_grid")
    assert first.shape == last.shape and first.std() > 10 and last.std() > 10  # real filters, not a blank canvas
    assert np.abs(first - last).mean() > 2  # the filters changed over the run and the timeline shows both
    for kind in ("reconstructions", "sparsity"):
        wait_drawn(page, kind, steps[0])
    assert page.locator("#clone-run").count() == 0  # no preset config to launch again
    page.screenshot(path=str(artifacts_dir / "external_run_page.png"), timeout=120_000)
