"""Launch → first frame in the browser, frames/s received, and the filters after 60 s of training.

Starts the real stack (embedded Redis, a Celery worker, uvicorn), drives headless Chromium:
clicks "Launch" on the topographic preset, records when the filter canvas first draws and every
redraw after, and after 60 s of training saves the filter grid as a PNG.
    PYTHONPATH=. python bench/live_path.py [--seconds 60]
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from playwright.sync_api import sync_playwright

from pinwheel.analysis import topography
from tests import services
from tests.conftest import CHROMIUM_ARGS

OUT = Path(__file__).parent / "results" / "live_path.json"
FIGURE = Path(__file__).parents[1] / "docs" / "figures" / "topographic_60s.png"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pinwheel-bench-"))
    redis_proc, redis_url = services.start_redis(tmp / "redis")
    env = services.service_env(redis_url, tmp)
    env.pop("OMP_NUM_THREADS")  # the worker gets both cores, as under `make run`
    worker = services.start_worker(env, tmp / "worker.log")
    app, url = services.start_app(env, tmp / "app.log")
    headers = services.auth_headers()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.goto(f"{url}/#/login?token={services.ADMIN_TOKEN}")
            page.wait_for_timeout(500)
            page.goto(url + "/")
            page.locator("#new-run-toggle").click(timeout=15_000)  # the presets sit one click away, below "New run"
            page.locator('button[data-preset="topographic-natural"]').wait_for()
            page.evaluate("""() => { window.__draws = []; document.addEventListener('drawn', e => {}, true);
                const obs = () => { const c = document.querySelector('canvas[data-panel=filter_grid]');
                  if (!c) return setTimeout(obs, 5);
                  c.addEventListener('drawn', ev => window.__draws.push({t: performance.timeOrigin + performance.now(),
                                                                       step: ev.detail.step})); };
                window.addEventListener('hashchange', () => setTimeout(obs, 0)); }""")
            clicked = time.time() * 1000
            page.locator('button[data-preset="topographic-natural"]').click()
            page.wait_for_function("() => window.__draws && window.__draws.length > 0", timeout=60_000)
            first = page.evaluate("() => window.__draws[0]")
            run_id = page.url.rsplit("/", 1)[-1]
            # wait until the run has trained for `seconds` of wall time
            while httpx.get(f"{url}/api/runs/{run_id}", headers=headers).json()["wall_time"] < args.seconds:
                time.sleep(0.5)
            draws = page.evaluate("() => window.__draws")
            canvas = page.locator('canvas[data-panel="filter_grid"]')
            FIGURE.parent.mkdir(parents=True, exist_ok=True)
            canvas.screenshot(path=str(FIGURE))
            run = httpx.get(f"{url}/api/runs/{run_id}", headers=headers).json()
            browser.close()
        time.sleep(1)  # the worker checkpoints at cancel; read the map off the newest weights
        httpx.post(f"{url}/api/runs/{run_id}/cancel", headers=headers)
        deadline = time.monotonic() + 30
        while httpx.get(f"{url}/api/runs/{run_id}", headers=headers).json()["status"] == "running" \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        weights = np.load(tmp / "artifacts" / run_id / "weights.npz")
        side = int(weights["grid_shape"][0])
        filters = weights["W_d"].T.reshape(-1, *weights["input_shape"])
        summary = topography.summarise(topography.orientation_map(filters, (side, side)), wrap=True)
        span = (draws[-1]["t"] - draws[0]["t"]) / 1000
        result = {
            "launch_to_first_frame_ms": round(first["t"] - clicked, 1),
            "frames_drawn": len(draws),
            "frames_per_second_drawn": round((len(draws) - 1) / span, 2) if span > 0 else None,
            "training_wall_time_s": run["wall_time"], "step_at_snapshot": run["step"],
            "steps_per_second": round(run["step"] / run["wall_time"], 1),
            "metrics_at_snapshot": run["metrics"], "figure": str(FIGURE.relative_to(FIGURE.parents[2])),
            "map": {k: (round(v, 3) if isinstance(v, float) else v) for k, v in vars(summary).items()},
        }
    finally:
        for proc in (app, worker, redis_proc):
            services.stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, indent=2))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
