"""SSE frame events and GET /api/runs/{id}/frames hand out a frame in one shape (pinwheel.protocol.Frame):
both carry `event_id` and `total_steps`, live from the stream as well as from the store."""
from __future__ import annotations

import json
import time
import uuid

import redis
from fastapi.testclient import TestClient

from backend.app.main import create_app
from backend.app.persister import ensure_group
from backend.app.settings import Settings
from backend.app.store import Frame, Run
from pinwheel.protocol import Frame as FrameEvent
from pinwheel.protocol import StatusEvent, entry, stream_key
from tests.services import ADMIN_TOKEN, auth_headers

PANELS = {"sparsity": {"units": 4, "l0_mean": 1.0}}


def sse_events(text: str) -> list[tuple[str, str, dict]]:
    out = []
    for block in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if "event" in lines:
            out.append((lines["id"], lines["event"], json.loads(lines["data"])))
    return out


def make_client(tmp_path, redis_url: str) -> TestClient:
    settings = Settings(redis_url=redis_url, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
                        artifacts_dir=tmp_path / "artifacts", persist_frames=False, run_reaper=False,
                        admin_token=ADMIN_TOKEN)
    return TestClient(create_app(settings), headers=auth_headers())


def new_run(client: TestClient, status: str, total_steps: int = 50) -> str:
    run_id = uuid.uuid4().hex
    with client.app.state.sessions() as s:
        s.add(Run(id=run_id, status=status, title="shape", config={}, step=0, total_steps=total_steps))
        s.commit()
    return run_id


def test_stored_frames_have_one_shape_on_sse_and_frames(tmp_path, redis_url):
    with make_client(tmp_path, redis_url) as client:
        run_id = new_run(client, "succeeded")
        with client.app.state.sessions() as s:
            for i, step in enumerate((0, 10)):
                s.add(Frame(run_id=run_id, event_id=f"{1000 + i}-0", step=step, wall_time=step / 10, time=1.0 + i,
                            metrics={"loss": 1.0 / (step + 1)}, panels=json.dumps(PANELS)))
            s.commit()
        page = client.get(f"/api/runs/{run_id}/frames").json()["frames"]
        stream = client.get(f"/api/runs/{run_id}/events").text  # nothing in Redis: all from the store
    events = sse_events(stream)
    frames = [data for _, kind, data in events if kind == "frame"]
    assert [f["step"] for f in frames] == [0, 10] and [f["step"] for f in page] == [0, 10]
    assert frames == page  # field for field
    assert set(page[0]) == set(FrameEvent.model_fields)
    assert [f["event_id"] for f in page] == ["1000-0", "1001-0"] and page[0]["total_steps"] == 50
    assert [i for i, kind, _ in events if kind == "frame"] == ["1000-0", "1001-0"]  # SSE id = event_id
    assert events[-1][1] == "status" and events[-1][2]["status"] == "succeeded"

    with make_client(tmp_path, redis_url) as client:  # without panels: the same fields less `panels`
        lean = client.get(f"/api/runs/{run_id}/frames", params={"panels": False}).json()["frames"]
    assert lean == [{k: v for k, v in f.items() if k != "panels"} for f in page]


def test_live_frames_have_the_same_shape(tmp_path, redis_url):
    with make_client(tmp_path, redis_url) as client:
        run_id = new_run(client, "running", total_steps=20)
        r = redis.Redis.from_url(redis_url)
        ensure_group(r, run_id)
        frame = FrameEvent(step=5, total_steps=20, wall_time=0.5, time=time.time(), attempt=1,
                           metrics={"loss": 0.25}, panels=PANELS)
        frame_id = r.xadd(stream_key(run_id), entry(frame)).decode()
        r.xadd(stream_key(run_id), entry(StatusEvent(status="succeeded", time=time.time(), attempt=1)))
        stream = client.get(f"/api/runs/{run_id}/events").text
    events = sse_events(stream)
    (eid, kind, data), (_, last, status) = events
    assert kind == "frame" and eid == frame_id
    assert data == {**frame.model_dump(), "event_id": frame_id}
    assert set(data) == set(FrameEvent.model_fields)
    assert last == "status" and status == {"status": "succeeded", "time": status["time"], "attempt": 1}
