"""A worker that dies mid-run: the broker re-delivers the task and the run resumes from its
checkpoint instead of restarting (acks_late + visibility timeout + checkpoints)."""
from __future__ import annotations

import json
import os
import signal
import time

import httpx
import pytest
import redis

from pinwheel.protocol import stream_key
from tests import services

from ..conftest import TINY_RUN, wait_for_status

pytestmark = pytest.mark.integration


def test_killed_worker_run_resumes_from_checkpoint(tmp_path, artifacts_dir):
    redis_proc, redis_url = services.start_redis(tmp_path / "redis")
    env = services.service_env(redis_url, tmp_path)
    env["PINWHEEL_VISIBILITY_TIMEOUT_SECONDS"] = "2"  # so the test need not wait a week
    app, url = services.start_app(env, artifacts_dir / "redelivery-app.log")
    worker = services.start_worker(env, artifacts_dir / "redelivery-worker-1.log")
    second = None
    try:
        api = httpx.Client(base_url=url, timeout=30, headers=services.auth_headers())
        config = {**TINY_RUN["config"], "train": {**TINY_RUN["config"]["train"], "steps": 200_000,
                                                   "checkpoint_every_seconds": 0.5}}
        run = api.post("/api/runs", json={"preset": TINY_RUN["preset"], "config": config}).json()
        client = redis.Redis.from_url(redis_url)
        checkpoint = tmp_path / "artifacts" / run["id"] / "checkpoint.pt"
        deadline = time.monotonic() + 60
        while not checkpoint.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert checkpoint.exists(), "no checkpoint was written"
        time.sleep(0.6)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        killed_at = api.get(f"/api/runs/{run['id']}").json()["step"]
        assert killed_at > 0
        time.sleep(2.5)  # past the visibility timeout: the message becomes visible again
        second = services.start_worker(env, artifacts_dir / "redelivery-worker-2.log")
        deadline = time.monotonic() + 60
        resumed = None
        while resumed is None and time.monotonic() < deadline:
            for _, fields in client.xrange(stream_key(run["id"])):
                data = json.loads(fields[b"data"])
                if fields[b"type"] == b"status" and data.get("resumed_from_step"):
                    resumed = data["resumed_from_step"]
            time.sleep(0.2)
        assert resumed is not None, "the task was not re-delivered"
        assert 0 < resumed <= killed_at + 200  # from the last checkpoint, not from step 0
        api.post(f"/api/runs/{run['id']}/cancel")
        done = wait_for_status(api, run["id"], ("cancelled",), timeout=60)
        # what the lost attempt stored past the checkpoint is superseded: one clean history
        steps = [f["step"] for f in api.get(f"/api/runs/{run['id']}/frames",
                                             params={"panels": False, "limit": 5000}).json()["frames"]]
        assert steps == sorted(set(steps)) and done["attempts"][-1]["resumed_from_step"] == resumed
    finally:
        for proc in (second, app, redis_proc):
            if proc is not None:
                services.stop(proc)
