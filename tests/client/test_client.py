"""pinwheel.client.Client against a real stack, and its models kept in step with the API's."""
from __future__ import annotations

import numpy as np
import pytest

from pinwheel._client_models import RunInfo
from pinwheel.client import Client, PinwheelError

from ..services import ADMIN_TOKEN

SMALL = {"data": {"pool_size": 2000}, "model": {"units": 64, "groups": {"pool": 4, "stride": 2}},
         "train": {"steps": 100, "batch_size": 64, "frame_every_steps": 20}}


def test_run_info_has_every_field_of_the_api_record():
    from backend.app.routers.runs import RunOut

    assert set(RunInfo.model_fields) == set(RunOut.model_fields)


@pytest.mark.integration
def test_launch_wait_download(stack, tmp_path):
    seen = []
    with Client(stack["url"], ADMIN_TOKEN) as pw:
        assert "topographic-natural" in {p.id for p in pw.presets()}
        run = pw.launch("topographic-natural", SMALL, title="from python")
        assert pw.run_url(run.id) == f"{stack['url']}/#/runs/{run.id}"
        done = pw.wait(run.id, poll=0.3, timeout=240, on_update=seen.append)
        assert done.status == "succeeded" and done.step == 100 and not done.active
        assert seen[-1] == done and len({r.step for r in seen}) >= 2  # it saw progress, not just the end
        path = pw.download(run.id, "weights", tmp_path)
        with np.load(path, allow_pickle=False) as arrays:
            assert arrays["W_d"].shape == (144, 64)
        assert run.id in {r.id for r in pw.runs(q="from python")}


@pytest.mark.integration
def test_errors_carry_the_field_and_the_reason(stack):
    with Client(stack["url"], ADMIN_TOKEN) as pw:
        with pytest.raises(PinwheelError) as err:
            pw.launch("topographic-natural", {"model": {"lam": -1}})
        assert err.value.status == 422 and err.value.field in ("config.model.group_sparse.lam", "config.model.lam", "model.lam")
        assert "greater than or equal to 0" in err.value.reason
    with Client(stack["url"], "pwu_wrong") as pw, pytest.raises(PinwheelError) as err:
        pw.runs()
    assert (err.value.status, err.value.field) == (401, "authorization")
    with pytest.raises(PinwheelError) as err:
        Client("localhost:8000")
    assert err.value.field == "url"
