"""Worker processes sharing one GPU (PINWHEEL_RUNS_PER_GPU) and runs that want a GPU to themselves.

Per device, in Redis (keys with a TTL, renewed by each run's watcher, so a dead worker's fade):
    gpu:{host}:{device}:busy:{worker}   this worker runs something on the device
    gpu:{host}:{device}:whole           a whole-GPU run holds the device
A worker marks itself busy and only then looks for a whole-GPU holder (and backs off if there is
one); a whole-GPU run takes the `whole` key and only then waits for the others' busy marks to go.
With both sides writing before they read, two runs can never both go ahead.
"""
from __future__ import annotations

import logging
import os
import time

import redis

log = logging.getLogger(__name__)
TTL_SECONDS = 15


def device_id() -> str | None:
    """This worker's GPU (the assigned one, else what CUDA_VISIBLE_DEVICES names), None for a CPU worker."""
    return os.environ.get("PINWHEEL_GPU") or os.environ.get("CUDA_VISIBLE_DEVICES") or None


class GpuSlot:
    def __init__(self, client: redis.Redis, host: str, worker: str, device: str):
        self.redis, self.worker = client, worker
        self.prefix = f"gpu:{host}:{device}"
        self.busy_key, self.whole_key = f"{self.prefix}:busy:{worker}", f"{self.prefix}:whole"
        self.whole = False

    def others_busy(self) -> list[str]:
        return [k for k in self.redis.scan_iter(match=f"{self.prefix}:busy:*", count=100)
                if k.decode() != self.busy_key]

    def enter(self, whole: bool, run_id: str, stop_waiting=lambda: False) -> bool:
        """False: a whole-GPU run holds the device (hand the task back). A whole-GPU run waits here
        until the device's other runs have ended."""
        self.redis.set(self.busy_key, run_id, ex=TTL_SECONDS)
        if not whole:
            holder = self.redis.get(self.whole_key)
            if holder is not None and holder.decode() != run_id:
                self.redis.delete(self.busy_key)
                return False
            return True
        self.whole = True
        self.redis.set(self.whole_key, run_id, ex=TTL_SECONDS)
        said = False
        while self.others_busy() and not stop_waiting():
            if not said:
                log.info("run %s wants the GPU to itself: waiting for the device's other runs to end", run_id)
                said = True
            self.renew()
            time.sleep(0.5)
        return True

    def renew(self) -> None:
        self.redis.expire(self.busy_key, TTL_SECONDS)
        if self.whole:
            self.redis.expire(self.whole_key, TTL_SECONDS)

    def leave(self) -> None:
        self.redis.delete(self.busy_key)
        if self.whole:
            self.redis.delete(self.whole_key)
