"""The worker's settings, from environment variables (same names as the backend's; the paths
default to places under PINWHEEL_VAR_DIR, pinwheel/paths.py, as the backend's do)."""
from __future__ import annotations

from functools import lru_cache

from pydantic import AliasChoices, Field

from pinwheel.paths import PathSettings


class WorkerSettings(PathSettings):
    redis_url: str = Field("redis://127.0.0.1:6379/0", validation_alias=AliasChoices("REDIS_URL", "PINWHEEL_REDIS_URL"),
                           description="Redis: the task queue, the runs' event streams and leases "
                           "(make run starts its own, PINWHEEL_REDIS_PORT)")
    server_url: str | None = Field(None, description="the web server a worker on another host hands its run's "
                                   "files to (no shared disk); unset: the artifacts folder is shared with the web side")
    worker_token: str | None = Field(None, repr=False, description="authenticates those uploads (PINWHEEL_WORKER_TOKEN)")
    device: str | None = Field(None, description="overrides every run's train.device (e.g. 'cpu' on a mixed pool)")
    stream_ttl_seconds: int = Field(3_600, description="a finished run's stream lingers this long for late SSE readers")
    visibility_timeout_seconds: int = Field(7 * 24 * 3600, description="the broker's last resort only: a run whose "
                                            "worker died is re-queued by the lease reaper long before")
    lease_ttl_seconds: float = Field(8.0, gt=0, description="a run whose worker stops renewing this long is re-queued")
    watch_seconds: float = Field(0.25, gt=0, description="how often the run's watcher renews its lease and "
                                 "checks the cancel flag (off the training thread)")
    cancel_grace_seconds: float = Field(1.0, ge=0, description="a cancel the training loop has not honoured by "
                                        "then (a long step) is published by the watcher itself")
    redis_retry_seconds: float = Field(600.0, gt=0, description="how long a frame or status is retried while "
                                       "Redis is unreachable before the run gives up")


@lru_cache
def get_settings() -> WorkerSettings:
    """The worker process's settings (read once); passed on explicitly from the task down."""
    return WorkerSettings()
