"""Celery app for long GPU jobs: a task is acknowledged only when it ends (acks_late), a worker
takes one task at a time (prefetch 1). A dead worker's run is re-queued by the lease reaper
(pinwheel/leases.py, backend/app/reaper.py) within seconds; the broker's visibility timeout is only
the last resort, and a late re-delivery is harmless (a claim is exclusive and fenced)."""
from __future__ import annotations

from celery import Celery
from celery.signals import worker_init, worker_ready

from .settings import get_settings

settings = get_settings()  # the composition root: the broker is configured at import

app = Celery("pinwheel", broker=settings.redis_url, include=["worker.tasks"])
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    worker_concurrency=1,  # one process per GPU: start one worker per device
    broker_transport_options={"visibility_timeout": settings.visibility_timeout_seconds,
                              "socket_timeout": 10, "socket_connect_timeout": 5},
    broker_connection_retry_on_startup=True,
    broker_connection_retry=True,
    broker_connection_max_retries=None,  # a Redis outage is waited out, however long
    worker_cancel_long_running_tasks_on_connection_loss=False,  # the run's lease decides, not the broker
    task_ignore_result=True,
    worker_hijack_root_logger=False,
)


@worker_init.connect
def _check_assigned_gpu(**_) -> None:
    """A worker given a GPU that torch cannot see must not train on the CPU without a word."""
    from pinwheel.devices import require_assigned_gpu

    require_assigned_gpu()


@worker_ready.connect
def _drop_leases_of_dead_predecessor(sender=None, **_) -> None:
    """A worker restarted after a crash: its predecessor's runs need not wait out their leases."""
    import logging
    import os

    import redis

    from pinwheel.leases import drop_dead_leases

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
            return pid != os.getpid() and open(f"/proc/{pid}/stat").read().split()[2] != "Z"
        except (OSError, IndexError):
            return False

    from . import presence

    presence.start(settings.redis_url, sender.hostname, sorted(q.name for q in sender.task_consumer.queues))
    try:
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=10)
        dropped = drop_dead_leases(client, sender.hostname, alive)
        if dropped:
            logging.getLogger(__name__).warning("leases of a dead predecessor dropped: runs %s", ", ".join(dropped))
    except redis.RedisError:
        pass  # the reaper handles them a lease TTL later
