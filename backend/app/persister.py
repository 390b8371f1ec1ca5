"""Persists every stream entry of active runs into the store.

A consumer group per run stream ("persist"): several backend processes share the work, each entry
is delivered to one of them, and an entry is acknowledged only after it is committed, so a
crashed backend's entries are claimed by another (XAUTOCLAIM) — nothing is lost or stored twice
(the store's unique (run_id, event_id) makes a replay harmless).
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time

import redis
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from pinwheel import protocol
from pinwheel.protocol import ACTIVE_STATUSES, PERSIST_GROUP, TERMINAL_STATUSES, run_id_of_key, stream_key

from .store import Frame, Run
from .thinning import thin_run

log = logging.getLogger(__name__)


def ensure_group(client: redis.Redis, run_id: str) -> None:
    try:
        client.xgroup_create(stream_key(run_id), PERSIST_GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).isoformat()


def _end_attempt(run: Run, number: int | None, when: float, ended: str) -> None:
    """Close attempt `number` (or the open one) in the run's record, saying how it ended."""
    attempts = [dict(a) for a in run.attempts or []]  # a new list: JSON columns track reassignment
    for a in attempts:
        if a.get("ended_at") is None and (number is None or a["attempt"] == number):
            a["ended_at"], a["ended"] = _iso(when), ended
    run.attempts = attempts


def _supersede(session, run: Run, from_step: int) -> None:
    """A new attempt resumes at `from_step`: what earlier attempts stored from there on is redone."""
    session.flush()
    session.execute(delete(Frame).where(Frame.run_id == run.id, Frame.step >= from_step))
    run.frame_count = session.scalar(select(func.count()).select_from(Frame).where(Frame.run_id == run.id))
    run.step = session.scalar(select(func.max(Frame.step)).where(Frame.run_id == run.id)) or 0


def _frame_is_new(session, run: Run, frame: protocol.Frame) -> bool:
    """One frame per step, and none that a later attempt redoes: a lost attempt's frames from the
    step its successor resumed at, or a frame re-sent after a Redis timeout, are dropped."""
    attempt, step = frame.attempt, frame.step
    if attempt is not None and any(a["attempt"] > attempt and (a.get("resumed_from_step") or 0) <= step
                                   for a in run.attempts or []):
        return False
    session.flush()
    return session.scalar(select(Frame.id).where(Frame.run_id == run.id, Frame.step == step).limit(1)) is None


