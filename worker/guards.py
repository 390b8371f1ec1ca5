"""Checks the worker makes before and while running a task (torch-free, so they are unit-tested alone).

- check_memory: a run whose estimated peak memory exceeds what this worker has fails at once with
  "needs ~X GiB, this worker has Y GiB" instead of dying on allocation minutes later.
- TIME_LIMIT_ERROR: the run's error when Celery's soft time limit (Settings.max_run_seconds, sent
  by the backend with the task) ends it.
"""
from __future__ import annotations

import os

from pinwheel.configs.estimate import estimate_memory_bytes, gib

TIME_LIMIT_ERROR = "time limit"


def check_memory(cfg, available_bytes: int | None) -> str | None:
    """The error to fail the run with, or None when it fits (or when the worker cannot tell)."""
    if available_bytes is None or available_bytes <= 0:
        return None
    need = estimate_memory_bytes(cfg)
    if need <= available_bytes:
        return None
    return f"needs ~{gib(need)}, this worker has {gib(available_bytes)}"


def host_available_bytes() -> int | None:
    """Memory this host can still give a CPU run (MemAvailable; cgroup limits when tighter)."""
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            return None
    for limit_file, used_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                  ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                   "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit_file) as f:
                raw = f.read().strip()
            if raw.isdigit() and int(raw) < 1 << 60:
                with open(used_file) as f:
                    available = min(available, int(raw) - int(f.read().strip()))
            break
        except (OSError, ValueError):
            continue
    return available


def device_available_bytes(device_type: str, cuda_free_bytes: int | None = None) -> int | None:
    """What the run's device has free: the caller passes torch.cuda.mem_get_info()[0] for CUDA
    (this module does not import torch); CPU runs read the host's available memory."""
    if device_type == "cuda":
        return cuda_free_bytes
    return host_available_bytes()



class Deadline:
    """The run's time limit as the task received it (Celery's request.timelimit = (hard, soft)).
    Celery's solo pool — one worker process per GPU — does not enforce time limits itself, so the
    training loop asks `expired()` wherever it checks for a cancel."""

    def __init__(self, seconds: float | None, clock=None):
        import time  # noqa: PLC0415

        self.clock = clock or time.monotonic
        self.seconds = seconds
        self.start = self.clock()

    @classmethod
    def from_timelimit(cls, timelimit, clock=None) -> "Deadline":
        hard, soft = (tuple(timelimit) + (None, None))[:2] if timelimit else (None, None)
        return cls(soft or hard, clock)

    def expired(self) -> bool:
        return self.seconds is not None and self.clock() - self.start >= self.seconds


__all__ = ["check_memory", "host_available_bytes", "device_available_bytes", "TIME_LIMIT_ERROR", "Deadline"]
