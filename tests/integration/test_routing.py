"""Routing and the worker list: a run asking for `cuda` waits for a GPU worker (and says so), other
runs go anywhere; every live worker is listed with its host, queues, current run and runs done."""
from __future__ import annotations

import pytest

from tests import services

from ..conftest import TINY_RUN
from .faults import FaultStack

pytestmark = pytest.mark.integration


def test_a_cuda_run_waits_for_a_gpu_worker_and_the_worker_list_shows_who_runs_what(tmp_path, artifacts_dir):
    stack = FaultStack(tmp_path, artifacts_dir, "routing")
    try:
        stack.start_worker(name="cpu-box@%h", PINWHEEL_DEVICE="")  # runs keep their own `device`
        cuda = {"preset": TINY_RUN["preset"], "config": {**TINY_RUN["config"], "train": {
            **TINY_RUN["config"]["train"], "device": "cuda"}}}
        gpu_run = stack.api.post("/api/runs", json=cuda).json()["id"]
        cpu_run = stack.api.post("/api/runs", json=TINY_RUN).json()["id"]
        done = stack.wait_for(cpu_run, lambda r: r["status"] == "succeeded", 120, "the CPU run did not run")
        assert done["environment"]["device"] == "cpu"
        assert done["environment"]["device_choice"] == "auto: no CUDA device on this worker"
        waiting = stack.run(gpu_run)
        assert waiting["status"] == "queued" and waiting["queue_position"] == 1
        assert waiting["waiting_for"] == "a GPU worker (none is up)"

        services.wait_until(lambda: stack.api.get("/api/workers").json()["workers"][0]["runs_done"] == 1, 30,
                            "the worker's next heartbeat")  # a heartbeat every 5 s
        listing = stack.api.get("/api/workers").json()
        assert listing["queues"]["gpu"] == [gpu_run] and listing["queues"]["celery"] == []
        (cpu,) = listing["workers"]
        assert cpu["name"].startswith("cpu-box@") and cpu["queues"] == ["celery"] and cpu["devices"] == ["cpu"]
        assert cpu["runs_done"] == 1 and cpu["run"] is None

        # a GPU worker joins (trained on the CPU here: PINWHEEL_DEVICE overrides the run's device)
        stack.start_worker("-Q", "gpu,celery", name="gpu0@%h")
        services.wait_until(lambda: stack.run(gpu_run)["status"] != "queued", 60, "the GPU worker taking it")
        busy = {w["name"].split("@")[0]: w for w in stack.api.get("/api/workers").json()["workers"]}
        run = stack.wait_for(gpu_run, lambda r: r["status"] == "succeeded", 120, "the cuda run did not finish")
        assert run["attempts"][0]["worker"].startswith("gpu0@")
        assert busy["gpu0"]["run"] in (gpu_run, None) and set(busy["gpu0"]["queues"]) == {"gpu", "celery"}
    finally:
        stack.stop()


def test_a_whole_gpu_run_waits_for_the_device_to_empty_and_keeps_it_to_itself(tmp_path, artifacts_dir):
    """Two worker processes share 'GPU 7' (PINWHEEL_RUNS_PER_GPU=2; trained on the CPU here)."""
    from datetime import datetime

    stack = FaultStack(tmp_path, artifacts_dir, "whole-gpu")
    shared = {"CUDA_VISIBLE_DEVICES": "7", "PINWHEEL_DEVICE": "cpu"}

    def run(whole: bool, steps: int) -> dict:
        train = {**TINY_RUN["config"]["train"], "device": "cuda", "whole_gpu": whole, "steps": steps}
        return {"preset": TINY_RUN["preset"], "config": {**TINY_RUN["config"], "train": train}}

    def span(run_id: str) -> tuple[datetime, datetime]:
        r = stack.run(run_id)
        return datetime.fromisoformat(r["attempts"][0]["started_at"]), datetime.fromisoformat(r["finished_at"])
    try:
        stack.start_worker("-Q", "gpu,celery", name="gpu0-1@%h", **shared)
        first = stack.api.post("/api/runs", json=run(False, 2000)).json()["id"]
        stack.wait_for(first, lambda r: r["status"] == "running", 60, "the shared-GPU run did not start")
        stack.start_worker("-Q", "gpu-whole,gpu,celery", name="gpu0@%h", **shared)
        whole = stack.api.post("/api/runs", json=run(True, 2000)).json()["id"]
        stack.wait_for(whole, lambda r: r["status"] == "running", 120, "the whole-GPU run did not start")
        later = stack.api.post("/api/runs", json=run(False, 300)).json()["id"]  # must wait for the whole run
        for r in (first, whole, later):
            stack.wait_for(r, lambda x: x["status"] == "succeeded", 240, f"run {r} did not finish")
        assert span(whole)[0] >= span(first)[1], "the whole-GPU run started while another ran on its device"
        assert span(later)[0] >= span(whole)[1], "a run shared the device with a whole-GPU run"
        assert stack.run(whole)["attempts"][0]["worker"].startswith("gpu0@")
    finally:
        stack.stop()
