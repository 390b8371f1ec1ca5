"""pinwheel.log against the real stack: frames reach the store and the page's APIs, cancel reaches the
loop, a slow link merges frames instead of blocking, a silent client's run ends failed."""
from __future__ import annotations

import io
import time

import numpy as np
import pytest

import pinwheel.log
from pinwheel._client_panels import LogArgumentError

from .. import services
from ..conftest import wait_for_status

pytestmark = pytest.mark.integration
RNG = np.random.default_rng(1)


def arrays(step: int):
    w = RNG.standard_normal((16, 64)).astype(np.float32) * (1 + step)
    z = np.abs(RNG.standard_normal((8, 16))).astype(np.float32)
    x = RNG.standard_normal((8, 64)).astype(np.float32)
    return {"filters": w, "layout": "grid", "codes": z, "inputs": x, "reconstructions": 0.9 * x}


def test_logged_run_has_frames_panels_weights_and_record(stack, api):
    run = pinwheel.log.init(stack["url"], services.ADMIN_TOKEN, name="own loop", config={"lam": 0.3},
                            total_steps=100, min_interval=0.0)
    assert run.url == f"{stack['url']}/#/runs/{run.id}"
    for i, step in enumerate(range(0, 101, 10)):  # a loop slower than the link: every frame goes out
        run.log(step, metrics={"loss": 1.0 / (1 + step)}, **arrays(step))
        services.wait_until(lambda: run.frames_sent == i + 1, 60, f"frame {i}")
    assert run.finish(weights={"W_d": np.ones((64, 16), np.float32)}) == "succeeded"

    record = wait_for_status(api, run.id, ("succeeded",))
    assert record["provenance"]["origin"] == "external" and record["config"] == {"lam": 0.3}
    assert record["step"] == 100 and record["total_steps"] == 100 and record["launched_by"] == "admin"
    assert record["environment"]["device"] == "external"
    frames = api.get(f"/api/runs/{run.id}/frames", params={"limit": 50}).json()["frames"]
    assert [f["step"] for f in frames] == list(range(0, 101, 10)) and frames[-1]["metrics"]["loss"] == pytest.approx(1 / 101)
    last = frames[-1]["panels"]
    assert set(last) == {"filter_grid", "reconstructions", "sparsity"}
    assert (last["filter_grid"]["count"], last["filter_grid"]["rows"], last["filter_grid"]["cols"]) == (16, 4, 4)
    weights = api.get(f"/api/runs/{run.id}/weights.npz")
    assert weights.status_code == 200
    with np.load(io.BytesIO(weights.content), allow_pickle=False) as w:
        assert w["W_d"].shape == (64, 16)
    bundle = api.get(f"/api/runs/{run.id}/bundle.zip")
    assert bundle.status_code == 200
    imported = api.post("/api/bundles", content=bundle.content, headers={"Content-Type": "application/zip"})
    assert imported.status_code == 201, imported.text  # an external run's bundle imports like any other
    copy = imported.json()
    assert copy["config"] == {"lam": 0.3} and copy["total_steps"] == 100 and copy["frame_count"] == len(frames)


def test_bad_arrays_are_refused_before_anything_is_sent(stack, api):
    run = pinwheel.log.init(stack["url"], services.ADMIN_TOKEN, name="bad shapes")
    with pytest.raises(LogArgumentError, match=r"^codes: expected \(batch, 16\), got shape \(8, 5\)"):
        run.log(0, filters=np.zeros((16, 64)), codes=np.zeros((8, 5)))
    with pytest.raises(LogArgumentError, match=r"^metrics\['loss'\]: expected a number, got str"):
        run.log(0, metrics={"loss": "low"})
    run.finish()
    assert wait_for_status(api, run.id, ("succeeded",))["frame_count"] == 0


