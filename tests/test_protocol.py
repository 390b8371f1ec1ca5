"""The event contract (pinwheel/protocol.py): what producers write is what readers parse, malformed
events are refused naming the field, and readers hand frames out in one shape."""
from __future__ import annotations

import json

import pytest

from pinwheel import protocol
from pinwheel.protocol import Frame, MalformedEvent, StatusEvent, entry, parse_event, read_entry, reader_json

PANELS = {"filter_grid": {"atlas_png": "iVBORw0KGgo=", "count": 4, "tile": [8, 8], "pad": 1, "size": [19, 19],
                          "layout": {"type": "grid", "rows": 2, "cols": 2}},
          "sparsity": {"units": 4, "l0_mean": 1.5, "abs_hist": {"edges": [0.0, 0.5, 1.0], "counts": [3, 1]}}}


def a_frame(**changes) -> Frame:
    fields = dict(step=10, total_steps=100, wall_time=1.25, time=1_700_000_000.5,
                  metrics={"loss": 0.5, "active_fraction": 0.05}, panels=PANELS)
    return Frame(**{**fields, **changes})


def redis_fields(fields: dict[str, str]) -> dict[bytes, bytes]:
    """As redis-py hands an entry back."""
    return {k.encode(): v.encode() for k, v in fields.items()}


def test_a_frame_round_trips_through_a_stream_entry():
    frame = a_frame(attempt=2)
    fields = entry(frame)
    assert fields["type"] == "frame"
    back = read_entry(redis_fields(fields), b"1700000000500-3")
    assert isinstance(back, Frame)
    assert back.model_dump(exclude={"event_id"}) == frame.model_dump(exclude={"event_id"})
    assert back.event_id == "1700000000500-3"
    # producers never write the entry id into the entry, nor fields they did not set
    assert "event_id" not in json.loads(fields["data"])
    assert "attempt" not in json.loads(entry(a_frame())["data"])


def test_a_status_event_round_trips_with_exactly_the_fields_its_producer_set():
    event = StatusEvent(status="running", time=5.0, attempt=2, host="gpu-1", resumed_from_step=None,
                        environment={"device": "cpu"})
    data = json.loads(entry(event)["data"])
    assert data == {"status": "running", "time": 5.0, "attempt": 2, "host": "gpu-1", "resumed_from_step": None,
                    "environment": {"device": "cpu"}}
    back = read_entry(redis_fields(entry(event)))
    assert back == event and not back.terminal
    assert json.loads(reader_json(back)) == data
    assert read_entry({"type": "status", "data": '{"status": "failed", "time": 1, "error": "x"}'}).terminal


def test_readers_hand_a_frame_out_with_every_field():
    out = json.loads(reader_json(read_entry(redis_fields(entry(a_frame())), "7-0")))
    assert set(out) == set(Frame.model_fields)
    assert out["event_id"] == "7-0" and out["total_steps"] == 100 and out["attempt"] is None
    assert out["panels"] == PANELS


@pytest.mark.parametrize("data, field", [
    ({"total_steps": 1, "wall_time": 0, "time": 0, "metrics": {}}, "frame.step"),
    ({"step": -1, "total_steps": 1, "wall_time": 0, "time": 0, "metrics": {}}, "frame.step"),
    ({"step": 1, "total_steps": 1, "wall_time": 0, "time": 0, "metrics": {"loss": "low"}}, "frame.metrics.loss"),
    ({"step": 1, "total_steps": 1, "wall_time": 0, "time": 0, "metrics": {}, "panels": {"filter_grid": 3}},
     "frame.panels.filter_grid"),
    ({"step": 1, "total_steps": 1, "wall_time": 0, "time": 0, "metrics": {}, "stepz": 2}, "frame.stepz"),
    ({"step": 1, "wall_time": 0, "time": 0, "metrics": {}}, "frame.total_steps"),
])
def test_a_malformed_frame_is_refused_naming_the_field(data, field):
    with pytest.raises(MalformedEvent) as err:
        read_entry({b"type": b"frame", b"data": json.dumps(data).encode()})
    assert str(err.value).startswith(field + ":")


def test_a_malformed_status_or_entry_is_refused_naming_the_field():
    with pytest.raises(MalformedEvent, match=r"^status\.status: Input should be 'queued'"):
        parse_event("status", {"status": "paused", "time": 1})
    with pytest.raises(MalformedEvent, match=r"^status\.time: Field required"):
        parse_event("status", '{"status": "queued"}')
    with pytest.raises(MalformedEvent, match=r"status\.attempt"):
        parse_event("status", {"status": "queued", "time": 1, "attempt": "second"})
    with pytest.raises(MalformedEvent, match=r"^type: 'checkpoint'"):
        read_entry({"type": "checkpoint", "data": "{}"})
    with pytest.raises(MalformedEvent, match=r"^entry: needs both"):
        read_entry({b"type": b"frame"})
    with pytest.raises(MalformedEvent, match=r"^frame\.\(root\): Invalid JSON"):
        read_entry({b"type": b"frame", b"data": b"{not json"})


def test_a_non_finite_metric_goes_out_as_null():
    """JSON has no NaN: a reader's JSON.parse would refuse the whole frame."""
    out = json.loads(reader_json(a_frame(metrics={"loss": float("nan")})))
    assert out["metrics"] == {"loss": None}


def test_statuses_and_keys():
    assert set(protocol.ACTIVE_STATUSES).isdisjoint(protocol.TERMINAL_STATUSES)
    assert set(protocol.ACTIVE_STATUSES) | set(protocol.TERMINAL_STATUSES) == set(protocol.Status.__args__)
    run_id = "0123456789abcdef0123456789abcdef"
    keys = [protocol.stream_key(run_id), protocol.cancel_key(run_id), protocol.exec_key(run_id),
            protocol.lease_key(run_id), protocol.external_alive_key(run_id), protocol.external_ending_key(run_id)]
    assert len(set(keys)) == len(keys)
    assert all(protocol.run_id_of_key(k) == run_id for k in keys)
    assert protocol.run_id_of_key(protocol.lease_key(run_id).encode()) == run_id
    import fnmatch
    assert fnmatch.fnmatch(protocol.lease_key(run_id), protocol.LEASE_KEY_PATTERN)
    assert not fnmatch.fnmatch(protocol.exec_key(run_id), protocol.LEASE_KEY_PATTERN)
