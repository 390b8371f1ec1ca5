"""Server-Sent Events: one event per stream entry, `id:` = the Redis Stream entry id.

A reconnecting browser sends Last-Event-ID and resumes right after it. The relay reads the live
stream; when a finished run's stream has expired, it replays from the store instead. The
response ends after the run's terminal status event.
"""
from __future__ import annotations

import asyncio
import json
from typing import Annotated, AsyncIterator

import redis.asyncio as aioredis
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from pinwheel.protocol import TERMINAL_STATUSES, stream_key

from ..deps import SettingsDep, TicketReaderRunDep
from ..store import Frame, Run

router = APIRouter(prefix="/api/runs", tags=["events"])


def sse(event_id: str, kind: str, data: str) -> str:
    return f"id: {event_id}\nevent: {kind}\ndata: {data}\n\n"


def _after(event_id: str, cursor: str) -> bool:
    a, b = (tuple(int(p) for p in x.split("-")) for x in (event_id, cursor))
    return a > b


async def _from_store(request: Request, run_id: str, cursor: str) -> AsyncIterator[str]:
    sessions = request.app.state.sessions

    def load():
        with sessions() as s:
            run = s.get(Run, run_id)
            rows = s.execute(select(Frame.event_id, Frame.step, Frame.wall_time, Frame.time, Frame.metrics,
                                    Frame.panels).where(Frame.run_id == run_id).order_by(Frame.id)).all()
            return run, rows

    run, rows = await asyncio.to_thread(load)
    for event_id, step, wall_time, t, metrics, panels in rows:
        if _after(event_id, cursor):
            yield sse(event_id, "frame", json.dumps({"step": step, "total_steps": run.total_steps,
                                                     "wall_time": wall_time, "time": t, "metrics": metrics})
                      [:-1] + f', "panels": {panels}}}')
    final = {"status": run.status, "error": run.error}
    yield sse(run.last_event_id or cursor, "status", json.dumps(final))


async def event_stream(request: Request, run_id: str, cursor: str, heartbeat: float,
                       client: aioredis.Redis) -> AsyncIterator[str]:
    key = stream_key(run_id)
    try:
        if not await client.exists(key):
            async for chunk in _from_store(request, run_id, cursor):
                yield chunk
            return
        yield ": connected\n\n"
        while not await request.is_disconnected():
            reply = await client.xread({key: cursor}, count=100, block=int(heartbeat * 1000))
            if not reply:
                if not await client.exists(key):  # expired while we waited: finish from the store
                    async for chunk in _from_store(request, run_id, cursor):
                        yield chunk
                    return
                yield ": heartbeat\n\n"
                continue
            for event_id, fields in reply[0][1]:
                cursor = event_id.decode()
                kind, data = fields[b"type"].decode(), fields[b"data"].decode()
                yield sse(cursor, kind, data)
                if kind == "status" and json.loads(data)["status"] in TERMINAL_STATUSES:
                    return
    finally:
        await client.aclose()


@router.get("/{run_id}/events")
async def events(run: TicketReaderRunDep, request: Request, settings: SettingsDep,
                 last_event_id: Annotated[str | None, Header()] = None,
                 after: Annotated[str | None, Query(pattern=r"^\d+-\d+$")] = None) -> StreamingResponse:
    """`Last-Event-ID` header (set by EventSource on reconnect) or `?after=` pick up after that entry."""
    cursor = last_event_id or after or "0-0"
    if not all(p.isdigit() for p in cursor.split("-")) or cursor.count("-") != 1:
        cursor = "0-0"
    client = aioredis.Redis.from_url(settings.redis_url)
    return StreamingResponse(event_stream(request, run.id, cursor, settings.sse_heartbeat_seconds, client),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
