"""External runs: a user's own training loop (pinwheel.log) posts frames; no worker, no Celery task.

A frame is checked here (pydantic, a size limit, only the panel kinds the client produces) and
appended to the run's Redis Stream exactly as the worker's StreamPublisher does, so the persister,
SSE, timeline, sharing, compare and exports treat the run like any other. The record says where
it came from: `provenance.origin == "external"` (the lease reaper leaves such runs alone).

Cancel from the page goes through the ordinary cancel route (it sets the run's cancel flag); every
frame and heartbeat answer carries `should_stop`, which is how the flag reaches the user's loop.

Liveness: each call from the client renews `run:{id}:external:alive` (TTL = the stale limit,
PINWHEEL_EXTERNAL_STALE_SECONDS, default 600). LivenessWatch (started with the app) ends a running
external run whose key expired as `failed`, with the reason.
"""
from __future__ import annotations

import io
import json
import logging
import os
import re
import threading
import time
import uuid
import zipfile

import numpy as np
import redis
from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ValidationError
from sqlalchemy import select

from pinwheel import protocol
from pinwheel.protocol import TERMINAL_STATUSES, cancel_key, external_alive_key, stream_key

from ..deps import RUN_ID, QueueDep, SessionDep, SettingsDep, WriterDep
from ..persister import ensure_group
from ..run_files import keep
from ..schemas import ExternalControl as Control
from ..schemas import ExternalFinish, ExternalFrame, ExternalStart, RunOut
from ..schemas.external import MAX_FRAME_BYTES
from ..store import Run, utcnow

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/external", tags=["external runs"])

ORIGIN = "external"
MAX_WEIGHTS_BYTES = 64 * 1024 * 1024
STREAM_MAXLEN = 20_000  # as the worker's stream cap
STREAM_TTL_SECONDS = 3_600  # a finished run's stream lingers this long for late SSE readers (as the worker's)


# --- helpers ---------------------------------------------------------------------------------------
def _redis(queue) -> redis.Redis:
    return queue.redis


def _unavailable(exc: Exception) -> HTTPException:
    return HTTPException(503, detail=f"queue: Redis is unreachable ({exc})")


def _publish(client: redis.Redis, run_id: str, event: protocol.Event) -> str:
    """One stream entry, as worker/tasks.py StreamPublisher.publish writes it."""
    event_id = client.xadd(stream_key(run_id), protocol.entry(event), maxlen=STREAM_MAXLEN, approximate=True)
    return event_id.decode() if isinstance(event_id, bytes) else event_id


def _own_external_run(run_id: str, session, who) -> Run:
    """Authenticated first (WriterDep), then looked up: the launcher's own external run, or any for admins."""
    run = session.get(Run, run_id) if RUN_ID.fullmatch(run_id) else None
    if run is None:
        raise HTTPException(404, detail=f"run_id: no run {run_id!r}")
    if (run.provenance or {}).get("origin") != ORIGIN:
        raise HTTPException(409, detail="run_id: not an external run (its worker reports for it)")
    if not who.is_admin and run.launched_by != who.name:
        raise HTTPException(403, detail="authorization: only the member who started this run or an admin may log to it")
    return run


def _stream_ended(client: redis.Redis, run_id: str) -> str | None:
    """The terminal status already in the stream (a cancel, a finish, the liveness watch) that the
    store may not have folded in yet: the client learns at once, not a persister poll later."""
    for event_id, fields in client.xrevrange(stream_key(run_id), count=20):
        if fields.get(b"type") == b"status":
            try:
                event = protocol.read_entry(fields, event_id)
            except protocol.MalformedEvent:
                continue
            if event.terminal:
                return event.status
    return None


def _control(client: redis.Redis, run: Run) -> Control:
    ended = run.status if run.status in TERMINAL_STATUSES else _stream_ended(client, run.id)
    stop = bool(ended) or bool(client.exists(cancel_key(run.id)))
    return Control(run_id=run.id, status=ended or run.status, should_stop=stop)


