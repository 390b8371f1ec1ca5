"""The run resource's bodies and answers: launch, the run record, and its edits (name, tags, notes)."""
from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, field_validator

from ..errors import UTCDatetime
from ..store import Run


class LaunchRequest(BaseModel):
    preset: str | None = Field(None, description="a preset id from /api/presets")
    config: dict[str, Any] | None = Field(None, description="a run config, or overrides of the preset's")
    title: str | None = Field(None, max_length=200)


class RunOut(BaseModel):
    id: str
    status: str
    title: str
    preset: str | None
    config: dict
    step: int
    total_steps: int
    progress: float
    wall_time: float
    eta_seconds: float | None
    metrics: dict
    environment: dict
    error: str | None
    frame_count: int
    last_event_id: str | None
    created_at: UTCDatetime
    started_at: UTCDatetime | None
    finished_at: UTCDatetime | None
    launched_by: str | None = None
    tags: list[str] = []
    notes: str = ""
    notes_html: str = ""
    provenance: dict = {}
    attempts: list[dict] = Field([], description="each attempt: host, worker, device, started_at, ended_at, "
                                 "resumed_from_step, and how it ended (issue #10)")
    queue_position: int | None = Field(None, description="while queued: 1 = the next its queue hands out")
    waiting_for: str | None = Field(None, description="while queued: what no live worker offers, e.g. a GPU worker")

    @classmethod
    def of(cls, run: Run) -> "RunOut":
        progress = run.step / run.total_steps if run.total_steps else 0.0
        eta = None
        if run.status == "running" and run.step > 0 and run.wall_time > 0:
            eta = run.wall_time / run.step * (run.total_steps - run.step)
        return cls(id=run.id, status=run.status, title=run.title, preset=run.preset, config=run.config,
                   step=run.step, total_steps=run.total_steps, progress=progress, wall_time=run.wall_time,
                   eta_seconds=eta, metrics=run.metrics or {}, environment=run.environment or {},
                   error=run.error, frame_count=run.frame_count or 0, last_event_id=run.last_event_id, created_at=run.created_at,
                   started_at=run.started_at, finished_at=run.finished_at, launched_by=run.launched_by,
                   tags=run.tags or [], notes=run.notes or "", notes_html=run.notes_html or "",
                   provenance=run.provenance or {}, attempts=run.attempts or [])


class LaunchOut(RunOut):
    estimated_memory_bytes: int = Field(description="peak memory the run needs, roughly (the worker refuses a run "
                                        "its device cannot hold)")
    estimated_seconds: float | None = Field(None, description="from earlier runs of the same config at their "
                                            "measured seconds per step; null when none ran yet")
    time_limit_seconds: int = Field(description="the run ends 'failed: time limit' after this long")


TAG = r"^[\w][\w .:+-]{0,39}$"


def _tag(tag: str) -> str:
    if not re.fullmatch(TAG, tag):
        raise ValueError(f"tag {tag[:50]!r}: letters, digits, ' .:+-_', at most 40")
    return tag


Tag = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_tag)]


class RunEdit(BaseModel):
    """A run's name, tags and notes: one model for PATCH and for bundle import (record.json)."""

    title: str | None = Field(None, min_length=1, max_length=200, description="the run's name")
    tags: list[Tag] | None = Field(None, max_length=20, description="at most 20, duplicates dropped")
    notes: str | None = Field(None, max_length=20_000, description="Markdown; rendered to safe HTML server-side")

    @field_validator("tags")
    @classmethod
    def _unique(cls, tags: list[str] | None) -> list[str] | None:
        return list(dict.fromkeys(tags)) if tags is not None else None
