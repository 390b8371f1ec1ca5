"""The lab's workers and the queue: who runs what, where, and which runs wait in what order."""
from __future__ import annotations

import redis
from fastapi import APIRouter, HTTPException

from pinwheel.protocol import CPU_QUEUE, GPU_QUEUE, join_command
from pinwheel.registry import queued_runs, workers

from ..deps import AdminDep, MemberDep, QueueDep, SettingsDep
from ..errors import errors

router = APIRouter(prefix="/api/workers", tags=["workers"])


def queue_place(client: redis.Redis, run_id: str, config: dict) -> tuple[int | None, str | None]:
    """(position in its queue, 1 = next; what it waits for, when nothing can take it)."""
    queues, alive = queued_runs(client), workers(client)
    wants_gpu = (config.get("train") or {}).get("device") == "cuda"
    queue = GPU_QUEUE if wants_gpu else CPU_QUEUE
    position = queues[queue].index(run_id) + 1 if run_id in queues[queue] else None
    if wants_gpu and not any(GPU_QUEUE in w.get("queues", []) for w in alive):
        return position, "a GPU worker (none is up)"
    if not alive:
        return position, "a worker (none is up)"
    return position, None


@router.get("", responses=errors(401, 403, 503))
def list_workers(queue: QueueDep, who: MemberDep) -> dict:
    """Every live worker (host, devices, current run, runs done, last heartbeat) and each queue in order.
    Members see the same summary; only an admin sees process ids."""
    try:
        alive, queues = workers(queue.redis), queued_runs(queue.redis)
    except redis.RedisError as exc:
        raise HTTPException(503, detail=f"the queue (Redis) is unreachable: {exc}") from None
    if not who.is_admin:
        alive = [{k: v for k, v in w.items() if k != "pid"} for w in alive]
    return {"workers": alive, "queues": queues}


@router.get("/join", responses=errors(401, 403, 409))
def join(settings: SettingsDep, who: AdminDep) -> dict:
    """The one command that adds a GPU machine to this lab (admins only: it carries the secrets)."""
    if not (settings.worker_token and settings.public_url and settings.public_redis_url):
        raise HTTPException(409, detail="lab mode: this server was not started as a lab server "
                                        "(make run PINWHEEL_LAB=1), so no other machine can join it")
    return {"command": join_command(settings.public_redis_url, settings.public_url, settings.worker_token)}
