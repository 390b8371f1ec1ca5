"""Shared fixtures. Integration and browser tests run against real processes (tests/services.py)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from . import services

ARTIFACTS = services.ROOT / "test-artifacts"  # screenshots and logs kept after the run
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]

# A run small enough for tests: a few hundred steps on a small patch pool.
TINY_RUN = {"preset": "topographic-natural",
            "config": {"data": {"pool_size": 2000}, "model": {"units": 64, "groups": {"pool": 4, "stride": 2}},
                       "train": {"steps": 400, "batch_size": 64, "frame_every_steps": 20, "frame_every_seconds": 0.2}}}


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    proc, url = services.start_redis(tmp_path_factory.mktemp("redis"))
    yield url
    services.stop(proc)


@pytest.fixture(scope="session")
def stack(redis_url, tmp_path_factory, artifacts_dir):
    """Worker + web app sharing a fresh database and artifact folder. Yields the base URL."""
    var = tmp_path_factory.mktemp("var")
    env = services.service_env(redis_url, var)
    worker = services.start_worker(env, artifacts_dir / "worker.log")
    app, url = services.start_app(env, artifacts_dir / "app.log")
    yield {"url": url, "redis_url": redis_url, "var": var, "env": env}
    services.stop(app)
    services.stop(worker)


@pytest.fixture
def api(stack):
    """An HTTP client of the stack that sends the admin's bearer token."""
    with httpx.Client(base_url=stack["url"], timeout=30, headers=services.auth_headers()) as client:
        yield client


@pytest.fixture
def login(stack):
    """login(page): log a Chromium page in the way a person does, with the URL `make run` prints."""
    def _login(page, token: str = services.ADMIN_TOKEN) -> None:
        page.goto(f"{stack['url']}/#/login?token={token}")
        page.wait_for_function("() => location.hash === '#/' && !!localStorage.getItem('pinwheel.token')",
                               timeout=15_000)
    return _login


def wait_for_status(api, run_id: str, statuses: tuple[str, ...], timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = api.get(f"/api/runs/{run_id}").json()
        if run["status"] in statuses:
            return run
        time.sleep(0.2)
    raise TimeoutError(f"run {run_id} still {run['status']} after {timeout}s")


def launch_and_finish(client, bodies: dict, title: str, timeout: float) -> dict:
    """Launch every named run at once (the worker takes them in turn), then wait for each to succeed."""
    ids = {}
    for name, body in bodies.items():
        res = client.post("/api/runs", json={**body, "title": f"{title} {name}"})
        assert res.status_code == 201, res.text
        ids[name] = res.json()["id"]
    return {name: wait_for_status(client, run_id, ("succeeded",), timeout=timeout) for name, run_id in ids.items()}


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(request, browser, login):
    """A logged-in Chromium page that fails the test on any uncaught page error. A test module may set
    PAGE_OPTIONS (new_page keyword arguments, e.g. its viewport or accept_downloads) over the defaults."""
    options = {"viewport": {"width": 1400, "height": 1000}, **getattr(request.module, "PAGE_OPTIONS", {})}
    p = browser.new_page(**options)
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    login(p)
    yield p
    p.close()
    assert not errors, errors


class Recorder:
    """The training loop's callbacks, recorded: frames, checkpoints (state, weights), and a stop
    after a given step. `weights` is the last checkpoint's weights."""

    def __init__(self, stop_after: int | None = None):
        self.frames, self.checkpoints, self.stop_after = [], [], stop_after

    @property
    def weights(self):
        return self.checkpoints[-1][1] if self.checkpoints else None

    def on_frame(self, frame):
        self.frames.append(frame)

    def on_checkpoint(self, state, weights):
        self.checkpoints.append((state, weights))

    def should_stop(self):
        return self.stop_after is not None and self.frames[-1]["step"] >= self.stop_after
