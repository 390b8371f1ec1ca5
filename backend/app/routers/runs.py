"""The run resource: launch, list, read, cancel, frames, weights, and organising (rename, tag,
annotate in Markdown sanitised server-side, delete). Bodies and answers: backend/app/schemas/runs.py."""
from __future__ import annotations

import datetime as dt
import shutil
import time
import uuid
from pathlib import Path
from typing import Annotated

import redis
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse
from pydantic import ValidationError
from sqlalchemy import func, select

from pinwheel.configs import RunConfig, deep_merge, preset_by_id
from pinwheel.configs.estimate import estimate_memory_bytes
from pinwheel.protocol import ACTIVE_STATUSES, TERMINAL_STATUSES, cancel_key, stream_key
from pinwheel.provenance import code_version

from ..deps import (MemberDep, OwnRunDep, QueueDep, ReaderRunDep, SessionDep, SettingsDep, TicketReaderRunDep,
                    WriterDep, check_run_id)
from ..errors import errors
from ..markdown import render_markdown
from ..queue import QueueUnavailable
from ..run_files import local_copy
from ..schemas import LaunchOut, LaunchRequest, RunEdit, RunOut
from ..store import Frame, Run, Share, frame_event
from ..validation import field_errors
from .workers import queue_place

router = APIRouter(prefix="/api/runs", tags=["runs"], responses=errors(401, 403, 404, 422))
MAX_FRAMES_WITH_PANELS = 200  # image atlases make a frame ~50 KB; metrics-only pages may hold 5,000


def _validation_422(exc: ValidationError, merged: dict) -> HTTPException:
    return HTTPException(422, detail=field_errors(exc, merged, ("body", "config")))


def _field_422(field: str, msg: str, kind: str = "value_error") -> HTTPException:
    return HTTPException(422, detail=[{"loc": ["body", "config", *field.split(".")], "msg": msg, "type": kind,
                                       "field": field}])


def resolve_config(body: LaunchRequest) -> tuple[RunConfig, dict | None]:
    preset = None
    if body.preset is not None:
        preset = preset_by_id(body.preset)
        if preset is None:
            raise HTTPException(404, detail=f"preset: no preset {body.preset!r}")
    if preset is None and body.config is None:
        raise HTTPException(422, detail=[{"loc": ["body"], "msg": "give a preset, a config, or both",
                                          "type": "missing", "field": "(root)"}])
    merged = deep_merge(preset["config"] if preset else {}, body.config or {})
    try:
        return RunConfig.model_validate(merged), preset
    except ValidationError as exc:
        raise _validation_422(exc, merged) from None


def check_folders(config: RunConfig, data_root: Path) -> None:
    """A user folder must exist under the data root — checked here when this machine has the data root
    (on a split deployment the worker checks again; the config validator already refused '..')."""
    if not data_root.is_dir():
        return
    root = data_root.resolve()
    for name in ("image_folder", "idx_folder"):
        folder = getattr(config.data, name, None)
        if folder:
            target = (root / folder).resolve()
            if not target.is_relative_to(root) or not target.is_dir():
                raise _field_422(f"data.{name}", f"{folder!r} is not a folder under the server's data root")


TIMING_KEYS = ("steps", "seed", "frame_every_steps", "frame_every_seconds", "checkpoint_every_seconds")


def _timing_shape(config: dict) -> dict:
    """What decides a step's cost: the config without the step count, seed and reporting cadence."""
    train = {k: v for k, v in (config.get("train") or {}).items() if k not in TIMING_KEYS}
    return {**config, "train": train}


def estimate_seconds(session, config: dict) -> float | None:
    """Seconds for this config, at the pace of the newest earlier run of the same shape."""
    shape = _timing_shape(config)
    rows = session.execute(select(Run.config, Run.step, Run.wall_time).where(Run.step > 0, Run.wall_time > 0)
                           .order_by(Run.created_at.desc()).limit(200))
    for row in rows:
        if isinstance(row.config, dict) and _timing_shape(row.config) == shape:
            return row.wall_time / row.step * config["train"]["steps"]
    return None


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