def _lock_run(session, run_id: str) -> Run | None:
    """One persister at a time folds a run's entries, reading what the others committed: a row lock
    on PostgreSQL; SQLite has none, so a no-op write takes its write lock before the read."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(update(Run).where(Run.id == run_id).values(last_event_id=Run.last_event_id))
    return session.get(Run, run_id, with_for_update=True)


def _apply_frame(session, run: Run, event_id: str, frame: protocol.Frame) -> None:
    if not _frame_is_new(session, run, frame):
        return
    session.add(Frame(run_id=run.id, event_id=event_id, step=frame.step, wall_time=frame.wall_time,
                      time=frame.time, metrics=frame.metrics, panels=protocol.panels_json(frame.panels)))
    if not run.frame_count or frame.step >= run.step:  # peers may fold a run's batches out of order
        run.step, run.wall_time, run.total_steps = frame.step, frame.wall_time, frame.total_steps
        if frame.metrics:
            run.metrics = frame.metrics
    run.frame_count = (run.frame_count or 0) + 1
    if run.status == "queued":
        run.status = "running"


def _apply_status(session, run: Run, event: protocol.StatusEvent) -> None:
    status = event.status
    if run.status in TERMINAL_STATUSES:
        return  # a late duplicate must not resurrect a finished run
    attempt = event.attempt
    if status == "running" and attempt is not None and (
            attempt < (run.attempt or 0) or any(a["attempt"] == attempt for a in run.attempts or [])):
        return  # a stale attempt's word, or a replay of one already folded in
    ended = event.lost_attempt or event.ended_attempt
    if status == "queued" and ended is not None and ended < (run.attempt or 0):
        return  # a newer attempt already runs
    run.status = status
    when = dt.datetime.fromtimestamp(event.time, dt.timezone.utc)
    if status == "running":
        run.started_at = run.started_at or when
        run.environment = event.environment or {}
        _end_attempt(run, None, event.time, "worker lost (taken over)")
        resumed = event.resumed_from_step
        if resumed is not None or (attempt or 1) > 1 or run.frame_count:
            _supersede(session, run, resumed or 0)
        run.attempt = attempt or 1
        run.attempts = [*(run.attempts or []), {
            "attempt": run.attempt, "host": event.host or run.environment.get("hostname"),
            "worker": event.worker, "device": run.environment.get("device"), "started_at": _iso(event.time),
            "resumed_from_step": resumed, "ended_at": None, "ended": None}]
    elif status == "queued":
        _end_attempt(run, ended, event.time, event.reason or "re-queued")
    if status in TERMINAL_STATUSES:
        run.finished_at = when
        run.error = event.error
        _end_attempt(run, None, event.time, status + (f": {event.error}" if event.error else ""))


def apply_entry(session, run: Run, event_id: str, fields: dict) -> None:
    """Fold one stream entry into the store (caller commits). An entry that breaks the contract
    (pinwheel/protocol.py) is logged and skipped: it must not hold up the entries after it."""
    try:
        event = protocol.read_entry(fields, event_id)
    except protocol.MalformedEvent as exc:
        log.error("run %s: entry %s skipped: %s", run.id, event_id, exc)
    else:
        if isinstance(event, protocol.Frame):
            _apply_frame(session, run, event_id, event)
        else:
            _apply_status(session, run, event)
    run.last_event_id = event_id


class Persister(threading.Thread):
    def __init__(self, redis_url: str, sessions, consumer: str | None = None, claim_idle_ms: int = 30_000,
                 frames_keep: int = 1000, frames_keep_recent: int = 100):
        super().__init__(name="frame-persister", daemon=True)
        self.frames_keep, self.frames_keep_recent = frames_keep, frames_keep_recent  # the app's Settings
        self.redis = redis.Redis.from_url(redis_url, socket_timeout=10)
        self.sessions = sessions
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.claim_idle_ms = claim_idle_ms  # a peer's entry unacknowledged this long: its backend died
        self.stopping = threading.Event()
        # when each run's pending entries (ours, and a dead peer's) were last looked at: again after a
        # Redis outage (a reply lost in transit leaves an entry pending on us) and every half idle time
        self._pending_checked: dict[str, float] = {}

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.poll_once(block_ms=500)
            except redis.ConnectionError as exc:
                log.warning("persister: Redis unreachable (%s); retrying", exc)
                self._pending_checked.clear()
                self.stopping.wait(2)
            except Exception:
                log.exception("persister: unexpected error")
                self.stopping.wait(1)

    def active_runs(self) -> list[str]:
        with self.sessions() as s:
            return list(s.scalars(select(Run.id).where(Run.status.in_(ACTIVE_STATUSES))))

    def poll_once(self, block_ms: int = 0) -> int:
        run_ids = self.active_runs()
        if not run_ids:
            self.stopping.wait(0.2)
            return 0
        handled, now = 0, time.monotonic()
        for run_id in run_ids:  # first our own unacknowledged entries, then a dead peer's
            if now - self._pending_checked.get(run_id, -1e9) >= self.claim_idle_ms / 2000:
                ensure_group(self.redis, run_id)
                handled += self._store(run_id, self._pending(run_id))
                self._pending_checked[run_id] = now
        streams = {stream_key(r): ">" for r in run_ids}
        reply = self.redis.xreadgroup(PERSIST_GROUP, self.consumer, streams, count=200, block=block_ms or None)
        for key, entries in reply or []:
            handled += self._store(run_id_of_key(key), entries)
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
        try:
            self._fold(run_id, entries)
        except Exception:
            self._pending_checked.pop(run_id, None)  # read our unacknowledged entries again next time
            raise
        self.redis.xack(stream_key(run_id), PERSIST_GROUP, *[e for e, _ in entries])
        return len(entries)

    def _fold(self, run_id: str, entries: list) -> None:
        with self.sessions() as s:
            run = _lock_run(s, run_id)
            if run is not None:
                known = set(s.scalars(select(Frame.event_id).where(
                    Frame.run_id == run_id, Frame.event_id.in_([e for e, _ in entries]))))
                for event_id, fields in entries:
                    if event_id not in known:
                        apply_entry(s, run, event_id, fields)
                try:
                    s.commit()
                    if thin_run(s, run_id, self.frames_keep, self.frames_keep_recent):  # long runs: thinned evenly
                        s.commit()
                except IntegrityError:  # a peer stored the same entries first
                    s.rollback()
