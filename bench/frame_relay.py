"""The web process's CPU per frame of a run — stored once (persister) and relayed to each viewer (SSE) —
with frames built from pinwheel.protocol's models (issue 16) against the string splicing and stdlib
json it replaced, side by side in one run, for 1, 20 and 100 viewers of one run.

A real frame: the topographic preset's panels (filter atlas, reconstructions, sparsity, group
activations, orientation map) at its first step. Two paths, as backend/app/routers/events.py has them:
- live: a stream entry (bytes from Redis) → an SSE event. Before: the entry's JSON passed through as
  it was (no `event_id` in it). Now: parsed into a protocol.Frame, `event_id` set, written out once per
  process (EncodedFrames) and shared by every viewer of the run;
- store: a stored row → an SSE event. Before: json.dumps of the head, the stored panels text spliced
  in, per viewer. Now: the row → protocol.Frame (panels parsed) → JSON, once per process.
Each viewer gets its own copy of the entry (as each XREAD hands one back). The persister folds each
entry once: before, json.loads of the entry and json.dumps of its panels; now, protocol.read_entry and
protocol.panels_json (pydantic's parser and encoder).

    PYTHONPATH=. .venv/bin/python bench/frame_relay.py
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

from backend.app.routers.events import EncodedFrames, sse
from backend.app.store import Frame as FrameRow
from backend.app.store import frame_event
from pinwheel import protocol
from pinwheel.configs import RunConfig, deep_merge, preset_by_id
from pinwheel.data import build_dataset
from pinwheel.models import build_model
from pinwheel.panels import produce_panels

OUT = Path(__file__).parent / "results" / "frame_relay.json"
VIEWERS = (1, 20, 100)


def real_frame() -> protocol.Frame:
    torch.set_num_threads(1)
    cfg = RunConfig.model_validate(deep_merge(preset_by_id("topographic-natural")["config"], {"data": {"pool_size": 2000}}))
    generator = torch.Generator().manual_seed(0)
    dataset = build_dataset(cfg.data, 0, None)
    model = build_model(cfg.model, dataset, generator)
    x, y = dataset.probe(256)
    panels = produce_panels(model, x, y, step=0, fresh=True)
    return protocol.Frame(step=100, total_steps=cfg.train.steps, wall_time=1.5, time=time.time(), attempt=1,
                          metrics={"loss": 41.2, "reconstruction": 33.1, "group_sparsity": 26.9, "active_fraction": 0.05},
                          panels=panels)


# --- the relay before issue 16 (backend/app/routers/events.py at 61de607) ------------------------------
def old_live(fields: dict, event_id: str) -> str:
    kind, data = fields[b"type"].decode(), fields[b"data"].decode()
    return sse(event_id, kind, data)


def old_store(row: FrameRow, total_steps: int) -> str:
    head = json.dumps({"step": row.step, "total_steps": total_steps, "wall_time": row.wall_time,
                       "time": row.time, "metrics": row.metrics})
    return sse(row.event_id, "frame", head[:-1] + f', "panels": {row.panels}}}')


def old_persist(fields: dict) -> str:
    data = json.loads(fields[b"data"])
    return json.dumps(data["panels"])


def new_persist(fields: dict) -> str:
    return protocol.panels_json(protocol.read_entry(fields).panels)


# --- the relay now ------------------------------------------------------------------------------------
def new_live(cache: EncodedFrames, fields: dict, event_id: str) -> str:
    return cache.get("run", event_id, lambda: sse(event_id, "frame",
                                                   protocol.reader_json(protocol.read_entry(fields, event_id))))


def new_store(cache: EncodedFrames, row: FrameRow, total_steps: int) -> str:
    return cache.get("run", row.event_id, lambda: sse(row.event_id, "frame",
                                                       protocol.reader_json(frame_event(row, total_steps))))


_next_id = iter(range(1, 10**9))  # every frame of every repetition a new stream entry


def per_frame_us(relay, frames: int, viewers: int) -> float:
    """CPU µs the web process spends to hand `frames` new frames to `viewers` viewers, per frame."""
    start = time.process_time()
    for _ in range(frames):
        i = next(_next_id)
        for _ in range(viewers):
            relay(i)
    return (time.process_time() - start) / frames * 1e6


def main() -> None:
    frame = real_frame()
    fields = {k.encode(): v.encode() for k, v in protocol.entry(frame).items()}
    data = fields[b"data"]
    row = FrameRow(run_id="run", event_id="0-0", step=frame.step, wall_time=frame.wall_time, time=frame.time,
                   metrics=frame.metrics, panels=protocol.panels_json(frame.panels))
    frames = 200
    results = {"frame_bytes": len(data), "frames": frames, "load": os.getloadavg()[0], "viewers": {}}
    persist = {}
    for name, fold in (("persist_before", old_persist), ("persist_now", new_persist)):
        fold(fields)
        persist[name] = round(min(per_frame_us(lambda i: fold(fields), 50, 1) for _ in range(3)), 1)
    results["persist_us_per_frame"] = persist
    print(f"persist: {persist['persist_before']:.0f} → {persist['persist_now']:.0f} µs/frame")
    for viewers in VIEWERS:
        caches = {"live": EncodedFrames(), "store": EncodedFrames()}
        # each frame a distinct entry id, each viewer its own copy of the entry's bytes
        live_old = lambda i: old_live({b"type": b"frame", b"data": bytes(data)}, f"{i}-0")  # noqa: E731
        live_new = lambda i: new_live(caches["live"], {b"type": b"frame", b"data": bytes(data)}, f"{i}-0")  # noqa: E731

        def store_old(i):
            row.event_id = f"{i}-0"
            return old_store(row, frame.total_steps)

        def store_new(i):
            row.event_id = f"{i}-0"
            return new_store(caches["store"], row, frame.total_steps)

        measured = {}
        for name, relay in (("live_before", live_old), ("live_now", live_new), ("store_before", store_old),
                            ("store_now", store_new)):
            relay(next(_next_id))  # warm
            measured[name] = round(min(per_frame_us(relay, frames // (1 + viewers // 20), viewers) for _ in range(3)), 1)
        measured["store_ratio_now_over_before"] = round(measured["store_now"] / measured["store_before"], 2)
        # a live frame costs the web process its persisting plus its relaying to every viewer
        before = persist["persist_before"] + measured["live_before"]
        now = persist["persist_now"] + measured["live_now"]
        measured["web_cpu_live_before"], measured["web_cpu_live_now"] = round(before, 1), round(now, 1)
        measured["web_cpu_live_ratio_now_over_before"] = round(now / before, 2)
        results["viewers"][str(viewers)] = measured
        print(f"{viewers:4d} viewers: live relay {measured['live_before']:8.1f} → {measured['live_now']:8.1f}; "
              f"persist + live relay {before:8.1f} → {now:8.1f} µs/frame ({measured['web_cpu_live_ratio_now_over_before']}×); "
              f"store replay {measured['store_before']:8.1f} → {measured['store_now']:8.1f} "
              f"({measured['store_ratio_now_over_before']}×)")
    new_event = json.loads(new_live(EncodedFrames(), fields, "5-0").split("data: ", 1)[1])
    assert new_event["event_id"] == "5-0" and new_event["total_steps"] == frame.total_steps
    results["frame_fields_now"] = sorted(new_event)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"frame {len(data)} bytes; load {results['load']:.1f}; wrote {OUT}")


if __name__ == "__main__":
    main()
