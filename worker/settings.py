"""The worker's settings, from environment variables (same names as the backend's)."""
from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PINWHEEL_", extra="ignore")

    redis_url: str = Field("redis://127.0.0.1:6379/0", validation_alias=AliasChoices("REDIS_URL", "PINWHEEL_REDIS_URL"))
    artifacts_dir: Path = Path("var/artifacts")
    data_root: Path = Path("var/data")
    device: str | None = Field(None, description="overrides every run's train.device (e.g. 'cpu' on a mixed pool)")
    stream_maxlen: int = 20_000  # approximate cap on a run's stream; the backend persists long before
    stream_ttl_seconds: int = 3_600  # a finished run's stream lingers this long for late SSE readers
    visibility_timeout_seconds: int = 7 * 24 * 3600  # longer than the longest run: no double delivery


settings = WorkerSettings()
