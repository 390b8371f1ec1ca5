"""Workers announce themselves in Redis (torch-free; the backend reads, workers write).

    worker:{name}   JSON {name, host, pid, queues, devices, run, runs_done, started, seen}, TTL 15 s

renewed every few seconds by a thread of the worker's own, so a worker that died leaves the list
within the TTL. The queue itself is Celery's: a Redis list per queue, read here to tell a queued
run its position (the next message to be taken is the list's last element).
"""
from __future__ import annotations

import base64
import json
import time

import redis

from .protocol import CPU_QUEUE, GPU_QUEUE

WORKER_TTL_SECONDS = 15


def worker_key(name: str) -> str:
    return f"worker:{name}"


def announce(client: redis.Redis, record: dict) -> None:
    client.set(worker_key(record["name"]), json.dumps({**record, "seen": time.time()}), ex=WORKER_TTL_SECONDS)


def workers(client: redis.Redis) -> list[dict]:
    keys = list(client.scan_iter(match="worker:*", count=500))
    records = [json.loads(v) for v in client.mget(keys) if v] if keys else []
    return sorted(records, key=lambda r: r["name"])


def _run_id(message: bytes) -> str | None:
    """The run id a Celery message (kombu's Redis transport, protocol 2) carries as its first argument."""
    try:
        envelope = json.loads(message)
        body = envelope["body"]
        if envelope.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return args[0] if args else None
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def queued_runs(client: redis.Redis) -> dict[str, list[str]]:
    """Each queue's run ids in the order workers will take them."""
    return {q: [r for r in (_run_id(m) for m in reversed(client.lrange(q, 0, -1))) if r]
            for q in (GPU_QUEUE, CPU_QUEUE)}
