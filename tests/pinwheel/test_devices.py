"""GPU assignment: nvidia-smi listings (whole GPUs, MIG instances), CUDA_VISIBLE_DEVICES, a worker's check."""
from __future__ import annotations

import types

import pytest

from pinwheel import devices

TWO_GPUS = """\
GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-11111111-2222-3333-4444-555555555555)
GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-66666666-7777-8888-9999-000000000000)
"""

# the case: GPU 0 split in two MIG instances, GPU 1 whole (line numbering gave ['0', '3'])
ONE_MIG_SPLIT = """\
GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-5b6a3f1e-aaaa-bbbb-cccc-111111111111)
  MIG 3g.20gb     Device  0: (UUID: MIG-4f5e7c2a-1234-5678-9abc-def012345678)
  MIG 3g.20gb     Device  1: (UUID: MIG-8a9b0c1d-1234-5678-9abc-def012345678)
GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-c0ffee00-aaaa-bbbb-cccc-222222222222)
"""

OLD_DRIVER_MIG = """\
GPU 0: A100-SXM4-40GB (UUID: GPU-5b6a3f1e-aaaa-bbbb-cccc-111111111111)
  MIG 1g.5gb Device 0: (UUID: MIG-GPU-5b6a3f1e-aaaa-bbbb-cccc-111111111111/7/0)
  MIG 1g.5gb Device 1: (UUID: MIG-GPU-5b6a3f1e-aaaa-bbbb-cccc-111111111111/8/0)
"""


def test_whole_gpus_are_named_by_index():
    assert devices.visible_gpus({}, TWO_GPUS) == ["0", "1"]


def test_mig_instances_are_named_by_uuid_and_their_gpu_is_not_listed():
    assert devices.visible_gpus({}, ONE_MIG_SPLIT) == ["MIG-4f5e7c2a-1234-5678-9abc-def012345678",
                                                       "MIG-8a9b0c1d-1234-5678-9abc-def012345678", "1"]


def test_old_driver_mig_uuids_taken_as_written():
    assert devices.visible_gpus({}, OLD_DRIVER_MIG) == [
        "MIG-GPU-5b6a3f1e-aaaa-bbbb-cccc-111111111111/7/0", "MIG-GPU-5b6a3f1e-aaaa-bbbb-cccc-111111111111/8/0"]


@pytest.mark.parametrize("listing", ["", "NVIDIA-SMI has failed because it couldn't communicate with the driver.\n",
                                     "No devices found.\n"])
def test_no_gpu_listed(listing):
    assert devices.visible_gpus({}, listing) == []


def test_cuda_visible_devices_wins_over_the_listing():
    assert devices.visible_gpus({"CUDA_VISIBLE_DEVICES": "1, 3"}, TWO_GPUS) == ["1", "3"]
    mig = "MIG-4f5e7c2a-1234-5678-9abc-def012345678"
    assert devices.visible_gpus({"CUDA_VISIBLE_DEVICES": mig}, TWO_GPUS) == [mig]


@pytest.mark.parametrize("value", ["", " ", "-1", "-1,0", "NoDevFiles"])
def test_cuda_visible_devices_set_but_empty_means_none(value):
    assert devices.visible_gpus({"CUDA_VISIBLE_DEVICES": value}, TWO_GPUS) == []


def test_cuda_visible_devices_stops_at_the_first_invalid_entry_as_cuda_does():
    assert devices.visible_gpus({"CUDA_VISIBLE_DEVICES": "0,2,-1,1"}, TWO_GPUS) == ["0", "2"]


def test_listing_is_read_from_nvidia_smi_when_not_given(monkeypatch):
    monkeypatch.setattr(devices, "run_nvidia_smi", lambda: ONE_MIG_SPLIT)
    assert len(devices.visible_gpus({})) == 3
    monkeypatch.undo()
    monkeypatch.setattr(devices.subprocess, "run", lambda *a, **k: (_ for _ in ()).throw(FileNotFoundError()))
    assert devices.run_nvidia_smi() == "" and devices.visible_gpus({}) == []


def fake_torch(count: int, cuda_build: str | None = "12.4"):
    return types.SimpleNamespace(cuda=types.SimpleNamespace(is_available=lambda: count > 0, device_count=lambda: count),
                                 version=types.SimpleNamespace(cuda=cuda_build))


def test_a_worker_given_a_gpu_it_cannot_see_fails_loudly():
    env = devices.worker_env("3")
    assert env == {"CUDA_VISIBLE_DEVICES": "3", "PINWHEEL_GPU": "3"}
    with pytest.raises(devices.AssignedGpuMissing, match="given GPU '3'.*CPU-only build"):
        devices.require_assigned_gpu(env, fake_torch(0, cuda_build=None))
    with pytest.raises(devices.AssignedGpuMissing, match="finds no device"):
        devices.require_assigned_gpu(env, fake_torch(0))
    assert devices.require_assigned_gpu(env, fake_torch(1)) == "3"


def test_a_worker_given_no_gpu_is_not_checked():
    assert devices.require_assigned_gpu({}, fake_torch(0)) is None
    assert devices.require_assigned_gpu({"CUDA_VISIBLE_DEVICES": ""}, fake_torch(0)) is None


def test_module_is_torch_free():
    import subprocess
    import sys

    code = "import sys, pinwheel.devices; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
