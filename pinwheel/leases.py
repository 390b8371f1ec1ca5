"""Who is running a run, decided in Redis (torch-free: the backend and the worker both use it).

Celery's acks_late + visibility timeout is the broker's last resort; liveness is decided here:

    run:{id}:exec   hash  attempt (the newest attempt's number), state (queued | running | done),
                          lost (attempts that lost their worker), host, worker
    run:{id}:lease  str   "{attempt}:{worker}", with a TTL the worker renews from a thread of its own

Every change of state is one Lua script, so it is atomic with the status event it writes to the
run's stream: a claim starts attempt n+1; a reaper that finds a `running` run with no lease
re-queues it exactly once, however many web processes look (the first script to run wins, the
others see `queued`); a worker whose attempt is no longer the newest (it stalled past its lease and
was replaced) can no longer publish anything — its writes are fenced by the attempt number.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import redis

from .protocol import (LEASE_KEY_PATTERN, Event, StatusEvent, cancel_key, entry, event_json, exec_key, lease_key,
                       run_id_of_key, stream_key)


STREAM_MAXLEN = 20_000  # approximate cap on a run's stream; the backend persists long before
CANCEL_FLAG_SECONDS = 7 * 24 * 3600

# A status event is built in Lua from a JSON template so that the attempt number it carries is the
# one the script decided, in the same atomic step.
_XADD_STATUS = """
local function xadd_status(stream, maxlen, template, fields)
  local s = cjson.decode(template)
  for k, v in pairs(fields) do s[k] = v end
  return redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'type', 'status', 'data', cjson.encode(s))
end
"""

# KEYS: exec, lease, stream, cancel   ARGV: worker, host, ttl_ms, maxlen, cancelled_template
_CLAIM = _XADD_STATUS + """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'done' then return {'done', 0} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'held', 0} end
local n = tonumber(redis.call('HGET', KEYS[1], 'attempt') or '0')
if redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('HSET', KEYS[1], 'state', 'done')
  xadd_status(KEYS[3], ARGV[4], ARGV[5], {attempt = n})
  return {'cancelled', n}
end
local taken_over = 0
if state == 'running' then  -- its worker died and no reaper has re-queued it yet: this delivery takes over
  redis.call('HINCRBY', KEYS[1], 'lost', 1)
  taken_over = 1
end
n = n + 1
redis.call('HSET', KEYS[1], 'attempt', n, 'state', 'running', 'worker', ARGV[1], 'host', ARGV[2])
redis.call('SET', KEYS[2], n .. ':' .. ARGV[1], 'PX', ARGV[3])
return {'claimed', n, taken_over}
"""

# KEYS: exec, lease   ARGV: attempt, worker, ttl_ms  → 1 renewed, 0 this attempt is no longer the run's
_RENEW = """
if redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'state') ~= 'running' then
  return 0
end
local mine = ARGV[1] .. ':' .. ARGV[2]
local held = redis.call('GET', KEYS[2])
if held and held ~= mine then return 0 end
redis.call('SET', KEYS[2], mine, 'PX', ARGV[3])
return 1
"""

# KEYS: exec, lease, stream   ARGV: attempt, maxlen, type, data, end_state ('' keeps running)
_FENCED_XADD = """
if redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'state') ~= 'running' then
  return false
end
local id = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', 'type', ARGV[3], 'data', ARGV[4])
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[1], 'state', ARGV[5])
  redis.call('DEL', KEYS[2])
end
return id
"""

# KEYS: exec, lease, stream, cancel   ARGV: max_lost, maxlen, queued_template, failed_template, cancelled_template
_REAP = _XADD_STATUS + """
if redis.call('EXISTS', KEYS[2]) == 1 then return {'alive', 0} end
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing', 0} end
if state ~= 'running' then return {state, 0} end
local n = tonumber(redis.call('HGET', KEYS[1], 'attempt'))
if redis.call('EXISTS', KEYS[4]) == 1 then  -- cancelled while its worker was dying: end it, do not re-queue
  redis.call('HSET', KEYS[1], 'state', 'done')
  xadd_status(KEYS[3], ARGV[2], ARGV[5], {lost_attempt = n})
  return {'cancelled', n}
end
local lost = redis.call('HINCRBY', KEYS[1], 'lost', 1)
if lost >= tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'state', 'done')
  xadd_status(KEYS[3], ARGV[2], ARGV[4], {lost_attempt = n, lost = lost})
  return {'failed', n}
end
redis.call('HSET', KEYS[1], 'state', 'queued')
xadd_status(KEYS[3], ARGV[2], ARGV[3], {lost_attempt = n, lost = lost})
return {'requeue', n}
"""

# KEYS: exec, lease, stream, cancel   ARGV: maxlen, cancelled_template, flag_seconds
_CANCEL = _XADD_STATUS + """
redis.call('SET', KEYS[4], 1, 'EX', ARGV[3])
if redis.call('HGET', KEYS[1], 'state') == 'done' then return 'done' end
if redis.call('EXISTS', KEYS[2]) == 1 then return 'live' end
local n = tonumber(redis.call('HGET', KEYS[1], 'attempt') or '0')
redis.call('HSET', KEYS[1], 'state', 'done')
xadd_status(KEYS[3], ARGV[1], ARGV[2], {attempt = n})
return 'cancelled'
"""

# KEYS: lease   ARGV: the value it must still hold
_DELETE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def drop_dead_leases(client: redis.Redis, node: str, is_alive) -> list[str]:
    """Leases held by an earlier process of this very worker node (same name, e.g. `celery@host`)
    that is no longer alive: dropped now, so the reaper re-queues their runs at once instead of a
    lease TTL later. A worker restarted by its supervisor calls this when it is ready."""
    dropped = []
    for key in client.scan_iter(match=LEASE_KEY_PATTERN, count=500):
        value = client.get(key)
        if value is None:
            continue
        _, _, holder = _text(value).partition(":")
        name, _, pid = holder.rpartition(":")
        if name == node and pid.isdigit() and not is_alive(int(pid)):
            if client.eval(_DELETE_IF, 1, key, value):
                dropped.append(run_id_of_key(key))
    return dropped


def _status_template(status: str, **fields) -> str:
    """A status event's JSON; the Lua scripts add the attempt fields they decide."""
    return event_json(StatusEvent(status=status, time=time.time(), **fields))


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def init_run(client: redis.Redis, run_id: str, attempt: int = 0) -> None:
    """A new run (or one Redis forgot, at the attempt the store knows): queued. Never overwrites."""
    client.hsetnx(exec_key(run_id), "state", "queued")
    client.hsetnx(exec_key(run_id), "attempt", attempt)