def test_cancel_on_the_page_reaches_the_loop(stack, api):
    run = pinwheel.log.init(stack["url"], services.ADMIN_TOKEN, name="to cancel", total_steps=10**6, min_interval=0.05)
    step, deadline = 0, time.monotonic() + 60
    cancelled_at = None
    while not run.should_stop and time.monotonic() < deadline:
        run.log(step, metrics={"loss": 1.0})
        if step == 20:
            assert api.post(f"/api/runs/{run.id}/cancel").status_code == 200
            cancelled_at = step
        step += 1
        time.sleep(0.01)
    assert run.should_stop and cancelled_at == 20
    assert run.finish() == "cancelled"
    assert wait_for_status(api, run.id, ("cancelled",))["status"] == "cancelled"


def test_a_slow_link_merges_frames_and_never_blocks(stack, api):
    run = pinwheel.log.init(stack["url"], services.ADMIN_TOKEN, name="merged", min_interval=2.0)
    slowest = 0.0
    for step in range(200):
        t = time.perf_counter()
        run.log(step, metrics={"loss": float(step)}, **arrays(0))
        slowest = max(slowest, time.perf_counter() - t)
    run.finish()
    assert slowest < 0.2  # shape checks and copies only: the loop never waits on panels or HTTP
    assert run.frames_merged > 150 and run.frames_sent < 10
    wait_for_status(api, run.id, ("succeeded",))  # the store has every frame once it has the end
    frames = api.get(f"/api/runs/{run.id}/frames", params={"limit": 50, "panels": False}).json()["frames"]
    assert frames[-1]["step"] == 199  # the newest frame always goes out
    prev = -1
    for frame in frames:  # each frame's loss is the mean over the steps it stands for
        assert frame["metrics"]["loss"] == pytest.approx(np.mean(np.arange(prev + 1, frame["step"] + 1)))
        prev = frame["step"]


@pytest.fixture
def impatient_app(stack, artifacts_dir):
    """A second web process on the same Redis and store whose external runs go stale after 2 s."""
    env = {**stack["env"], "PINWHEEL_EXTERNAL_STALE_SECONDS": "2"}
    proc, url = services.start_app(env, artifacts_dir / "app-impatient.log")
    yield url
    services.stop(proc)


def test_a_silent_client_run_ends_failed(impatient_app, api):
    import httpx

    started = httpx.post(f"{impatient_app}/api/external/runs", json={"name": "goes quiet"},
                         headers=services.auth_headers(), timeout=30)
    assert started.status_code == 201, started.text
    run_id = started.json()["id"]
    done = wait_for_status(api, run_id, ("failed",), timeout=60)
    assert done["error"].startswith("external: no word from the client for 2 s")
    late = httpx.post(f"{impatient_app}/api/external/runs/{run_id}/frames", headers=services.auth_headers(),
                      json={"step": 1, "wall_time": 1.0, "metrics": {"loss": 1}}, timeout=30)
    assert late.status_code == 200 and late.json() == {"run_id": run_id, "status": "failed", "should_stop": True}


@pytest.mark.parametrize("sender", ["thread", "process"])
def test_both_senders_deliver_and_a_dead_child_hands_over(stack, api, sender):
    run = pinwheel.log.init(stack["url"], services.ADMIN_TOKEN, name=f"sender {sender}", min_interval=0.0,
                            sender=sender)
    run.log(0, metrics={"loss": 1.0}, **arrays(0))
    services.wait_until(lambda: run.frames_sent == 1, 60, "first frame")
    if sender == "process":
        assert run.sender_cpu_seconds > 0  # the panels were made in the child
        run._transport.proc.kill()  # the child dies: the logging thread takes the work over
        run._transport.proc.wait()
    run.log(10, metrics={"loss": 0.5}, **arrays(10))
    services.wait_until(lambda: run.frames_sent == 2, 60, "second frame")
    run.finish()
    frames = wait_for_status(api, run.id, ("succeeded",)) and api.get(
        f"/api/runs/{run.id}/frames", params={"limit": 10}).json()["frames"]
    assert [f["step"] for f in frames] == [0, 10] and frames[1]["panels"]["filter_grid"]["count"] == 16