@router.post("", status_code=201, response_model=LaunchOut, responses=errors(401, 403, 404, 413, 422, 429, 503))
def launch(body: LaunchRequest, session: SessionDep, queue: QueueDep, who: WriterDep,
           settings: SettingsDep) -> LaunchOut:
    config, preset = resolve_config(body)
    check_folders(config, settings.data_root)
    active = session.scalar(select(func.count()).select_from(Run).where(
        Run.launched_by == who.name, Run.status.in_(ACTIVE_STATUSES)))
    if active >= settings.max_active_runs_per_member:
        raise HTTPException(429, detail=f"runs: {who.name} has {active} queued or running runs, the limit is "
                                        f"{settings.max_active_runs_per_member}; cancel one or wait for one to end")
    resolved = config.model_dump(mode="json")
    seconds = estimate_seconds(session, resolved)
    if seconds is not None and seconds > settings.max_run_seconds:
        raise _field_422("train.steps", f"{config.train.steps} steps would take ~{_duration(seconds)} at the pace "
                         f"of an earlier run of this config; the limit is {_duration(settings.max_run_seconds)}")
    run_id = uuid.uuid4().hex
    try:
        queue.prepare(run_id)
    except QueueUnavailable as exc:
        raise HTTPException(503, detail=str(exc)) from None
    run = Run(id=run_id, status="queued", preset=preset["id"] if preset else None,
              title=body.title or (preset["title"] if preset else config.model.kind),
              config=resolved, step=0, total_steps=config.train.steps, metrics={},
              environment={}, frame_count=0, launched_by=who.name, tags=[], notes="", notes_html="",
              provenance={"code": code_version(), "seed": config.train.seed})
    session.add(run)
    session.commit()
    try:
        queue.submit(run_id, run.config, max_seconds=settings.max_run_seconds)
    except QueueUnavailable as exc:
        session.delete(run)  # no half-created run
        session.commit()
        queue.discard(run_id)
        raise HTTPException(503, detail=str(exc)) from None
    return LaunchOut(**RunOut.of(run).model_dump(), estimated_memory_bytes=estimate_memory_bytes(config),
                     estimated_seconds=seconds, time_limit_seconds=settings.max_run_seconds)


@router.get("", response_model=list[RunOut])
def list_runs(session: SessionDep, who: MemberDep, limit: Annotated[int, Query(ge=1, le=1000)] = 200,
              q: Annotated[str | None, Query(max_length=200, description="words in the name, notes or preset")] = None,
              tag: Annotated[list[str] | None, Query(description="runs carrying every one of these tags")] = None,
              status: Annotated[str | None, Query(max_length=16)] = None,
              launched_by: Annotated[str | None, Query(max_length=100)] = None) -> list[RunOut]:
    query = select(Run).order_by(Run.created_at.desc())
    if status:
        query = query.where(Run.status == status)
    if launched_by:
        query = query.where(Run.launched_by == launched_by)
    for word in (q or "").split():
        like = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(Run.title.ilike(like, escape="\\") | Run.notes.ilike(like, escape="\\")
                            | Run.preset.ilike(like, escape="\\"))
    wanted = set(tag or [])  # JSON lists: filtered here, portable across SQLite and PostgreSQL
    runs = session.scalars(query if wanted else query.limit(limit))
    out = [RunOut.of(r) for r in runs if wanted <= set(r.tags or [])]
    return out[:limit]


@router.get("/{run_id}", response_model=RunOut)
def get_run(run: ReaderRunDep, queue: QueueDep) -> RunOut:
    out = RunOut.of(run)
    if run.status == "queued" and not (run.provenance or {}).get("origin") == "external":
        try:
            out.queue_position, out.waiting_for = queue_place(queue.redis, run.id, run.config)
        except redis.RedisError:
            pass  # the record still answers while Redis is away
    return out


