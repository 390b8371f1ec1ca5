"""This worker in the lab's worker list (pinwheel/registry.py): host, devices, queues, current run,
runs done — announced every few seconds by a thread of its own while the worker lives."""
from __future__ import annotations

import logging
import os
import threading
import time

import redis

from pinwheel.registry import WORKER_TTL_SECONDS, announce

log = logging.getLogger(__name__)
current = {"run": None, "attempt": None, "runs_done": 0}  # set by the training task


def devices() -> list[str]:
    import torch

    if torch.cuda.is_available():
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return ["cpu"]


def start(redis_url: str, name: str, queues: list[str]) -> threading.Thread:
    record = {"name": name, "host": os.uname().nodename, "pid": os.getpid(), "queues": queues,
              "devices": devices(), "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
              "started": time.time()}
    client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)

    def beat() -> None:
        while True:
            try:
                announce(client, {**record, **current})
            except redis.RedisError as exc:
                log.debug("presence: Redis unreachable (%s)", exc)
            time.sleep(WORKER_TTL_SECONDS / 3)

    thread = threading.Thread(target=beat, name="worker-presence", daemon=True)
    thread.start()
    return thread
