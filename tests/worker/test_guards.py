"""The worker's guards (torch-free): memory estimate against the device, and the run's time limit."""
from __future__ import annotations

import subprocess
import sys

from pinwheel.configs import PRESETS, RunConfig
from pinwheel.configs.estimate import estimate_memory_bytes
from tests.services import ROOT
from worker.guards import Deadline, check_memory, device_available_bytes, host_available_bytes

GIB = 1024**3
LARGEST = {"model": {"kind": "group_sparse", "units": 16384, "groups": {"kind": "blocks_1d", "size": 4}},
           "data": {"kind": "natural_patches", "patch_size": 32}, "train": {"batch_size": 65536}}


def test_the_largest_config_is_refused_with_what_it_needs_and_what_there_is():
    cfg = RunConfig.model_validate(LARGEST)
    assert estimate_memory_bytes(cfg) > 5 * GIB  # it died on allocation above 5 GiB
    msg = check_memory(cfg, 4 * GIB)
    assert msg is not None and msg.startswith("needs ~") and msg.endswith("this worker has 4.0 GiB")
    need = float(msg.split("~")[1].split(" GiB")[0])
    assert need > 5


def test_every_preset_fits_a_small_machine_and_estimates_grow_with_the_config():
    for preset in PRESETS:
        cfg = RunConfig.model_validate(preset["config"])
        assert check_memory(cfg, 2 * GIB) is None, preset["id"]
    small = RunConfig.model_validate({"model": {"kind": "group_sparse", "units": 64,
                                                "groups": {"kind": "blocks_1d", "size": 4}}})
    bigger = RunConfig.model_validate({**small.model_dump(), "train": {"batch_size": 4096}})
    wider = RunConfig.model_validate({**small.model_dump(), "model": {**small.model.model_dump(), "units": 4096}})
    assert estimate_memory_bytes(small) < estimate_memory_bytes(bigger)
    assert estimate_memory_bytes(small) < estimate_memory_bytes(wider)


def test_unknown_capacity_never_refuses():
    cfg = RunConfig.model_validate(LARGEST)
    assert check_memory(cfg, None) is None and check_memory(cfg, 0) is None


def test_host_memory_is_read_and_cuda_is_the_callers():
    host = host_available_bytes()
    assert host is not None and 64 * 1024**2 < host < 1 << 50
    assert device_available_bytes("cuda", 3 * GIB) == 3 * GIB
    assert device_available_bytes("cpu") is not None


def test_deadline_from_celerys_timelimit():
    now = [100.0]
    clock = lambda: now[0]  # noqa: E731
    soft = Deadline.from_timelimit([3660, 3600], clock)  # (hard, soft) as request.timelimit gives them
    assert soft.seconds == 3600 and not soft.expired()
    now[0] += 3599
    assert not soft.expired()
    now[0] += 1
    assert soft.expired()
    assert not Deadline.from_timelimit(None, clock).expired()
    assert Deadline.from_timelimit((60, None), clock).seconds == 60


def test_guards_do_not_import_torch():
    code = "import sys, worker.guards; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
