"""Workers on other hosts share no disk with the web side: they hand a run's files over HTTP, and a
run whose worker dies on host B resumes on host C from the checkpoint B handed over."""
from __future__ import annotations

import httpx
import pytest

from .faults import FaultStack, kill
from .test_faults import LONG_RUN, launch

pytestmark = pytest.mark.integration
TOKEN = "worker-token-for-tests"


def test_a_run_killed_on_host_b_resumes_on_host_c_with_no_shared_disk(tmp_path, artifacts_dir):
    web_files = tmp_path / "web-files"
    stack = FaultStack(tmp_path, artifacts_dir, "no-shared-disk", PINWHEEL_WORKER_TOKEN=TOKEN,
                       PINWHEEL_ARTIFACTS_DIR=str(web_files))
    try:
        host = lambda name: {"PINWHEEL_ARTIFACTS_DIR": str(tmp_path / name), "PINWHEEL_SERVER_URL": stack.url,
                             "PINWHEEL_WORKER_TOKEN": TOKEN}
        worker_b = stack.start_worker(**host("host-b"))
        run_id = launch(stack)
        checkpoint = web_files / run_id / "checkpoint.pt"  # on the web side, put there by host B over HTTP
        stack.wait_for(run_id, lambda r: checkpoint.exists() and r["step"] >= 300, 120, "a checkpoint handed over")
        assert (tmp_path / "host-b" / run_id / "checkpoint.pt").exists()

        # only the attempt that holds the run may write its files; no token, no write
        url = f"/api/worker/runs/{run_id}/files/checkpoint.pt"
        with httpx.Client(base_url=stack.url) as c:
            assert c.put(url, content=b"x", headers={"X-Pinwheel-Attempt": "1"}).status_code == 401
            assert c.put(url, content=b"x", headers={"Authorization": f"Bearer {TOKEN}",
                                                     "X-Pinwheel-Attempt": "7"}).status_code == 409
            assert c.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401

        kill(worker_b)
        import torch

        handed_over = torch.load(checkpoint, weights_only=True)["step"]
        stack.start_worker(**host("host-c"))
        run = stack.wait_for(run_id, lambda r: r["status"] == "succeeded", 240, "the run did not finish on host C")
        assert [a["attempt"] for a in run["attempts"]] == [1, 2] and run["attempts"][1]["resumed_from_step"] == handed_over > 0
        assert (tmp_path / "host-c" / run_id / "checkpoint.pt").exists()  # fetched from, and handed back to, the web
        weights = stack.api.get(f"/api/runs/{run_id}/weights.npz")
        assert weights.status_code == 200 and len(weights.content) > 1000
        import io

        import numpy as np

        final = torch.load(web_files / run_id / "checkpoint.pt", weights_only=True)
        assert final["step"] == LONG_RUN["config"]["train"]["steps"]
        assert np.load(io.BytesIO(weights.content)).files
    finally:
        stack.stop()