@router.post("/{run_id}/cancel", response_model=RunOut, responses=errors(401, 403, 404, 409, 503))
def cancel(run: OwnRunDep, queue: QueueDep, session: SessionDep) -> RunOut:
    """A run its worker holds stops within ~2 s (the worker's watcher sees the flag); a run no worker
    holds (queued, or its worker died) ends `cancelled` at once and can then be deleted."""
    if run.status in TERMINAL_STATUSES:
        raise HTTPException(409, detail=f"status: run already {run.status}")
    try:
        outcome = queue.cancel(run.id)
    except QueueUnavailable as exc:
        raise HTTPException(503, detail=str(exc)) from None
    if outcome in ("cancelled", "done"):
        _await_terminal(session, run, CANCEL_SETTLE_SECONDS)
    return RunOut.of(run)


CANCEL_SETTLE_SECONDS = 3.0


def _await_terminal(session, run: Run, seconds: float) -> None:
    """The persister folds the `cancelled` status in within a poll; if no persister does (none up),
    the store is told directly so that the run can be deleted now."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        session.refresh(run)
        if run.status in TERMINAL_STATUSES:
            return
        time.sleep(0.05)
    run.status, run.finished_at = "cancelled", dt.datetime.now(dt.timezone.utc)
    session.commit()


@router.get("/{run_id}/frames")
def frames(run: ReaderRunDep, session: SessionDep,
           from_step: Annotated[int, Query(ge=0)] = 0,
           to_step: Annotated[int | None, Query(ge=0)] = None,
           limit: Annotated[int, Query(ge=1, le=5000)] = 100,
           panels: bool = True) -> dict:
    """Persisted frames with from_step ≤ step ≤ to_step, in step order; `next_from_step` pages on.
    Each frame as the SSE stream sends it (pinwheel.protocol.Frame), without `panels` when panels=false."""
    if panels and limit > MAX_FRAMES_WITH_PANELS:
        raise HTTPException(422, detail=[{"loc": ["query", "limit"], "type": "less_than_equal",
                                          "msg": f"at most {MAX_FRAMES_WITH_PANELS} frames a page with panels=true"}])
    q = select(Frame).where(Frame.run_id == run.id, Frame.step >= from_step)
    if to_step is not None:
        q = q.where(Frame.step <= to_step)
    rows = list(session.scalars(q.order_by(Frame.step, Frame.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    total = session.scalar(select(func.count()).select_from(Frame).where(Frame.run_id == run.id))
    shown = None if panels else {"panels"}
    return {"run_id": run.id, "total": total,
            "frames": [frame_event(f, run.total_steps, panels).model_dump(exclude=shown) for f in rows],
            "next_from_step": rows[-1].step + 1 if more and rows else None}


@router.get("/{run_id}/weights.npz")
def weights(run: TicketReaderRunDep, settings: SettingsDep, request: Request) -> FileResponse:
    check_run_id(run.id)  # ids are ours, but never build paths from unchecked text
    path = local_copy(request.app.state.sessions, settings.artifacts_dir / run.id, run.id, "weights.npz")
    if path is None:
        raise HTTPException(404, detail="weights: no checkpoint yet for this run")
    return FileResponse(path, media_type="application/octet-stream", filename=f"{run.id}-weights.npz")


@router.patch("/{run_id}", response_model=RunOut, responses=errors(413))
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


@router.delete("/{run_id}", status_code=204, responses=errors(409, 413))
def delete_run(run: OwnRunDep, session: SessionDep, settings: SettingsDep, queue: QueueDep) -> None:
    """Remove the run, its frames, share links, stream and files. Active runs: cancel them first."""
    if run.status in ACTIVE_STATUSES:
        raise HTTPException(409, detail=f"status: run is {run.status}; cancel it first")
    check_run_id(run.id)
    session.query(Frame).filter(Frame.run_id == run.id).delete()
    session.query(Share).filter(Share.run_id == run.id).delete()
    session.delete(run)
    session.commit()
    try:
        queue.redis.delete(stream_key(run.id), cancel_key(run.id))
    except redis.RedisError:  # Redis down: the stream expires on its own TTL
        pass
    shutil.rmtree(settings.artifacts_dir / run.id, ignore_errors=True)
