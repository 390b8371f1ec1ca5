"""The backend's one Settings object, read from environment variables (PINWHEEL_<FIELD>, and the
aliases given); the paths default to places under PINWHEEL_VAR_DIR (pinwheel/paths.py)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field

from pinwheel.paths import ROOT, PathSettings


class Settings(PathSettings):
    redis_url: str = Field("redis://127.0.0.1:6379/0", validation_alias=AliasChoices("REDIS_URL", "PINWHEEL_REDIS_URL"),
                           description="Redis: the task queue, the runs' event streams and leases "
                           "(make run starts its own, PINWHEEL_REDIS_PORT)")
    database_url: str = Field(default_factory=lambda f: f"sqlite:///{f['var_dir'] / 'pinwheel.db'}",
                              validation_alias=AliasChoices("DATABASE_URL", "PINWHEEL_DATABASE_URL"),
                              description="SQLAlchemy URL of the store (default: SQLite at $PINWHEEL_VAR_DIR/pinwheel.db)")
    frontend_dir: Path = Field(ROOT / "frontend", description="the static frontend this process serves")
    persist_frames: bool = Field(True, description="run the stream→store consumer in this process")
    consumer_name: str | None = Field(None, description="this process's name in the persist consumer group")
    sse_heartbeat_seconds: float = Field(10.0, gt=0, description="a comment line this often keeps a silent stream up")
    frames_keep: int = Field(1000, ge=2, description="a run is thinned to this many frames once it has twice as "
                             "many; older frames thinned evenly, the first and the newest kept (thinning.py)")
    frames_keep_recent: int = Field(100, ge=1, description="the newest frames a thinning never removes")
    # fault tolerance (issue #10); lease_ttl_seconds must equal the workers' (same variable name)
    run_reaper: bool = Field(True, description="re-queue runs whose worker lost its lease, in this process")
    lease_ttl_seconds: float = Field(8.0, gt=0, description="a run whose worker stops renewing this long is re-queued")
    max_lost_attempts: int = Field(5, ge=1, description="a run that loses its worker this often ends failed")
    reaper_interval_seconds: float = Field(1.0, gt=0, description="how often the reaper looks for runs whose "
                                           "worker is gone")
    worker_token: str | None = Field(None, repr=False, description="workers on other hosts upload a run's files "
                                     "with it (PINWHEEL_WORKER_TOKEN; never logged)")
    public_url: str | None = Field(None, description="the web server as other machines reach it (lab mode)")
    public_redis_url: str | None = Field(None, repr=False, description="Redis as other machines reach it, with "
                                         "its password (lab mode; shown to admins in the join command)")
    admin_token: str | None = Field(None, repr=False, description="the local admin's bearer token (never logged)")
    ticket_ttl_seconds: int = Field(3600, ge=10, description="lifetime of a signed read ticket for SSE and downloads")
    max_bundle_bytes: int = Field(200 * 1024 * 1024, ge=1024, description="largest bundle .zip an import accepts")
    max_bundle_uncompressed_bytes: int = Field(800 * 1024 * 1024, ge=1024,
                                               description="largest total uncompressed size of a bundle's entries")
    # hardening (issue #11)
    max_json_body_bytes: int = Field(1024 * 1024, ge=1024, description="largest JSON request body (413 above)")
    max_active_runs_per_member: int = Field(20, ge=1, description="queued + running runs one launcher may have "
                                            "(429 above)")
    external_stale_seconds: float = Field(600.0, gt=0, description="an external run (pinwheel.log) whose client "
                                          "is silent this long ends failed")
    max_run_seconds: int = Field(24 * 3600, ge=10, description="a run still going after this long ends "
                                 "'failed: time limit' (Celery soft/hard time limits)")


@lru_cache
def get_settings() -> Settings:
    return Settings()
