"""Persists every stream entry of active runs into the store.

A consumer group per run stream ("persist"): several backend processes share the work, each entry
is delivered to one of them, and an entry is acknowledged only after it is committed, so a
crashed backend's entries are claimed by another (XAUTOCLAIM) — nothing is lost or stored twice
(the store's unique (run_id, event_id) makes a replay harmless).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import threading
import time

import redis
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from pinwheel.protocol import PERSIST_GROUP, TERMINAL_STATUSES, stream_key

from .store import Frame, Run
from .thinning import thin_run

log = logging.getLogger(__name__)
ACTIVE = ("queued", "running")


def ensure_group(client: redis.Redis, run_id: str) -> None:
    try:
        client.xgroup_create(stream_key(run_id), PERSIST_GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def apply_entry(session, run: Run, event_id: str, fields: dict) -> None:
    """Fold one stream entry into the store (caller commits)."""
    kind = fields[b"type"].decode()
    data = json.loads(fields[b"data"])
    if kind == "frame":
        session.add(Frame(run_id=run.id, event_id=event_id, step=data["step"], wall_time=data["wall_time"],
                          time=data["time"], metrics=data["metrics"], panels=json.dumps(data["panels"])))
        run.step, run.wall_time, run.total_steps = data["step"], data["wall_time"], data["total_steps"]
        if data["metrics"]:
            run.metrics = data["metrics"]
        run.frame_count = (run.frame_count or 0) + 1
        if run.status == "queued":
            run.status = "running"
    elif kind == "status":
        status = data["status"]
        if run.status in TERMINAL_STATUSES:
            return  # a late duplicate must not resurrect a finished run
        run.status = status
        when = dt.datetime.fromtimestamp(data["time"], dt.timezone.utc)
        if status == "running":
            run.started_at = run.started_at or when
            run.environment = data.get("environment") or {}
        if status in TERMINAL_STATUSES:
            run.finished_at = when
            run.error = data.get("error")
    run.last_event_id = event_id


class Persister(threading.Thread):
    def __init__(self, redis_url: str, sessions, consumer: str | None = None, claim_idle_ms: int = 30_000):
        super().__init__(name="frame-persister", daemon=True)
        self.redis = redis.Redis.from_url(redis_url, socket_timeout=10)
        self.sessions = sessions
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.claim_idle_ms = claim_idle_ms  # a peer's entry unacknowledged this long: its backend died
        self.stopping = threading.Event()
        self._claimed: set[str] = set()

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.poll_once(block_ms=500)
            except redis.ConnectionError as exc:
                log.warning("persister: Redis unreachable (%s); retrying", exc)
                self.stopping.wait(2)
            except Exception:
                log.exception("persister: unexpected error")
                self.stopping.wait(1)

    def active_runs(self) -> list[str]:
        with self.sessions() as s:
            return list(s.scalars(select(Run.id).where(Run.status.in_(ACTIVE))))

    def poll_once(self, block_ms: int = 0) -> int:
        run_ids = self.active_runs()
        if not run_ids:
            self.stopping.wait(0.2)
            return 0
        handled = 0
        for run_id in run_ids:  # first our own unacknowledged entries, then a dead peer's
            if run_id not in self._claimed:
                ensure_group(self.redis, run_id)
                handled += self._store(run_id, self._pending(run_id))
                self._claimed.add(run_id)
        streams = {stream_key(r): ">" for r in run_ids}
        reply = self.redis.xreadgroup(PERSIST_GROUP, self.consumer, streams, count=200, block=block_ms or None)
        for key, entries in reply or []:
            handled += self._store(key.decode().split(":", 1)[1], entries)
        return handled

    def _pending(self, run_id: str) -> list:
        key = stream_key(run_id)
        mine = self.redis.xreadgroup(PERSIST_GROUP, self.consumer, {key: "0"}, count=10_000)
        entries = mine[0][1] if mine else []
        claimed = self.redis.xautoclaim(key, PERSIST_GROUP, self.consumer, min_idle_time=self.claim_idle_ms, count=10_000)
        return entries + claimed[1]

    def _store(self, run_id: str, entries: list) -> int:
        entries = [(eid.decode() if isinstance(eid, bytes) else eid, f) for eid, f in entries if f]
        if not entries:
            return 0
        with self.sessions() as s:
            run = s.get(Run, run_id)
            if run is not None:
                known = set(s.scalars(select(Frame.event_id).where(
                    Frame.run_id == run_id, Frame.event_id.in_([e for e, _ in entries]))))
                for event_id, fields in entries:
                    if event_id not in known:
                        apply_entry(s, run, event_id, fields)
                try:
                    s.commit()
                    if thin_run(s, run_id):  # long runs: older frames thinned evenly
                        s.commit()
                except IntegrityError:  # a peer stored the same entries first
                    s.rollback()
        self.redis.xack(stream_key(run_id), PERSIST_GROUP, *[e for e, _ in entries])
        return len(entries)
