"""Runs survive crashes: a killed worker, a killed Redis, a worker shut down mid-run, a run whose
worker never comes back, a long step, a long silence. Real Redis, worker and web processes; the
broker's visibility timeout stays at its default (a week), so recovery is the leases' doing."""
from __future__ import annotations

import signal
import time

import httpx
import pytest

from tests import services

from ..conftest import TINY_RUN
from .faults import FaultStack, Follower, kill

pytestmark = pytest.mark.integration
FRAME_EVERY, CHECKPOINT_EVERY = 20, 1.0
LONG_RUN = {"preset": TINY_RUN["preset"], "config": {
    **TINY_RUN["config"], "train": {**TINY_RUN["config"]["train"], "steps": 2500, "frame_every_steps": FRAME_EVERY,
                                    "frame_every_seconds": 0.25, "checkpoint_every_seconds": CHECKPOINT_EVERY}}}


@pytest.fixture
def stack(tmp_path, artifacts_dir, request):
    s = FaultStack(tmp_path, artifacts_dir, request.node.name[:40])
    yield s
    s.stop()


def launch(stack: FaultStack, body: dict = LONG_RUN) -> str:
    res = stack.api.post("/api/runs", json=body)
    assert res.status_code == 201, res.text
    return res.json()["id"]


def checkpointed(stack: FaultStack, run_id: str, min_step: int) -> dict:
    path = stack.tmp / "artifacts" / run_id / "checkpoint.pt"
    return stack.wait_for(run_id, lambda r: path.exists() and r["step"] >= min_step, 120, "a checkpoint")


def assert_one_clean_line(stack: FaultStack, run_id: str, follower: Follower) -> None:
    """Stored steps unique, increasing, no hole wider than the frame interval; the viewer saw the same."""
    steps = stack.stored_steps(run_id)
    assert steps == sorted(set(steps)), "duplicate or out-of-order steps stored"
    gaps = [b - a for a, b in zip(steps, steps[1:])]
    assert max(gaps) <= FRAME_EVERY, f"a hole of {max(gaps)} steps"
    assert steps[-1] == LONG_RUN["config"]["train"]["steps"]
    follower.join(timeout=120)
    assert follower.final_status() == "succeeded"
    assert follower.timeline() == steps, "the live viewer's timeline differs from the stored history"
    frames = stack.api.get(f"/api/runs/{run_id}/frames", params={"panels": False, "limit": 5000}).json()["frames"]
    assert [f["step"] for f in frames] == steps


def test_killed_worker_resumes_on_another_with_one_clean_history(stack):
    stack.start_worker()
    run_id = launch(stack)
    follower = Follower(stack.url, run_id)
    follower.start()
    checkpointed(stack, run_id, 300)
    kill(stack.workers[0])  # kill -9 mid-run
    stack.start_worker()  # as make run's supervisor does
    run = stack.wait_for(run_id, lambda r: r["status"] == "succeeded", 240, "the run did not finish")
    assert_one_clean_line(stack, run_id, follower)
    assert [a["attempt"] for a in run["attempts"]] == [1, 2]
    assert "lease expired" in run["attempts"][0]["ended"] or "taken over" in run["attempts"][0]["ended"]
    assert run["attempts"][1]["resumed_from_step"] > 0 and run["attempts"][1]["ended"] == "succeeded"
    redone = follower.redone()  # empty when the kill came before any frame past the checkpoint
    assert all(seconds <= CHECKPOINT_EVERY + 2.0 for _, seconds in redone), redone


def test_redis_killed_mid_run_is_waited_out(stack):
    stack.start_worker()
    run_id = launch(stack)
    follower = Follower(stack.url, run_id)
    follower.start()
    checkpointed(stack, run_id, 300)
    stack.kill_redis()
    time.sleep(1.0)  # an outage, not a blip: everything notices that Redis is gone
    stack.start_redis()
    run = stack.wait_for(run_id, lambda r: r["status"] == "succeeded", 240, "the run did not finish")
    assert_one_clean_line(stack, run_id, follower)
    assert run["attempts"][-1]["ended"] == "succeeded"


def test_worker_shut_down_mid_run_hands_the_run_back_with_nothing_lost(stack):
    first = stack.start_worker()
    run_id = launch(stack)
    follower = Follower(stack.url, run_id)
    follower.start()
    checkpointed(stack, run_id, 300)
    started = time.monotonic()
    kill(first, signal.SIGTERM)  # Ctrl-C of make run: a warm shutdown
    assert time.monotonic() - started < 30
    run = stack.wait_for(run_id, lambda r: r["status"] == "queued", 30, "the run was not handed back")
    assert "shut down" in run["attempts"][0]["ended"]
    stack.start_worker()
    run = stack.wait_for(run_id, lambda r: r["status"] == "succeeded", 240, "the run did not finish")
    assert_one_clean_line(stack, run_id, follower)
    assert all(steps <= FRAME_EVERY for steps, _ in follower.redone()), follower.redone()  # checkpointed at the stop


