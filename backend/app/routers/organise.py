"""Organising runs: rename, tag, annotate (Markdown, sanitised server-side) and delete."""
from __future__ import annotations

import re
import shutil

import redis
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from pinwheel.protocol import cancel_key, stream_key

from ..deps import QueueDep, RunDep, SessionDep, SettingsDep, WriterDep
from ..markdown import render_markdown
from ..store import Frame, Share
from .runs import RunOut

router = APIRouter(prefix="/api/runs", tags=["organise"])
TAG = r"^[\w][\w .:+-]{0,39}$"


class RunEdit(BaseModel):
    title: str | None = Field(None, min_length=1, max_length=200, description="the run's name")
    tags: list[str] | None = Field(None, max_length=20)
    notes: str | None = Field(None, max_length=20_000, description="Markdown; rendered to safe HTML server-side")


def clean_tags(tags: list[str]) -> list[str]:
    out: list[str] = []
    for tag in tags:
        tag = tag.strip()
        if not re.fullmatch(TAG, tag):
            raise HTTPException(422, detail=[{"loc": ["body", "tags"], "type": "value_error",
                                              "msg": f"tag {tag[:50]!r}: letters, digits, ' .:+-_', at most 40"}])
        if tag not in out:
            out.append(tag)
    return out


@router.patch("/{run_id}", response_model=RunOut)
def edit_run(run: RunDep, body: RunEdit, session: SessionDep, who: WriterDep) -> RunOut:
    if body.title is not None:
        run.title = body.title.strip() or run.title
    if body.tags is not None:
        run.tags = clean_tags(body.tags)
    if body.notes is not None:
        run.notes = body.notes
        run.notes_html = render_markdown(body.notes)
    session.commit()
    return RunOut.of(run)


@router.delete("/{run_id}", status_code=204)
def delete_run(run: RunDep, session: SessionDep, settings: SettingsDep, queue: QueueDep, who: WriterDep) -> None:
    """Remove the run, its frames, share links, stream and files. Active runs: cancel them first."""
    if run.status in ("queued", "running"):
        raise HTTPException(409, detail=f"status: run is {run.status}; cancel it first")
    if not who.is_admin and run.launched_by != who.name:
        raise HTTPException(403, detail="authorization: only its launcher or an admin may delete a run")
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
