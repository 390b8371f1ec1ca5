"""Folding attempts into the store: a resumed attempt supersedes what the lost one stored after
its checkpoint, late frames of a lost attempt are dropped, replays change nothing, and the run's
record lists every attempt and how it ended."""
from __future__ import annotations

import json
import time
import uuid

from sqlalchemy import select

from backend.app.persister import apply_entry
from backend.app.store import Frame, Run, make_sessionmaker


def entry(kind: str, **data) -> dict:
    return {b"type": kind.encode(), b"data": json.dumps(data).encode()}


def frame(step: int, attempt: int) -> dict:
    return entry("frame", step=step, total_steps=1000, wall_time=step / 10, time=time.time(),
                 metrics={"loss": 1.0}, panels={}, attempt=attempt)


def status(status: str, **extra) -> dict:
    return entry("status", status=status, time=time.time(), **extra)


def fold(sessions, run_id: str, entries: list[dict]) -> None:
    for i, fields in enumerate(entries):
        with sessions() as s:
            run = s.get(Run, run_id)
            fold.counter += 1
            apply_entry(s, run, f"{fold.counter}-0", fields)
            s.commit()


fold.counter = 1_000


def stored_steps(sessions, run_id: str) -> list[int]:
    with sessions() as s:
        return list(s.scalars(select(Frame.step).where(Frame.run_id == run_id).order_by(Frame.id)))


def test_a_resumed_attempt_supersedes_the_lost_tail(tmp_path):
    sessions = make_sessionmaker(f"sqlite:///{tmp_path / 'db.sqlite'}")
    run_id = uuid.uuid4().hex
    with sessions() as s:
        s.add(Run(id=run_id, status="queued", title="t", config={}, total_steps=1000, metrics={}, environment={}))
        s.commit()
    first = [status("running", attempt=1, host="a", worker="w1", resumed_from_step=None)]
    first += [frame(step, 1) for step in range(0, 100, 10)]
    lost = [status("queued", lost_attempt=1, reason="worker lost (its lease expired)")]
    second = [status("running", attempt=2, host="b", worker="w2", resumed_from_step=45)]
    late = [frame(100, 1)]  # the lost worker's last frame, folded after its successor started
    second += [frame(step, 2) for step in range(45, 120, 10)]
    fold(sessions, run_id, first + lost + second[:1] + late + second[1:] + second[:1])  # + a replayed status
    steps = stored_steps(sessions, run_id)
    assert steps == [0, 10, 20, 30, 40, 45, 55, 65, 75, 85, 95, 105, 115]
    fold(sessions, run_id, [frame(115, 2)])  # re-sent after a Redis timeout
    assert stored_steps(sessions, run_id) == steps
    fold(sessions, run_id, [status("succeeded", attempt=2)])
    with sessions() as s:
        run = s.get(Run, run_id)
        assert run.status == "succeeded" and run.frame_count == len(steps) and run.step == 115
        assert [(a["attempt"], a["host"], a["resumed_from_step"]) for a in run.attempts] == [(1, "a", None), (2, "b", 45)]
        assert "lease expired" in run.attempts[0]["ended"] and run.attempts[1]["ended"] == "succeeded"
        assert all(a["ended_at"] for a in run.attempts)


def test_a_stale_queued_status_does_not_unseat_the_newer_attempt(tmp_path):
    sessions = make_sessionmaker(f"sqlite:///{tmp_path / 'db.sqlite'}")
    run_id = uuid.uuid4().hex
    with sessions() as s:
        s.add(Run(id=run_id, status="queued", title="t", config={}, total_steps=10, metrics={}, environment={}))
        s.commit()
    fold(sessions, run_id, [status("running", attempt=1), frame(0, 1),
                            status("running", attempt=2, resumed_from_step=None, taken_over=True), frame(0, 2),
                            status("queued", lost_attempt=1, reason="late word about attempt 1")])
    with sessions() as s:
        run = s.get(Run, run_id)
        assert run.status == "running" and run.attempt == 2
        assert run.attempts[0]["ended"] == "worker lost (taken over)" and run.attempts[1]["ended"] is None
    assert stored_steps(sessions, run_id) == [0]
