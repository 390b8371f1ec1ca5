"""What the API hands back, as pydantic models for the client (no FastAPI, SQLAlchemy or torch here).

`RunInfo` mirrors backend/app/routers/runs.py's RunOut field for field (tests/client/test_models.py
keeps the two in step); unknown fields the server adds later are kept, not refused, so an older
client still reads a newer server.
"""
from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict

from .protocol import ACTIVE_STATUSES


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow")


class Preset(_Loose):
    id: str
    title: str
    description: str = ""
    config: dict


class RunInfo(_Loose):
    id: str
    status: str
    title: str
    preset: str | None = None
    config: dict = {}
    step: int = 0
    total_steps: int = 0
    progress: float = 0.0
    wall_time: float = 0.0
    eta_seconds: float | None = None
    metrics: dict = {}
    environment: dict = {}
    error: str | None = None
    frame_count: int = 0
    last_event_id: str | None = None
    created_at: dt.datetime | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    launched_by: str | None = None
    tags: list[str] = []
    notes: str = ""
    notes_html: str = ""
    provenance: dict = {}
    attempts: list[dict] = []  # each worker attempt (host, device, how it ended)
    queue_position: int | None = None  # while queued: 1 = the next its queue hands out
    waiting_for: str | None = None  # while queued: what no live worker offers (e.g. a GPU worker)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class Me(_Loose):
    kind: str
    name: str | None = None
    is_admin: bool = False
    can_write: bool = False
    run_id: str | None = None


class SweepRunInfo(_Loose):
    id: str
    status: str
    title: str = ""
    step: int = 0
    total_steps: int = 0
    params: dict = {}
    metrics: dict = {}
    error: str | None = None


class SweepInfo(_Loose):
    id: str
    title: str = ""
    fields: list[str] = []
    runs: list[SweepRunInfo] = []
    counts: dict[str, int] = {}

    @property
    def active(self) -> bool:
        return any(r.status in ACTIVE_STATUSES for r in self.runs)
