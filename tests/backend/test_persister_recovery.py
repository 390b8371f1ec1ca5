"""The persister loses no entry to a Redis outage or a restarted web process: an entry delivered to
it whose reply was lost, or one a dead peer read and never stored, is stored once Redis is back or
once the peer's entries have been idle long enough."""
from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid

import redis
from sqlalchemy import select

from backend.app.persister import Persister, ensure_group
from backend.app.store import Frame, Run, make_sessionmaker
from pinwheel.protocol import stream_key
from tests import services


def frame(step: int) -> dict:
    return {"type": "frame", "data": json.dumps({"step": step, "total_steps": 100, "wall_time": step, "time": time.time(),
                                                 "metrics": {}, "panels": {}})}


def stored(sessions, run_id: str) -> list[int]:
    with sessions() as s:
        return list(s.scalars(select(Frame.step).where(Frame.run_id == run_id).order_by(Frame.step)))


def new_run(sessions) -> str:
    run_id = uuid.uuid4().hex
    with sessions() as s:
        s.add(Run(id=run_id, status="running", title="t", config={}, total_steps=100, metrics={}, environment={}))
        s.commit()
    return run_id


def test_a_dead_peers_entries_are_claimed_once_idle_even_after_the_first_look(tmp_path, redis_url):
    sessions = make_sessionmaker(f"sqlite:///{tmp_path / 'db.sqlite'}")
    run_id, client = new_run(sessions), redis.Redis.from_url(redis_url)
    ensure_group(client, run_id)
    for step in range(3):
        client.xadd(stream_key(run_id), frame(step))
    client.xreadgroup("persist", "web-that-was-restarted", {stream_key(run_id): ">"})  # read, never stored
    persister = Persister(redis_url, sessions, consumer="new-web", claim_idle_ms=1500)
    persister.start()  # its first look comes before the entries are idle long enough to take
    try:
        services.wait_until(lambda: stored(sessions, run_id) == [0, 1, 2], 20, "the peer's entries stored")
    finally:
        persister.stop()
        persister.join()


def test_an_entry_whose_delivery_was_lost_in_a_redis_outage_is_stored(tmp_path):
    port = services.free_port()
    url = f"redis://127.0.0.1:{port}/0"
    cmd = [services.redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path),
           "--appendonly", "yes", "--appendfsync", "always", "--save", ""]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    services.wait_until(lambda: redis.Redis.from_url(url).ping(), 20, "redis")
    sessions = make_sessionmaker(f"sqlite:///{tmp_path / 'db.sqlite'}")
    run_id, client = new_run(sessions), redis.Redis.from_url(url)
    ensure_group(client, run_id)
    persister = Persister(url, sessions, consumer="web-1", claim_idle_ms=600_000)
    persister.start()
    try:
        client.xadd(stream_key(run_id), frame(0))
        services.wait_until(lambda: stored(sessions, run_id) == [0], 20, "the first frame")
        persister.stop()  # pause it: the next entry is delivered to it but the reply never arrives
        persister.join()
        client.xadd(stream_key(run_id), frame(1))
        client.xreadgroup("persist", "web-1", {stream_key(run_id): ">"})
        persister = Persister(url, sessions, consumer="web-1", claim_idle_ms=600_000)
        persister._pending_checked[run_id] = time.monotonic()  # as a persister that has looked already
        persister.start()
        server.send_signal(signal.SIGKILL)  # the outage
        server.wait()
        time.sleep(1.0)
        server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        services.wait_until(lambda: stored(sessions, run_id) == [0, 1], 30, "the lost delivery stored")
    finally:
        persister.stop()
        persister.join()
        server.send_signal(signal.SIGKILL)
        server.wait()


def test_the_apps_own_frame_keeping_settings_thin_its_runs(tmp_path, redis_url):
    """create_app(Settings(frames_keep=…)) is obeyed by its persister (it read the global settings)."""
    from fastapi.testclient import TestClient

    from backend.app.main import create_app
    from backend.app.settings import Settings

    settings = Settings(redis_url=redis_url, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
                        frames_keep=3, frames_keep_recent=1, run_reaper=False)
    app = create_app(settings)
    with TestClient(app):  # the lifespan starts the persister
        run_id, client = new_run(app.state.sessions), redis.Redis.from_url(redis_url)
        ensure_group(client, run_id)
        for step in range(20):
            client.xadd(stream_key(run_id), frame(step))
        # the persister commits a batch, then thins it in a second commit: wait for the second
        done = lambda: (s := stored(app.state.sessions, run_id)) and s[-1] == 19 and len(s) <= 2 * 3  # noqa: E731
        services.wait_until(done, 30, "the frames stored and thinned")
        steps = stored(app.state.sessions, run_id)
    assert len(steps) <= 2 * 3 and steps[0] == 0 and steps[-1] == 19, steps  # thinned to the app's own limit
