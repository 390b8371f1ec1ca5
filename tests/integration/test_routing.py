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
