"""`device: auto` keeps models too small to gain from a GPU on the CPU (and says why); several worker
processes can share one GPU."""
from __future__ import annotations

from pinwheel.configs import RunConfig, deep_merge, preset_by_id
from pinwheel.devices import SMALL_STEP_MACS, choose_device, worker_specs


def config(preset: str, **overrides) -> RunConfig:
    return RunConfig.model_validate(deep_merge(preset_by_id(preset)["config"], overrides))


def test_auto_picks_the_cpu_for_small_models_and_says_why():
    small = config("topographic-natural", model={"units": 64}, train={"batch_size": 16})
    device, why = choose_device(small, cuda_available=True)
    assert device == "cpu" and "too small to gain from a GPU" in why
    params = 2 * 64 * 144 + 64  # W_e, W_d (144 = 12×12 patch) and b
    assert f"~{params * 16 / 1e6:.1f} M multiply-adds" in why and params * 16 < SMALL_STEP_MACS

    large = config("topographic-natural", model={"units": 1024}, train={"batch_size": 512})
    assert choose_device(large, cuda_available=True)[0] == "cuda"
    assert choose_device(large, cuda_available=False) == ("cpu", "auto: no CUDA device on this worker")


def test_several_workers_share_each_gpu_and_only_gpu_workers_take_the_gpu_queue():
    specs = worker_specs(["0", "MIG-abc"], runs_per_gpu=2, prefix="box-")
    assert [name for name, _, _ in specs] == ["box-gpu0", "box-gpu0-1", "box-gpu1", "box-gpu1-1"]
    assert [env["CUDA_VISIBLE_DEVICES"] for _, _, env in specs] == ["0", "0", "MIG-abc", "MIG-abc"]
    assert [queues for _, queues, _ in specs] == [["gpu-whole", "gpu", "celery"], ["gpu", "celery"]] * 2
    assert worker_specs([], runs_per_gpu=4) == [("celery", ["celery"], {"CUDA_VISIBLE_DEVICES": ""})]
