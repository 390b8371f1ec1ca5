"""Re-queues runs whose worker is gone: a `running` run with no lease (pinwheel/leases.py).

Every web process runs one; the Lua script makes each re-queue happen once however many look.
After a Redis outage the reaper waits one lease TTL before judging, so that live workers renew
their leases first. A run Redis has forgotten altogether (its queue lost with it) is re-queued too,
at the attempt number the store knows, so that the frames already stored stay the current ones.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time

import redis
from sqlalchemy import select

from pinwheel.leases import reap, requeue_forgotten
from pinwheel.protocol import ACTIVE_STATUSES

from .queue import Queue, QueueUnavailable
from .settings import Settings
from .store import Run

log = logging.getLogger(__name__)
FORGOTTEN_AFTER_SECONDS = 60  # a new run's Redis record is written right after its row: allow for that


def is_external(run_provenance: dict | None) -> bool:
    """Runs logged by users' own code have no worker and no lease (pinwheel.log)."""
    return (run_provenance or {}).get("origin") == "external"


class Reaper(threading.Thread):
    def __init__(self, settings: Settings, sessions, queue: Queue):
        super().__init__(name="run-reaper", daemon=True)
        self.settings, self.sessions, self.queue = settings, sessions, queue
        self.redis = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
        self.stopping = threading.Event()
        self.unsent: dict[str, dict] = {}  # re-queued runs whose task could not be sent yet: retried

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> None:
        reachable_since = None
        while not self.stopping.wait(self.settings.reaper_interval_seconds):
            try:
                self.redis.ping()
                reachable_since = reachable_since or time.monotonic()
                if time.monotonic() - reachable_since >= self.settings.lease_ttl_seconds:
                    self.sweep()
            except redis.RedisError as exc:
                if reachable_since is not None:
                    log.warning("reaper: Redis unreachable (%s); waiting", exc)
                reachable_since = None
            except Exception:
                log.exception("reaper: unexpected error")

    def _active_runs(self) -> list[tuple]:
        with self.sessions() as s:
            return list(s.execute(select(Run.id, Run.status, Run.config, Run.created_at, Run.provenance, Run.attempt)
                                  .where(Run.status.in_(ACTIVE_STATUSES))))

    def sweep(self) -> list[str]:
        """One look at every active run; returns the ids re-queued (or failed) by this call."""
        acted = []
        for run_id, config in list(self.unsent.items()):
            self._submit(run_id, config)
        now = dt.datetime.now(dt.timezone.utc)
        for run_id, status, config, created_at, provenance, attempt in self._active_runs():
            if is_external(provenance):
                continue
            result = reap(self.redis, run_id, self.settings.max_lost_attempts)
            if result.outcome == "requeue":
                log.warning("run %s: attempt %d lost its worker; re-queued", run_id, result.attempt)
                self._submit(run_id, config)
                acted.append(run_id)
            elif result.outcome == "failed":
                log.warning("run %s: lost its worker %d times; failed", run_id, self.settings.max_lost_attempts)
                acted.append(run_id)
            elif result.outcome == "missing" and self._forgotten(status, created_at, now):
                log.warning("run %s: Redis has no record of it (data lost?); re-queued", run_id)
                requeue_forgotten(self.redis, run_id, attempt or 0)
                self._submit(run_id, config)
                acted.append(run_id)
        return acted

    @staticmethod
    def _forgotten(status: str, created_at: dt.datetime | None, now: dt.datetime) -> bool:
        if status == "running":
            return True
        if created_at is None:
            return False
        if created_at.tzinfo is None:  # SQLite returns naive datetimes
            created_at = created_at.replace(tzinfo=dt.timezone.utc)
        return (now - created_at).total_seconds() > FORGOTTEN_AFTER_SECONDS

    def _submit(self, run_id: str, config: dict) -> None:
        try:
            self.queue.submit(run_id, config, max_seconds=self.settings.max_run_seconds, requeue=True)
            self.unsent.pop(run_id, None)
        except QueueUnavailable as exc:
            log.warning("run %s: re-queued but its task could not be sent (%s); retrying", run_id, exc)
            self.unsent[run_id] = config
