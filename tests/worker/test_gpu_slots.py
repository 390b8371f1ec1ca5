"""worker/gpu_slots.py against a real Redis: whole-GPU runs and the runs that share a device."""
from __future__ import annotations

import threading
import time
import uuid

import pytest
import redis

from worker import gpu_slots
from worker.gpu_slots import GpuSlot


def wait_until(condition, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.02)


@pytest.fixture
def r(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def host():
    return f"test-{uuid.uuid4().hex[:8]}"  # keys of this test only


def test_a_whole_gpu_holder_makes_a_sibling_back_off(r, host):
    whole = GpuSlot(r, host, "w1", "0")
    assert whole.enter(True, "run-whole") is True
    sibling = GpuSlot(r, host, "w2", "0")
    assert sibling.enter(False, "run-other") is False
    assert r.get(sibling.busy_key) is None  # backing off leaves no busy mark behind
    assert GpuSlot(r, host, "w3", "1").enter(False, "run-elsewhere") is True  # another device is free
    whole.leave()
    assert sibling.enter(False, "run-other") is True


def test_a_busy_sibling_makes_a_whole_gpu_run_wait_until_it_leaves(r, host):
    sibling = GpuSlot(r, host, "w2", "0")
    assert sibling.enter(False, "run-other") is True
    whole = GpuSlot(r, host, "w1", "0")
    polls, result = [], []
    thread = threading.Thread(target=lambda: result.append(whole.enter(True, "run-whole", lambda: polls.append(1) and False)),
                              daemon=True)
    thread.start()
    wait_until(lambda: len(polls) >= 2, what="the whole-GPU run never waited for its busy sibling")
    assert not result and r.get(whole.whole_key) == b"run-whole"  # holds the device while it waits
    sibling.leave()
    thread.join(timeout=10)
    assert result == [True]
    assert whole.others_busy() == []


def test_marks_expire_so_a_dead_workers_hold_fades(r, host, monkeypatch):
    whole = GpuSlot(r, host, "w1", "0")
    whole.enter(True, "run-whole")
    assert 0 < r.ttl(whole.busy_key) <= gpu_slots.TTL_SECONDS and 0 < r.ttl(whole.whole_key) <= gpu_slots.TTL_SECONDS

    monkeypatch.setattr(gpu_slots, "TTL_SECONDS", 1)
    dead = GpuSlot(r, host, "w9", "1")  # a worker that dies holding a device: its marks fade
    dead.enter(True, "run-dead")
    assert GpuSlot(r, host, "w2", "1").enter(False, "run-other") is False
    wait_until(lambda: r.get(dead.whole_key) is None and r.get(dead.busy_key) is None, timeout=5,
               what="the marks did not expire")
    assert GpuSlot(r, host, "w2", "1").enter(False, "run-other") is True
