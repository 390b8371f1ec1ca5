"""The training step of every preset, alone: build it on a device, time it, and catch host syncs.

Shared by tests/pinwheel/test_no_host_sync.py, bench/cuda_check.py and bench/preset_steps.py.

A host synchronisation stalls the GPU until everything queued has run. It is caught two ways:
- on the `meta` device (CPU-only machines): a meta tensor has no data, so `.item()`, `float()`,
  `bool()`, `.cpu()`, `.numpy()` and data-dependent shapes (nonzero, boolean masks) raise;
- `HostSyncGuard`, a dispatch mode that also records what meta lets through but CUDA would stall
  on: a blocking copy from the CPU to the device (a tensor built on the host and moved every
  step), and the ops that read a result back on CUDA (`SYNC_OPS`: SVD and eigen-solvers check
  their info flag on the host, nonzero / unique / masked_select size their output there).
On a GPU `torch.cuda.set_sync_debug_mode("error")` is the ground truth (bench/cuda_check.py).

`pinwheel` is imported inside the functions, so bench/preset_steps.py can time another checkout's.
"""
from __future__ import annotations

import time

import torch
from torch.utils._python_dispatch import TorchDispatchMode

SMALL_DATA = {"natural_patches": {"pool_size": 1000}, "natural_images": {"pool_size": 100},
              "sklearn_digits": {"train_size": 300, "test_size": 100}}
DIGITS_STANDIN = {"kind": "sklearn_digits", "train_size": 1400, "test_size": 397}

_aten = torch.ops.aten
_SYNC_NAMES = ("_local_scalar_dense.default", "nonzero.default", "masked_select.default", "_linalg_svd.default",
               "_linalg_eigh.default", "linalg_eig.default", "_unique2.default", "unique_dim.default",
               "unique_consecutive.default", "equal.default", "is_nonzero.default", "bincount.default",
               "repeat_interleave.Tensor", "_linalg_check_errors.default", "linalg_solve.default",
               "linalg_inv.default", "linalg_cholesky.default")


def _op(name: str):
    packet, _, overload = name.rpartition(".")
    return getattr(getattr(_aten, packet, None), overload, None)


SYNC_OPS = {op for op in map(_op, _SYNC_NAMES) if op is not None}


class HostSyncGuard(TorchDispatchMode):
    """Records every op that would make the host wait for the device (see top), with its arguments' devices."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in SYNC_OPS:
            on = {a.device.type for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)} - {"cpu"}
            if on:  # on host tensors (an optimizer's step count) reading is free
                self.found.append(f"{func} on {', '.join(sorted(on))} (reads a device result on the host)")
        elif func is _aten._to_copy.default and isinstance(args[0], torch.Tensor):
            dst = kwargs.get("device")
            if (args[0].device.type == "cpu" and dst is not None and torch.device(dst).type != "cpu"
                    and not kwargs.get("non_blocking", False)):
                self.found.append(f"blocking copy host → {dst} of {tuple(args[0].shape)}")
        elif func is _aten.copy_.default:
            dst, src = args[0], args[1]
            blocking = not (args[2] if len(args) > 2 else kwargs.get("non_blocking", False))
            if isinstance(src, torch.Tensor) and src.device.type == "cpu" and dst.device.type != "cpu" and blocking:
                self.found.append(f"blocking copy host → {dst.device} of {tuple(src.shape)}")
        return func(*args, **kwargs)


def preset_config(preset: dict, *, small: bool = True, data_root=None):
    """(RunConfig, note): the preset, with small data pools if `small`; DrSAE on scikit-learn's digits when
    the MNIST sample is not on this machine (note says so)."""
    from pinwheel.configs import RunConfig, deep_merge  # noqa: PLC0415

    cfg, note = preset["config"], ""
    kind = cfg["data"]["kind"]
    if kind == "mnist" and not mnist_available(data_root):
        cfg, note = deep_merge(cfg, {"data": DIGITS_STANDIN}), "MNIST sample missing: on sklearn_digits instead"
        kind = "sklearn_digits"
    if small and kind in SMALL_DATA:
        cfg = deep_merge(cfg, {"data": SMALL_DATA[kind]})
    elif small and kind == "mnist":
        cfg = deep_merge(cfg, {"data": {"train_size": 1000, "test_size": 200}})
    return RunConfig.model_validate(cfg), note


def mnist_available(data_root=None) -> bool:
    from pathlib import Path  # noqa: PLC0415

    from pinwheel.data import digits  # noqa: PLC0415

    return (digits.npm_dir() / "src" / "digits").is_dir() or digits.has_idx(Path(data_root or "var/data") / "mnist")


def build(cfg, device: str = "cpu", *, build_on: str | None = None, seed: int = 0):
    """(model, dataset, optimizer, generator) as pinwheel.train builds them, on `device` (built on `build_on`,
    default the same device, and moved: the meta device needs a CPU build)."""
    from pinwheel.data import build_dataset  # noqa: PLC0415
    from pinwheel.models import build_model  # noqa: PLC0415

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    first = build_on or device
    dataset = build_dataset(cfg.data, seed).to(first)
    model = build_model(cfg.model, dataset, generator).to(first)
    if first != device:
        model, dataset = model.to(device), dataset.to(device)
    optimizer = model.make_optimizer(cfg.train.lr, cfg.train.optimizer)
    return model, dataset, optimizer, generator


def run_steps(model, dataset, optimizer, generator, steps: int, batch_size: int, start: int = 0) -> dict:
    """`steps` training steps exactly as pinwheel.train takes them; the last step's terms."""
    terms = {}
    for step in range(start, start + steps):
        x, y = dataset.batch(batch_size, generator)
        terms = model.train_step(x, y, step, optimizer)
    return terms


def steps_per_second(model, dataset, optimizer, generator, batch_size: int, seconds: float, warmup: int = 3,
                     start: int = 0) -> tuple[float, int]:
    """(steps/s, steps timed) over about `seconds` of training steps, after `warmup` untimed ones."""
    device = next(model.parameters()).device
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    run_steps(model, dataset, optimizer, generator, warmup, batch_size, start)
    sync()
    n, t0 = 0, time.perf_counter()
    while True:
        run_steps(model, dataset, optimizer, generator, 1, batch_size, start + warmup + n)
        n += 1
        if n % 5 == 0 or device.type != "cuda":
            sync()
            if time.perf_counter() - t0 >= seconds:
                break
    return n / (time.perf_counter() - t0), n