async def _read_body(request: Request, limit: int, field: str) -> bytes:
    """At most `limit` bytes (a chunked upload cannot slip past a Content-Length check), else a 413."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, detail=f"{field}: over the limit of {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise HTTPException(413, detail=f"{field}: over the limit of {limit} bytes")
    return bytes(body)


async def _json_body(request: Request, model: type[BaseModel], limit: int) -> BaseModel:
    """Read at most `limit` bytes, then validate."""
    body = await _read_body(request, limit, "body")
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as exc:
        raise HTTPException(422, detail=[{"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                                         for e in exc.errors(include_url=False)]) from None


def _openapi(model: type[BaseModel]) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


# --- routes ----------------------------------------------------------------------------------------
@router.post("/runs", status_code=201, response_model=RunOut)
def start(body: ExternalStart, session: SessionDep, queue: QueueDep, who: WriterDep, settings: SettingsDep) -> RunOut:
    """A running run whose frames the caller will post; its page exists at once."""
    run_id = uuid.uuid4().hex
    client = _redis(queue)
    try:
        ensure_group(client, run_id)  # before the first entry, as a launch does
        client.set(external_alive_key(run_id), 1, ex=max(1, int(settings.external_stale_seconds)))
    except redis.RedisError as exc:
        raise _unavailable(exc) from None
    now = utcnow()
    run = Run(id=run_id, status="running", preset=None, title=body.name, config=body.config, step=0,
              total_steps=body.total_steps, metrics={}, environment=body.environment, frame_count=0,
              launched_by=who.name, tags=list(dict.fromkeys(body.tags)), notes="", notes_html="", started_at=now,
              provenance={"origin": ORIGIN, "client": body.client,
                          "note": "logged by the user's own training code (pinwheel.log); no worker ran it"})
    session.add(run)
    session.commit()
    try:
        _publish(client, run_id, protocol.StatusEvent(status="running", time=time.time(), environment=body.environment))
    except redis.RedisError as exc:
        session.delete(run)
        session.commit()
        raise _unavailable(exc) from None
    return RunOut.of(run)


@router.post("/runs/{run_id}/frames", response_model=Control, openapi_extra=_openapi(ExternalFrame))
async def post_frame(run_id: str, request: Request, session: SessionDep, queue: QueueDep, who: WriterDep,
                     settings: SettingsDep) -> Control:
    """One frame → the run's stream. Answers whether the loop should stop (cancelled, or ended)."""
    run = _own_external_run(run_id, session, who)
    frame = await _json_body(request, ExternalFrame, MAX_FRAME_BYTES)
    client = _redis(queue)
    try:
        control = _control(client, run)
        if control.status in TERMINAL_STATUSES:
            return control  # a frame after the end is not stored; the client stops on should_stop
        _publish(client, run.id, protocol.Frame(
            step=frame.step, total_steps=frame.total_steps if frame.total_steps is not None else run.total_steps,
            wall_time=frame.wall_time, time=frame.time or time.time(), metrics=frame.metrics,
            panels=frame.panels.model_dump(exclude_none=True)))
        client.set(external_alive_key(run.id), 1, ex=max(1, int(settings.external_stale_seconds)))
    except redis.RedisError as exc:
        raise _unavailable(exc) from None
    return control


@router.get("/runs/{run_id}/control", response_model=Control)
def control(run_id: str, session: SessionDep, queue: QueueDep, who: WriterDep, settings: SettingsDep) -> Control:
    """A heartbeat while the loop posts no frames; says whether it should stop."""
    run = _own_external_run(run_id, session, who)
    client = _redis(queue)
    try:
        out = _control(client, run)
        if out.status not in TERMINAL_STATUSES:
            client.set(external_alive_key(run.id), 1, ex=max(1, int(settings.external_stale_seconds)))
    except redis.RedisError as exc:
        raise _unavailable(exc) from None
    return out


