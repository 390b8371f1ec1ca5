"""Server-Sent Events: one event per stream entry, `id:` = the Redis Stream entry id.

Each event's data is built from pinwheel.protocol's models: a `frame` in the same shape as
GET /api/runs/{id}/frames hands out (with `event_id` and `total_steps`), a `status` as produced.

A reconnecting browser sends Last-Event-ID and resumes right after it. The relay reads the live
stream and fills from the store what the stream no longer holds (trimmed, expired, or lost with a
Redis outage). It never breaks by itself: a comment line every `sse_heartbeat_seconds` keeps a
silent stream up, and a Redis outage is waited out with back-off. The response ends after the
run's terminal status, which every viewer receives, also one that reconnects to a finished run.
No database connection is held while the stream waits: each store read is a short session.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from typing import Annotated, AsyncIterator

import redis.asyncio as aioredis
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from redis.exceptions import ConnectionError as RedisConnectionError, TimeoutError as RedisTimeoutError
from sqlalchemy import select

from pinwheel import protocol
from pinwheel.protocol import TERMINAL_STATUSES, stream_key

from ..deps import SessionDep, SettingsDep, TicketReaderRunDep
from ..store import Frame, Run, frame_event

router = APIRouter(prefix="/api/runs", tags=["events"])
log = logging.getLogger(__name__)
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)
END = ""  # follow()'s word that the terminal status went out


def sse(event_id: str, kind: str, data: str) -> str:
    return f"id: {event_id}\nevent: {kind}\ndata: {data}\n\n"


def _key(event_id: str) -> tuple[int, int]:
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


def _stored_after(sessions, run_id: str, cursor: str, before: str | None) -> list[tuple[str, str]]:
    """(event_id, SSE event) of the run's stored frames with cursor < event_id (< before), in stream order."""
    with sessions() as s:
        run = s.get(Run, run_id)
        ids = [(fid, eid) for fid, eid in s.execute(select(Frame.id, Frame.event_id).where(Frame.run_id == run_id))
               if _key(eid) > _key(cursor) and (before is None or _key(eid) < _key(before))]
        wanted = [fid for fid, _ in sorted(ids, key=lambda p: _key(p[1]))]
        rows = {f.id: f for f in s.scalars(select(Frame).where(Frame.id.in_(wanted)))} if wanted else {}
    total_steps = run.total_steps if run else 0

    def encode(row: Frame) -> str:
        return sse(row.event_id, "frame", protocol.reader_json(frame_event(row, total_steps)))

    return [(row.event_id, ENCODED.get(run_id, row.event_id, lambda: encode(row))) for row in map(rows.get, wanted)]


class EncodedFrames:
    """SSE text of the frames a process relayed lately, by (run, entry id): every viewer of a run
    gets the same frame, so it is parsed and written out once per process, not once per viewer.
    Built off the event loop (a large frame takes a millisecond or two), hence the lock."""

    def __init__(self, keep: int = 256):
        self.keep, self.texts, self.lock = keep, OrderedDict(), threading.Lock()

    def get(self, run_id: str, event_id: str, build) -> str:
        key = (run_id, event_id)
        with self.lock:
            text = self.texts.get(key)
        if text is None:
            text = build()
            with self.lock:
                self.texts[key] = text
                if len(self.texts) > self.keep:
                    self.texts.popitem(last=False)
        return text


ENCODED = EncodedFrames()


