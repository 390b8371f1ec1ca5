"""pinwheel/leases.py against a real Redis: claims are exclusive, a lost lease is re-queued exactly
once, a replaced attempt can publish nothing, and cancel ends a run no worker holds at once."""
from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
import redis

from pinwheel.leases import Lease, cancel_run, exec_state, init_run, lease_key, reap
from pinwheel.protocol import Frame, StatusEvent, stream_key


@pytest.fixture
def client(redis_url):
    return redis.Redis.from_url(redis_url)


def new_run(client) -> str:
    run_id = uuid.uuid4().hex
    init_run(client, run_id)
    return run_id


def statuses(client, run_id) -> list[dict]:
    return [json.loads(f[b"data"]) for _, f in client.xrange(stream_key(run_id)) if f[b"type"] == b"status"]


def frame(step: int) -> Frame:
    return Frame(step=step, total_steps=10, wall_time=0.0, time=time.time(), metrics={})


def status(status: str) -> StatusEvent:
    return StatusEvent(status=status, time=time.time())


def expire(client, run_id: str) -> None:
    """What a dead worker leaves: its lease runs out (short TTLs in these tests)."""
    deadline = time.monotonic() + 10
    while client.exists(lease_key(run_id)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not client.exists(lease_key(run_id))


def test_claim_is_exclusive_and_publishing_is_fenced(client):
    run_id = new_run(client)
    first = Lease(client, run_id, "w1", "host-a", ttl_seconds=0.3)
    second = Lease(client, run_id, "w2", "host-b", ttl_seconds=0.3)
    assert first.claim() == "claimed" and first.attempt == 1
    assert second.claim() == "held"  # a duplicate delivery while the first is alive
    assert first.publish(frame(1)) is not None
    assert first.renew()

    expire(client, run_id)  # the first worker stalls past its lease ...
    assert reap(client, run_id, max_lost=5).outcome == "requeue"
    assert second.claim() == "claimed" and second.attempt == 2
    # ... and comes back: it can neither renew nor write a frame nor end the run
    assert not first.renew()
    assert first.publish(frame(2)) is None
    assert first.publish(status("succeeded"), end_state="done") is None
    assert exec_state(client, run_id)["state"] == "running"
    assert second.publish(status("succeeded"), end_state="done") is not None
    assert exec_state(client, run_id)["state"] == "done" and not client.exists(lease_key(run_id))


def test_many_reapers_requeue_a_lost_run_once(client):
    run_id = new_run(client)
    lease = Lease(client, run_id, "w1", "h", ttl_seconds=0.2)
    assert lease.claim() == "claimed"
    assert reap(client, run_id, max_lost=5).outcome == "alive"
    expire(client, run_id)
    outcomes: list[str] = []
    threads = [threading.Thread(target=lambda: outcomes.append(reap(client, run_id, 5).outcome)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["queued"] * 7 + ["requeue"]
    queued = [s for s in statuses(client, run_id) if s["status"] == "queued"]
    assert len(queued) == 1 and queued[0]["lost_attempt"] == 1 and "lease expired" in queued[0]["reason"]


def test_a_run_that_keeps_losing_its_worker_fails_with_the_reason(client):
    run_id = new_run(client)
    for attempt in range(1, 4):
        lease = Lease(client, run_id, f"w{attempt}", "h", ttl_seconds=0.1)
        assert lease.claim() == "claimed" and lease.attempt == attempt
        expire(client, run_id)
        result = reap(client, run_id, max_lost=3)
    assert result.outcome == "failed"
    final = statuses(client, run_id)[-1]
    assert final["status"] == "failed" and "lost 3 times" in final["error"]
    assert Lease(client, run_id, "late", "h", 1).claim() == "done"  # a late re-delivery starts nothing


def test_a_redelivery_takes_over_a_dead_workers_run_before_the_reaper(client):
    run_id = new_run(client)
    assert Lease(client, run_id, "w1", "h", ttl_seconds=0.1).claim() == "claimed"
    expire(client, run_id)
    takeover = Lease(client, run_id, "w2", "h", ttl_seconds=5)
    assert takeover.claim() == "claimed" and takeover.attempt == 2 and takeover.taken_over
    assert exec_state(client, run_id)["lost"] == "1"


def test_cancel_ends_an_unheld_run_at_once_and_a_held_one_through_its_worker(client):
    queued = new_run(client)
    assert cancel_run(client, queued) == "cancelled"
    assert statuses(client, queued)[-1]["status"] == "cancelled"
    assert Lease(client, queued, "w", "h", 5).claim() == "done"  # its task, delivered later, does nothing
    assert cancel_run(client, queued) == "done"

    orphan = new_run(client)  # its worker died and nobody re-queued it yet
    assert Lease(client, orphan, "w", "h", ttl_seconds=0.1).claim() == "claimed"
    expire(client, orphan)
    assert cancel_run(client, orphan) == "cancelled"

    live = new_run(client)
    lease = Lease(client, live, "w", "h", ttl_seconds=5)
    assert lease.claim() == "claimed"
    assert cancel_run(client, live) == "live"  # the worker's watcher sees the flag
    assert lease.publish(status("cancelled"), end_state="done") is not None


def test_a_worker_that_shuts_down_hands_the_run_back(client):
    run_id = new_run(client)
    lease = Lease(client, run_id, "w1", "h", ttl_seconds=5)
    assert lease.claim() == "claimed"
    assert lease.release("worker shut down")
    assert exec_state(client, run_id)["state"] == "queued" and not client.exists(lease_key(run_id))
    assert statuses(client, run_id)[-1] == {**statuses(client, run_id)[-1], "status": "queued", "ended_attempt": 1}
    nxt = Lease(client, run_id, "w2", "h", ttl_seconds=5)
    assert nxt.claim() == "claimed" and nxt.attempt == 2 and not nxt.taken_over


def test_a_run_cancelled_while_its_worker_died_is_ended_not_requeued(client):
    run_id = new_run(client)
    assert Lease(client, run_id, "w1", "h", ttl_seconds=0.2).claim() == "claimed"
    assert cancel_run(client, run_id) == "live"  # the worker is dying: nobody will see the flag
    expire(client, run_id)
    assert reap(client, run_id, max_lost=5).outcome == "cancelled"
    assert statuses(client, run_id)[-1]["status"] == "cancelled"
    assert Lease(client, run_id, "w2", "h", 5).claim() == "done"


def test_a_restarted_worker_drops_only_its_dead_predecessors_leases(client):
    dead, live, other = new_run(client), new_run(client), new_run(client)
    assert Lease(client, dead, "celery@gpu0:111", "h", ttl_seconds=60).claim() == "claimed"
    assert Lease(client, live, "celery@gpu0:222", "h", ttl_seconds=60).claim() == "claimed"
    assert Lease(client, other, "celery@gpu1:111", "h", ttl_seconds=60).claim() == "claimed"
    from pinwheel.leases import drop_dead_leases

    dropped = drop_dead_leases(client, "celery@gpu0", is_alive=lambda pid: pid == 222)
    assert dropped == [dead]
    assert reap(client, dead, max_lost=5).outcome == "requeue"  # at once, not a minute later
    assert reap(client, live, max_lost=5).outcome == "alive" and reap(client, other, 5).outcome == "alive"


def test_a_run_redis_forgot_is_queued_again_at_the_attempt_the_store_knows(client):
    from pinwheel.leases import requeue_forgotten

    run_id = uuid.uuid4().hex  # no Redis record at all (its data lost)
    assert reap(client, run_id, max_lost=5).outcome == "missing"
    requeue_forgotten(client, run_id, attempt=3)
    assert exec_state(client, run_id)["state"] == "queued"
    said = statuses(client, run_id)[-1]
    assert said["status"] == "queued" and said["lost_attempt"] == 3 and "Redis lost" in said["reason"]
    lease = Lease(client, run_id, "w", "h", ttl_seconds=5)
    assert lease.claim() == "claimed" and lease.attempt == 4  # newer than anything the store holds