@router.post("/runs/{run_id}/finish", response_model=Control)
def finish(run_id: str, body: ExternalFinish, session: SessionDep, queue: QueueDep, who: WriterDep) -> Control:
    """The run's end. A run cancelled from its page stays cancelled whatever the client says."""
    run = _own_external_run(run_id, session, who)
    client = _redis(queue)
    try:
        out = _control(client, run)
        if out.status in TERMINAL_STATUSES:
            return out
        status = "cancelled" if client.exists(cancel_key(run.id)) and body.status == "succeeded" else body.status
        extra = {"error": body.error} if body.error else {}
        _publish(client, run.id, protocol.StatusEvent(status=status, time=time.time(), **extra))
        client.expire(stream_key(run.id), STREAM_TTL_SECONDS)
        client.delete(external_alive_key(run.id))
    except redis.RedisError as exc:
        raise _unavailable(exc) from None
    return Control(run_id=run.id, status=status, should_stop=True)


@router.put("/runs/{run_id}/weights.npz", response_model=Control)
async def put_weights(run_id: str, request: Request, session: SessionDep, queue: QueueDep, settings: SettingsDep,
                      who: WriterDep) -> Control:
    """Plain numeric arrays (np.savez; object arrays refused: no pickle) → the run's weights.npz, so the
    weights download and the bundle work as for a preset run."""
    run = _own_external_run(run_id, session, who)
    body = await _read_body(request, MAX_WEIGHTS_BYTES, "weights")
    try:
        with zipfile.ZipFile(io.BytesIO(body)) as z:
            if sum(i.file_size for i in z.infolist()) > 4 * MAX_WEIGHTS_BYTES:
                raise ValueError("uncompressed arrays over the limit")
        with np.load(io.BytesIO(body), allow_pickle=False) as arrays:
            for name in arrays.files:
                if not re.fullmatch(r"[\w.]{1,100}", name) or arrays[name].dtype.kind not in "biuf":
                    raise ValueError(f"array {name[:100]!r}: only numeric arrays are accepted")
    except Exception as exc:
        raise HTTPException(422, detail=f"weights: not a plain numpy .npz ({str(exc)[:200]})") from None
    folder = settings.artifacts_dir / run.id  # run.id is our own 32-hex id, checked in _own_external_run
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "weights.npz.tmp"
    tmp.write_bytes(body)
    os.replace(tmp, folder / "weights.npz")
    keep(request.app.state.sessions, run.id, "weights.npz", folder / "weights.npz")  # for the other web hosts too
    try:
        return _control(_redis(queue), run)
    except redis.RedisError as exc:
        raise _unavailable(exc) from None


# --- liveness --------------------------------------------------------------------------------------
def end_silent_runs(client: redis.Redis, sessions, limit: float) -> list[str]:
    """Every running external run whose client has not called for `limit` seconds ends failed."""
    with sessions() as s:
        running = s.execute(select(Run.id, Run.provenance).where(Run.status == "running")).all()
    ended = []
    for run_id, provenance in running:
        if (provenance or {}).get("origin") != ORIGIN or client.exists(external_alive_key(run_id)):
            continue
        if not client.set(protocol.external_ending_key(run_id), 1, nx=True, ex=60):
            continue  # another web process is ending it
        if _stream_ended(client, run_id):
            continue
        _publish(client, run_id, protocol.StatusEvent(status="failed", time=time.time(),
                                                      error=f"external: no word from the client for {limit:g} s "
                                                            "(its process stopped without run.finish())"))
        client.expire(stream_key(run_id), STREAM_TTL_SECONDS)
        ended.append(run_id)
    return ended


class LivenessWatch(threading.Thread):
    def __init__(self, redis_url: str, sessions, stale_seconds: float):
        super().__init__(name="external-liveness", daemon=True)
        self.redis = redis.Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=5)
        self.sessions, self.stale_seconds = sessions, stale_seconds
        self.stopping = threading.Event()

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        every = min(30.0, max(0.2, self.stale_seconds / 4))
        while not self.stopping.wait(every):
            try:
                for run_id in end_silent_runs(self.redis, self.sessions, self.stale_seconds):
                    log.warning("external run %s ended failed: its client went silent", run_id)
            except redis.RedisError as exc:
                log.warning("external liveness: Redis unreachable (%s)", exc)
            except Exception:
                log.exception("external liveness: unexpected error")