class Relay:
    def __init__(self, request: Request, run_id: str, cursor: str, heartbeat: float, redis_url: str):
        self.request, self.run_id, self.cursor, self.heartbeat = request, run_id, cursor, heartbeat
        self.redis_url, self.key = redis_url, stream_key(run_id)
        self.sessions = request.app.state.sessions

    async def from_store(self, before: str | None = None) -> AsyncIterator[str]:
        """Stored frames after the cursor (and before `before`), read and encoded off the event loop;
        moves the cursor."""
        frames = await asyncio.to_thread(_stored_after, self.sessions, self.run_id, self.cursor, before)
        for event_id, text in frames:
            self.cursor = event_id
            yield text

    async def final_status(self) -> str | None:
        """The terminal status from the store, if the run has ended."""
        def load():
            with self.sessions() as s:
                return s.get(Run, self.run_id)
        run = await asyncio.to_thread(load)
        if run is None or run.status not in TERMINAL_STATUSES:
            return None
        when = run.finished_at.timestamp() if run.finished_at else time.time()
        event = protocol.StatusEvent(status=run.status, time=when, error=run.error)
        return sse(run.last_event_id or self.cursor, "status", protocol.reader_json(event))

    def live_frame(self, fields: dict, event_id: str) -> str:
        """A live frame entry as SSE; a malformed one becomes a comment line (skipped by EventSource)."""
        try:
            return sse(event_id, "frame", protocol.reader_json(protocol.read_entry(fields, event_id)))
        except protocol.MalformedEvent as exc:
            log.error("events %s: entry %s skipped: %s", self.run_id, event_id, exc)
            return f": entry {event_id} skipped (malformed)\n\n"

    async def events(self) -> AsyncIterator[str]:
        yield ": connected\n\n"
        client, delay = None, 0.5
        try:
            while not await self.request.is_disconnected():
                try:
                    if client is None:
                        client = aioredis.Redis.from_url(self.redis_url, socket_timeout=self.heartbeat + 10,
                                                         socket_connect_timeout=5)
                        async for chunk in self.catch_up(client):
                            yield chunk
                    async for chunk in self.follow(client):
                        if chunk == END:
                            return
                        yield chunk
                        delay = 0.5
                except REDIS_DOWN as exc:  # wait it out; the store fills what the stream lost meanwhile
                    log.info("events %s: Redis unavailable (%s); retrying in %.1f s", self.run_id, exc, delay)
                    if client is not None:
                        await client.aclose()
                        client = None
                    yield ": redis unavailable, retrying\n\n"
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
        finally:
            if client is not None:
                await client.aclose()

    async def catch_up(self, client: aioredis.Redis) -> AsyncIterator[str]:
        """What the stream no longer holds between the cursor and its first entry, from the store."""
        first = await client.xrange(self.key, count=1)
        before = first[0][0].decode() if first else None
        if before is None or _key(before) > _key(self.cursor):
            async for chunk in self.from_store(before):
                yield chunk

    async def follow(self, client: aioredis.Redis) -> AsyncIterator[str]:
        """Relay stream entries; yields END once the terminal status has been sent."""
        block_ms = 1  # at first only what is there: a viewer past a finished run's end hears so at once
        while not await self.request.is_disconnected():
            reply = await client.xread({self.key: self.cursor}, count=100, block=block_ms)
            block_ms = int(self.heartbeat * 1000)
            if reply:
                for event_id, fields in reply[0][1]:
                    self.cursor = event_id.decode()
                    if fields.get(b"type") == b"frame":
                        build = lambda f=fields, c=self.cursor: self.live_frame(f, c)  # noqa: E731
                        yield await asyncio.to_thread(ENCODED.get, self.run_id, self.cursor, build)
                        continue
                    try:
                        event = protocol.read_entry(fields, self.cursor)
                    except protocol.MalformedEvent as exc:
                        log.error("events %s: entry %s skipped: %s", self.run_id, self.cursor, exc)
                        continue
                    yield sse(self.cursor, protocol.kind_of(event), protocol.reader_json(event))
                    if isinstance(event, protocol.StatusEvent) and event.terminal:
                        yield END
                        return
                continue
            if not await client.exists(self.key):  # expired or lost: what was persisted, then the end if any
                async for chunk in self.from_store():
                    yield chunk
            final = await self.final_status()  # a finished run whose terminal entry we are already past
            if final is not None:
                async for chunk in self.from_store():
                    yield chunk
                yield final
                yield END
                return
            yield ": heartbeat\n\n"


@router.get("/{run_id}/events")
async def events(run: TicketReaderRunDep, request: Request, settings: SettingsDep, session: SessionDep,
                 last_event_id: Annotated[str | None, Header()] = None,
                 after: Annotated[str | None, Query(pattern=r"^\d+-\d+$")] = None) -> StreamingResponse:
    """`Last-Event-ID` header (set by EventSource on reconnect) or `?after=` pick up after that entry."""
    cursor = last_event_id or after or "0-0"
    if not all(p.isdigit() for p in cursor.split("-")) or cursor.count("-") != 1:
        cursor = "0-0"
    run_id = run.id
    # The request's session would otherwise keep its pooled connection for the stream's whole life
    # (dependencies with yield close after the response): 15 viewers would drain the pool.
    session.close()
    relay = Relay(request, run_id, cursor, settings.sse_heartbeat_seconds, settings.redis_url)
    return StreamingResponse(relay.events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
