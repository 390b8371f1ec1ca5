"""The backend's side of the queue: send tasks by name, set cancel flags. No torch here."""
from __future__ import annotations

import uuid

import redis
from celery import Celery

from pinwheel.leases import cancel_run, init_run
from pinwheel.protocol import TASK_NAME, queue_for, stream_key

from .persister import ensure_group


class QueueUnavailable(RuntimeError):
    pass


class Queue:
    def __init__(self, redis_url: str):
        self.redis = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
        self.celery = Celery("pinwheel-client", broker=redis_url)
        self.celery.conf.update(broker_connection_timeout=2, broker_connection_max_retries=0,
                                task_serializer="json")

    def prepare(self, run_id: str) -> None:
        """Create the run's stream and consumer group before the task can write to it."""
        try:
            ensure_group(self.redis, run_id)
            init_run(self.redis, run_id)
        except redis.RedisError as exc:
            raise QueueUnavailable(f"the queue (Redis) is unreachable: {exc}") from exc

    def submit(self, run_id: str, config: dict, max_seconds: int | None = None, requeue: bool = False) -> None:
        """max_seconds: the run's time limit. Celery's soft limit (the worker ends the run 'failed: time
        limit', worker/guards.py) and, a minute later for the final checkpoint and status, the hard one."""
        limits = {"soft_time_limit": max_seconds, "time_limit": max_seconds + 60} if max_seconds else {}
        try:
            self.celery.send_task(TASK_NAME, args=[run_id, config], task_id=uuid.uuid4().hex if requeue else run_id,
                                  queue=queue_for(config), retry=False, **limits)
        except Exception as exc:  # kombu raises several types for a dead broker
            raise QueueUnavailable(f"the queue (Redis) is unreachable: {exc}") from exc

    def cancel(self, run_id: str) -> str:
        """Set the cancel flag; a run no worker holds ends at once (pinwheel.leases.cancel_run)."""
        try:
            return cancel_run(self.redis, run_id)
        except redis.RedisError as exc:
            raise QueueUnavailable(f"the queue (Redis) is unreachable: {exc}") from exc

    def discard(self, run_id: str) -> None:
        """Forget a run that was never submitted."""
        try:
            self.redis.delete(stream_key(run_id))
        except redis.RedisError:
            pass