def requeue_forgotten(client: redis.Redis, run_id: str, attempt: int) -> None:
    """A run the store says is active but Redis has no record of (its data lost): queued again at
    the attempt the store knows, with a status saying why (the caller sends its task)."""
    init_run(client, run_id, attempt=attempt)
    event = StatusEvent(status="queued", time=time.time(), lost_attempt=attempt or None,
                        reason="Redis lost the run's queue entry; re-queued to resume from its checkpoint")
    client.xadd(stream_key(run_id), entry(event), maxlen=STREAM_MAXLEN, approximate=True)


def exec_state(client: redis.Redis, run_id: str) -> dict:
    return {_text(k): _text(v) for k, v in client.hgetall(exec_key(run_id)).items()}


def cancel_run(client: redis.Redis, run_id: str) -> str:
    """Set the cancel flag. A run no worker holds ends `cancelled` at once (its status written to
    the stream here); returns 'cancelled', 'live' (its worker stops it) or 'done' (already ended)."""
    keys = [exec_key(run_id), lease_key(run_id), stream_key(run_id), cancel_key(run_id)]
    template = _status_template("cancelled", reason="cancelled while no worker held the run")
    return _text(client.eval(_CANCEL, 4, *keys, STREAM_MAXLEN, template, CANCEL_FLAG_SECONDS))


@dataclass
class ReapResult:
    outcome: str  # requeue | failed | cancelled | alive | queued | done | missing
    attempt: int


def reap(client: redis.Redis, run_id: str, max_lost: int) -> ReapResult:
    """If the run is `running` with no lease, its worker is gone: re-queue it (or fail it after
    max_lost lost attempts). Atomic: of several reapers looking at once, one acts."""
    keys = [exec_key(run_id), lease_key(run_id), stream_key(run_id), cancel_key(run_id)]
    queued = _status_template("queued", reason="worker lost (its lease expired); re-queued to resume "
                                               "from the last checkpoint")
    failed = _status_template("failed", error=f"worker lost {max_lost} times (lease expired); giving up")
    cancelled = _status_template("cancelled", reason="cancelled; its worker was lost")
    outcome, attempt = client.eval(_REAP, 4, *keys, max_lost, STREAM_MAXLEN, queued, failed, cancelled)
    return ReapResult(_text(outcome), int(attempt))


class Lease:
    """A worker's hold on one attempt of a run: claim, renew, fenced publishing, release."""

    def __init__(self, client: redis.Redis, run_id: str, worker: str, host: str, ttl_seconds: float):
        self.redis, self.run_id, self.worker, self.host = client, run_id, worker, host
        self.ttl_ms = int(ttl_seconds * 1000)
        self.attempt = 0
        self.taken_over = False
        self._keys = [exec_key(run_id), lease_key(run_id), stream_key(run_id)]

    def claim(self) -> str:
        """'claimed' (self.attempt set), 'held' (another worker runs it), 'done' or 'cancelled'."""
        template = _status_template("cancelled", reason="cancelled while queued")
        reply = self.redis.eval(_CLAIM, 4, *self._keys, cancel_key(self.run_id), self.worker, self.host,
                                self.ttl_ms, STREAM_MAXLEN, template)
        outcome = _text(reply[0])
        if outcome == "claimed":
            self.attempt, self.taken_over = int(reply[1]), bool(int(reply[2]))
        return outcome

    def renew(self) -> bool:
        """False once this attempt is no longer the run's (replaced, or cancelled while it stalled)."""
        return bool(self.redis.eval(_RENEW, 2, *self._keys[:2], self.attempt, self.worker, self.ttl_ms))

    def publish(self, event: Event, end_state: str = "") -> str | None:
        """XADD the event to the run's stream if this attempt still holds the run; None when fenced out.
        end_state 'done' ends the run (the terminal status), 'queued' hands it back; both drop the lease."""
        fields = entry(event)
        reply = self.redis.eval(_FENCED_XADD, 3, *self._keys, self.attempt, STREAM_MAXLEN, fields["type"],
                                fields["data"], end_state)
        return None if reply is None else _text(reply)

    def release(self, reason: str) -> bool:
        """Give the run back to the queue (a worker shutting down): state `queued`, lease dropped,
        a `queued` status saying why. False when this attempt no longer held the run."""
        event = StatusEvent(status="queued", time=time.time(), attempt=self.attempt, ended_attempt=self.attempt,
                            reason=reason)
        return self.publish(event, end_state="queued") is not None