def cancel_and_delete(stack: FaultStack, run_id: str, within: float) -> dict:
    started = time.monotonic()
    res = stack.api.post(f"/api/runs/{run_id}/cancel")
    assert res.status_code == 200, res.text
    run = stack.wait_for(run_id, lambda r: r["status"] == "cancelled", within + 10, "not cancelled")
    assert time.monotonic() - started < within, f"cancel took {time.monotonic() - started:.1f}s"
    assert stack.api.delete(f"/api/runs/{run_id}").status_code == 204
    assert stack.api.get(f"/api/runs/{run_id}").status_code == 404
    return run


def test_a_run_whose_worker_never_returns_can_be_cancelled_and_deleted(stack):
    worker = stack.start_worker()
    first, second = launch(stack), launch(stack)
    checkpointed(stack, first, 100)
    kill(worker)
    # lease expired, re-queued, no worker: no one holds it, so the cancel ends it at once
    stack.wait_for(first, lambda r: r["status"] == "queued" and r["attempts"], 30, "not re-queued")
    run = cancel_and_delete(stack, first, within=3)
    assert "lease expired" in run["attempts"][0]["ended"]
    # never started, no worker at all: at once too
    cancel_and_delete(stack, second, within=3)


def test_a_run_cancelled_as_its_worker_dies_ends_when_the_lease_expires(stack):
    worker = stack.start_worker()
    run_id = launch(stack)
    checkpointed(stack, run_id, 100)
    kill(worker)
    run = cancel_and_delete(stack, run_id, within=3 + 6)  # lease TTL 3 s, reaper every second
    assert [a["attempt"] for a in run["attempts"]] == [1]


def test_a_queued_runs_stream_stays_up_through_a_minute_of_silence(stack):
    run_id = launch(stack)  # no worker: nothing is sent for a minute
    lines, started = [], time.monotonic()
    with httpx.Client(base_url=stack.url, headers=services.auth_headers(), timeout=httpx.Timeout(10, read=30)) as c:
        with c.stream("GET", f"/api/runs/{run_id}/events") as res:
            assert res.status_code == 200
            for line in res.iter_lines():  # a dropped connection ends this loop early
                lines.append(line)
                if time.monotonic() - started > 60:
                    break
    assert time.monotonic() - started > 60, f"the stream ended after {time.monotonic() - started:.1f}s"
    assert sum(line.startswith(": heartbeat") for line in lines) >= 15
    assert stack.api.post(f"/api/runs/{run_id}/cancel").json()["status"] == "cancelled"


def test_cancel_takes_effect_within_seconds_even_during_a_long_step(stack):
    stack.start_worker()
    slow = {"preset": "topographic-natural", "config": {
        "data": {"pool_size": 10000, "patch_size": 16}, "model": {"units": 4096, "groups": {"pool": 3, "stride": 1}},
        "train": {"steps": 6, "batch_size": 16384, "frame_every_steps": 1}}}
    run_id = launch(stack, slow)
    stack.wait_for(run_id, lambda r: r["status"] == "running" and r["frame_count"] >= 1, 180, "no first frame")
    started = time.monotonic()
    assert stack.api.post(f"/api/runs/{run_id}/cancel").status_code == 200
    run = stack.wait_for(run_id, lambda r: r["status"] == "cancelled", 30, "not cancelled")
    latency = time.monotonic() - started
    assert latency < 6, f"cancel took {latency:.1f}s"
    assert run["step"] < 6


def test_a_run_past_its_time_limit_fails_saying_so(tmp_path, artifacts_dir):
    # 20 s: at load 15 on two cores building the data alone took ~10 s, and the run must have stepped
    stack = FaultStack(tmp_path, artifacts_dir, "time-limit", PINWHEEL_MAX_RUN_SECONDS="20")
    try:
        stack.start_worker()
        body = {"preset": LONG_RUN["preset"], "config": {**LONG_RUN["config"], "train": {
            **LONG_RUN["config"]["train"], "steps": 10_000_000}}}
        started = time.monotonic()
        run_id = launch(stack, body)
        run = stack.wait_for(run_id, lambda r: r["status"] == "failed", 120, "not ended by its time limit")
        assert run["error"].startswith("time limit") and 0 < run["step"] < 10_000_000
        assert 20 <= time.monotonic() - started < 90
    finally:
        stack.stop()


def test_many_viewers_hold_no_database_connection(stack):
    """A lab meeting: 40 viewers on one run (the pool has 5 + 10 connections) and the API stays fast."""
    import threading

    run_id = launch(stack)  # queued: the streams only wait
    opened, stop = [], threading.Event()

    def view():
        with httpx.Client(base_url=stack.url, headers=services.auth_headers(),
                          timeout=httpx.Timeout(10, read=30)) as c:
            with c.stream("GET", f"/api/runs/{run_id}/events") as res:
                opened.append(res.status_code)
                for _ in res.iter_lines():
                    if stop.is_set():
                        return
    viewers = [threading.Thread(target=view, daemon=True) for _ in range(40)]
    for v in viewers:
        v.start()
    try:
        services.wait_until(lambda: len(opened) == 40, 60, "40 viewers")
        assert opened == [200] * 40
        for _ in range(5):
            started = time.monotonic()
            assert stack.api.get(f"/api/runs/{run_id}").status_code == 200
            assert stack.api.get("/api/runs").status_code == 200
            assert time.monotonic() - started < 5, "the API waits for a database connection"
    finally:
        stop.set()
        stack.api.post(f"/api/runs/{run_id}/cancel")
