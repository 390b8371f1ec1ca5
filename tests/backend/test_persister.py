"""The stream → store consumer against a real Redis: two backend processes share a run's stream
without losing or duplicating frames; the same code runs on SQLite and PostgreSQL."""
from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
import redis
from sqlalchemy import create_engine, func, select, text

from backend.app.persister import Persister, ensure_group
from backend.app.store import Frame, Run, make_sessionmaker
from pinwheel.protocol import stream_key

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_available() -> bool:
    try:
        with create_engine(POSTGRES_URL, connect_args={"connect_timeout": 2}).connect() as c:
            c.execute(text("select 1"))
        return True
    except Exception:
        return False


@pytest.fixture(params=["sqlite", "postgres"])
def sessions(request, tmp_path):
    if request.param == "postgres":
        if not postgres_available():
            pytest.skip("no PostgreSQL on 127.0.0.1:5432")
        return make_sessionmaker(POSTGRES_URL)
    return make_sessionmaker(f"sqlite:///{tmp_path / 'db.sqlite'}")


def frame(step: int) -> dict:
    return {"type": "frame", "data": json.dumps({"step": step, "total_steps": 100, "wall_time": step / 10,
                                                 "time": time.time(), "metrics": {"loss": 1.0 / (step + 1)},
                                                 "panels": {"filter_grid": {"count": 4}}})}


def test_two_persisters_store_every_frame_exactly_once(sessions, redis_url):
    run_id = uuid.uuid4().hex
    client = redis.Redis.from_url(redis_url)
    with sessions() as s:
        s.add(Run(id=run_id, status="queued", title="t", config={}, total_steps=100, metrics={}, environment={}))
        s.commit()
    ensure_group(client, run_id)
    persisters = [Persister(redis_url, sessions, consumer=f"backend-{i}") for i in range(2)]
    for p in persisters:
        p.start()
    for step in range(100):
        client.xadd(stream_key(run_id), frame(step))
    client.xadd(stream_key(run_id), {"type": "status", "data": json.dumps({"status": "succeeded", "time": time.time()})})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with sessions() as s:
            if s.get(Run, run_id).status == "succeeded":
                break
        time.sleep(0.1)
    for p in persisters:
        p.stop()
        p.join()
    with sessions() as s:
        steps = list(s.scalars(select(Frame.step).where(Frame.run_id == run_id).order_by(Frame.step)))
        run = s.get(Run, run_id)
    assert steps == list(range(100))
    assert run.status == "succeeded" and run.step == 99
    pending = client.xpending(stream_key(run_id), "persist")
    assert pending["pending"] == 0


def test_entries_of_a_crashed_consumer_are_claimed(sessions, redis_url):
    """A backend that read entries but died before storing them: a peer claims them after the idle time."""
    run_id = uuid.uuid4().hex
    client = redis.Redis.from_url(redis_url)
    with sessions() as s:
        s.add(Run(id=run_id, status="running", title="t", config={}, total_steps=100, metrics={}, environment={}))
        s.commit()
    ensure_group(client, run_id)
    for step in range(5):
        client.xadd(stream_key(run_id), frame(step))
    client.xreadgroup("persist", "dead-backend", {stream_key(run_id): ">"})  # read, never acknowledged
    survivor = Persister(redis_url, sessions, consumer="survivor", claim_idle_ms=0)
    survivor.poll_once()
    with sessions() as s:
        count = s.scalar(select(func.count()).select_from(Frame).where(Frame.run_id == run_id))
    assert count == 5
