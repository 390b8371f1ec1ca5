"""Celery app for long GPU jobs: a task is acknowledged only when it ends (acks_late), a worker
takes one task at a time (prefetch 1), and the broker's visibility timeout outlasts any run, so a
task is re-delivered only when its worker really died — and then resumes from its checkpoint."""
from __future__ import annotations

from celery import Celery

from .settings import settings

app = Celery("pinwheel", broker=settings.redis_url, include=["worker.tasks"])
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    worker_concurrency=1,  # one process per GPU: start one worker per device
    broker_transport_options={"visibility_timeout": settings.visibility_timeout_seconds},
    broker_connection_retry_on_startup=True,
    task_ignore_result=True,
    worker_hijack_root_logger=False,
)
