"""Organising runs: rename, tag, annotate (Markdown, sanitised server-side) and delete."""
from __future__ import annotations

import re
import shutil
from typing import Annotated

import redis
from fastapi import APIRouter, HTTPException
from pydantic import AfterValidator, BaseModel, Field, StringConstraints, field_validator

from pinwheel.protocol import ACTIVE_STATUSES, cancel_key, stream_key

from ..deps import OwnRunDep, QueueDep, SessionDep, SettingsDep
from ..errors import errors
from ..markdown import render_markdown
from ..store import Frame, Share
from .runs import RunOut

router = APIRouter(prefix="/api/runs", tags=["organise"], responses=errors(401, 403, 404, 413, 422))
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


@router.patch("/{run_id}", response_model=RunOut)
def edit_run(run: OwnRunDep, body: RunEdit, session: SessionDep) -> RunOut:
    if body.title is not None:
        run.title = body.title.strip() or run.title
    if body.tags is not None:
        run.tags = body.tags
    if body.notes is not None:
        run.notes = body.notes
        run.notes_html = render_markdown(body.notes)
    session.commit()
    return RunOut.of(run)


@router.delete("/{run_id}", status_code=204, responses=errors(409))
def delete_run(run: OwnRunDep, session: SessionDep, settings: SettingsDep, queue: QueueDep) -> None:
    """Remove the run, its frames, share links, stream and files. Active runs: cancel them first."""
    if run.status in ACTIVE_STATUSES:
        raise HTTPException(409, detail=f"status: run is {run.status}; cancel it first")
    if not re.fullmatch(r"[0-9a-f]{32}", run.id):
        raise HTTPException(404, detail="run_id: malformed")
    session.query(Frame).filter(Frame.run_id == run.id).delete()
    session.query(Share).filter(Share.run_id == run.id).delete()
    session.delete(run)
    session.commit()
    try:
        queue.redis.delete(stream_key(run.id), cancel_key(run.id))
    except redis.RedisError:  # Redis down: the stream expires on its own TTL
        pass
    shutil.rmtree(settings.artifacts_dir / run.id, ignore_errors=True)
