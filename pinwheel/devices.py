"""Which GPUs a machine offers to workers, and a worker's check that it can see the one it was given.

Torch-free (the launcher imports it before any worker starts). `nvidia-smi -L` lists

    GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-5b6a3f1e-...)
      MIG 3g.20gb     Device  0: (UUID: MIG-4f5e7c2a-...)
      MIG 3g.20gb     Device  1: (UUID: MIG-8a9b0c1d-...)
    GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-c0ffee00-...)

A GPU split by MIG is usable only through its instances, and CUDA_VISIBLE_DEVICES names an
instance by its UUID; a GPU without instances is named by its index. So the listing above gives
three workers: ['MIG-4f5e7c2a-...', 'MIG-8a9b0c1d-...', '1'] (numbering the lines would give
['0', '1', '2', '3'], and the worker on '3' would see nothing). Older drivers print MIG UUIDs as
`MIG-GPU-<uuid>/<gi>/<ci>`; they are taken as written.

CUDA_VISIBLE_DEVICES, when set, wins over the listing: set and empty (or starting with an entry
CUDA rejects, such as -1) means no GPU on purpose, not "unset".
"""
from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping

ASSIGNED_VAR = "PINWHEEL_GPU"  # set by the launcher next to CUDA_VISIBLE_DEVICES: "this worker was given a GPU"

_GPU_LINE = re.compile(r"^GPU\s+(\d+)\s*:")
_MIG_LINE = re.compile(r"^\s*MIG\b.*\(UUID:\s*(MIG-[^)\s]+)\s*\)")
_VALID_ENTRY = re.compile(r"^(\d+|GPU-[0-9A-Za-z-]+|MIG-[0-9A-Za-z/-]+)$")


def parse_nvidia_smi_listing(listing: str) -> list[str]:
    """The devices of an `nvidia-smi -L` listing, one per whole GPU (its index) or MIG instance (its UUID)."""
    out: list[str] = []
    gpu: str | None = None  # the GPU whose lines we are reading, until it turns out to have MIG instances
    migs: list[str] = []

    def close() -> None:
        if gpu is not None:
            out.extend(migs if migs else [gpu])

    for line in listing.splitlines():
        if m := _GPU_LINE.match(line):
            close()
            gpu, migs = m.group(1), []
        elif (m := _MIG_LINE.match(line)) and gpu is not None:
            migs.append(m.group(1))
    close()
    return out


def parse_cuda_visible_devices(value: str) -> list[str]:
    """CUDA's reading of CUDA_VISIBLE_DEVICES: entries up to the first invalid one ('' or '-1' → none)."""
    out = []
    for entry in value.split(","):
        entry = entry.strip()
        if not _VALID_ENTRY.match(entry):
            break
        out.append(entry)
    return out


def run_nvidia_smi(timeout: float = 10.0) -> str:
    """`nvidia-smi -L`'s output, or '' where there is no nvidia-smi (or it fails)."""
    try:
        done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout if done.returncode == 0 else ""


def visible_gpus(env: Mapping[str, str] = os.environ, nvidia_smi_listing: str | None = None) -> list[str]:
    """One CUDA_VISIBLE_DEVICES value per worker: CUDA_VISIBLE_DEVICES's own entries if it is set (empty
    → []), else the whole GPUs and MIG instances `nvidia-smi -L` lists (run here when not given)."""
    if "CUDA_VISIBLE_DEVICES" in env:
        return parse_cuda_visible_devices(env["CUDA_VISIBLE_DEVICES"])
    listing = run_nvidia_smi() if nvidia_smi_listing is None else nvidia_smi_listing
    return parse_nvidia_smi_listing(listing)



def worker_env(gpu: str) -> dict[str, str]:
    """Environment for the worker given `gpu` (an entry of visible_gpus): it sees that device only, and
    `require_assigned_gpu` knows it was given one."""
    return {"CUDA_VISIBLE_DEVICES": gpu, ASSIGNED_VAR: gpu}


class AssignedGpuMissing(RuntimeError):
    """A worker was given a GPU and torch cannot see it: training would silently fall back to the CPU."""


def require_assigned_gpu(env: Mapping[str, str] = os.environ, torch_module=None) -> str | None:
    """Call at worker start. Returns the GPU this worker was given (None if none was: a CPU worker);
    raises AssignedGpuMissing if one was given and torch sees no CUDA device."""
    gpu = env.get(ASSIGNED_VAR)
    if not gpu:
        return None
    if torch_module is None:
        import torch as torch_module  # noqa: PLC0415 — only a GPU worker pays for it here
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if not torch_module.cuda.is_available() or torch_module.cuda.device_count() < 1:
        build = getattr(torch_module.version, "cuda", None)
        why = ("torch is a CPU-only build (install the CUDA build)" if not build
               else f"torch (CUDA {build}) finds no device: driver missing, or the GPU is not this machine's")
        raise AssignedGpuMissing(f"this worker was given GPU {gpu!r} (CUDA_VISIBLE_DEVICES={visible!r}) but "
                                 f"torch cannot see it: {why}. Refusing to train on the CPU instead.")
    return gpu


# `device: auto` on a GPU worker: a model whose training step is only a few million multiply-adds
# spends its time launching kernels on a GPU (each ~5–10 µs, some hundred a step) and runs as fast or
# faster on the CPU, where it leaves the GPU to runs that need it. The bound is an estimate from op
# counts, not yet measured on a GPU (bench/cuda_check.py measures both sides when one is lent).
SMALL_STEP_MACS = 20_000_000


def choose_device(config, cuda_available: bool) -> tuple[str, str]:
    """('cuda' | 'cpu', why) for a run whose train.device is 'auto'."""
    if not cuda_available:
        return "cpu", "auto: no CUDA device on this worker"
    from .configs.estimate import _family  # torch-free

    params, _ = _family(config.model, config.data, config.train.batch_size)
    macs = params * config.train.batch_size
    if macs < SMALL_STEP_MACS:
        return "cpu", (f"auto: the model is too small to gain from a GPU (~{macs / 1e6:.1f} M multiply-adds a "
                       f"step, under {SMALL_STEP_MACS / 1e6:.0f} M)")
    return "cuda", f"auto: ~{macs / 1e6:.0f} M multiply-adds a step"


def worker_specs(gpus: list[str], runs_per_gpu: int = 1, prefix: str = "") -> list[tuple[str, list[str], dict]]:
    """(node name, queues, environment) of each worker process: `runs_per_gpu` processes share each
    GPU (small models share a device), or one CPU worker when there is no GPU."""
    if not gpus:
        return [(f"{prefix}celery", ["celery"], {"CUDA_VISIBLE_DEVICES": ""})]
    specs = []
    for i, gpu in enumerate(gpus):
        for j in range(max(1, runs_per_gpu)):
            name = f"{prefix}gpu{i}" + (f"-{j}" if j else "")
            queues = ["gpu-whole", "gpu", "celery"] if j == 0 else ["gpu", "celery"]  # one takes whole-GPU runs
            specs.append((name, queues, worker_env(gpu)))
    return specs
