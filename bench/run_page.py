"""The run page's numbers (issue #5), printed and written to bench/results/run_page.json:

1. worker step → pixels on screen: a real run of the 256-unit topographic preset (12×12 filters)
   publishing 5 frames/s; the page records when its filter canvas drew each frame, the frame
   carries the worker's `time`; p50/p95 of the difference (one machine, one clock).
2. scrubbing: a 2,000-frame run (real panel payloads of that model, stored directly) — jump the
   timeline to random steps and time until every panel has drawn that step; p50/p95.
3. streaming cost on the training loop: one training run whose segments alternate between
   streaming off, streaming as pinwheel.train does it (snapshot on the loop, panels + JSON + XADD
   to Redis on the FrameStreamer thread) and the old inline way, 5 frames/s; ratios of steps/s
   on to off. Stored under `streaming`, or `streaming_omp_num_threads_1` when run with
   OMP_NUM_THREADS=1 (one torch thread; the other core is free for the streamer).
4. payload bytes per frame (the JSON of all panels, and of filter_grid alone) of the run in 1.

    PYTHONPATH=. python bench/run_page.py [--seconds 20] [--scrubs 60] [--streaming-only]

--streaming-only runs part 3 alone and updates that entry of the results file; --page-only runs
parts 1, 2 and 4 (the page's own numbers, what a frontend change moves) and keeps part 3's entry.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import redis
import torch
from playwright.sync_api import sync_playwright

from pinwheel.configs import RunConfig, deep_merge, preset_by_id
from pinwheel.data import build_dataset
from pinwheel.models import build_model
from pinwheel.panels import produce_panels
from pinwheel.train import FrameStreamer
from tests import services
from tests.conftest import CHROMIUM_ARGS

OUT = Path(__file__).parent / "results" / "run_page.json"
KINDS_JS = "['filter_grid','group_activations','topographic_map','reconstructions','sparsity']"


def pct(values, q) -> float:
    return round(float(np.percentile(values, q)), 1) if len(values) else float("nan")


def login(page, url: str) -> None:
    page.goto(f"{url}/#/login?token={services.ADMIN_TOKEN}")
    page.wait_for_function("() => !!localStorage.getItem('pinwheel.token')", timeout=15_000)


def live_latency(page, client: httpx.Client, url: str, seconds: float) -> dict:
    cfg = {"train": {"steps": 10_000_000, "frame_every_steps": 1_000_000, "frame_every_seconds": 0.2}}
    run = client.post("/api/runs", json={"preset": "topographic-natural", "config": cfg}).json()
    page.goto(f"{url}/#/runs/{run['id']}")
    page.wait_for_function("() => (window.__pinwheelDraws || []).length >= 3", timeout=120_000)
    page.evaluate("() => window.__pinwheelDraws.splice(0)")  # start counting once warm
    time.sleep(seconds)
    draws = page.evaluate("() => window.__pinwheelDraws.slice()")
    client.post(f"/api/runs/{run['id']}/cancel")
    lat = [1000 * (d["drawn"] - d["time"]) for d in draws if d.get("time")]
    frames = client.get(f"/api/runs/{run['id']}/frames", params={"limit": 200}).json()["frames"]
    sizes = [len(json.dumps(f["panels"])) for f in frames[1:]]
    fg = [len(json.dumps(f["panels"]["filter_grid"])) for f in frames[1:]]
    per_kind = {k: int(np.mean([len(json.dumps(f["panels"][k])) for f in frames[1:]])) for k in frames[-1]["panels"]}
    return {"run_id": run["id"], "frames_drawn": len(lat), "frames_per_s": round(len(lat) / seconds, 2),
            "latency_ms_p50": pct(lat, 50), "latency_ms_p95": pct(lat, 95), "latency_ms_max": pct(lat, 100),
            "payload_bytes_mean": int(np.mean(sizes)), "payload_bytes_p95": int(np.percentile(sizes, 95)),
            "filter_grid_bytes_mean": int(np.mean(fg)), "filter_grid_bytes_p95": int(np.percentile(fg, 95)),
            "payload_bytes_by_kind": per_kind, "frames_measured": len(sizes)}


def model_payloads(n_states: int = 8) -> list[dict]:
    """Panel payloads of the 256-unit topographic model at a few training states (real sizes)."""
    cfg = RunConfig.model_validate(deep_merge(preset_by_id("topographic-natural")["config"], {"data": {"pool_size": 5000}}))
    ds = build_dataset(cfg.data, 0)
    g = torch.Generator().manual_seed(0)
    model = build_model(cfg.model, ds, g)
    opt = model.make_optimizer(cfg.train.lr)
    probe = ds.probe(256)[0]
    out = []
    for s in range(n_states):
        for step in range(40):
            x, y = ds.batch(128, g)
            model.train_step(x, y, s * 40 + step, opt)
        model.eval()
        with torch.no_grad():
            out.append(produce_panels(model, probe))
        model.train()
    return out


def seed_long_run(db_path: Path, frames: int) -> str:
    from backend.app.store import Frame, Run, make_sessionmaker

    sessions = make_sessionmaker(f"sqlite:///{db_path}")
    payloads = [json.dumps(p) for p in model_payloads()]
    run_id = "b" * 32
    with sessions() as s:
        s.add(Run(id=run_id, status="succeeded", title="2,000-frame run (bench)", preset="topographic-natural",
                  config={"model": {"kind": "group_sparse", "units": 256}, "data": {"kind": "natural_patches"}},
                  step=25 * (frames - 1), total_steps=25 * (frames - 1), metrics={}, environment={}, frame_count=frames))
        s.flush()
        for i in range(frames):
            s.add(Frame(run_id=run_id, event_id=f"{i + 1}-0", step=25 * i, wall_time=i * 0.2, time=1e9 + i * 0.2,
                        metrics={"loss": 5.0 / (1 + i / 100), "reconstruction": 4.0 / (1 + i / 100)},
                        panels=payloads[i * len(payloads) // frames]))
        s.commit()
    return run_id


def scrubbing(page, url: str, run_id: str, scrubs: int) -> dict:
    page.goto(f"{url}/#/runs/{run_id}")
    page.wait_for_function("() => +document.querySelector('canvas[data-panel=filter_grid]')?.dataset.drawnStep >= 0",
                           timeout=60_000)
    n = int(page.locator("#timeline").get_attribute("max")) + 1
    rng = random.Random(0)
    times = []
    for _ in range(scrubs):
        i = rng.randrange(n)
        ms = page.evaluate("""async i => {
            const kinds = %s, slider = document.querySelector('#timeline');
            const step = 25 * i, t0 = performance.now();
            const done = kinds.map(k => new Promise(res => {
                const c = document.querySelector(`canvas[data-panel=${k}]`);
                if (+c.dataset.drawnStep === step) return res();
                const on = ev => { if (ev.detail.step === step) { c.removeEventListener('drawn', on); res(); } };
                c.addEventListener('drawn', on);
            }));
            slider.value = i; slider.dispatchEvent(new Event('input'));
            await Promise.all(done);
            await new Promise(r => requestAnimationFrame(() => r()));  // painted
            return performance.now() - t0; }""" % KINDS_JS, i)
        times.append(ms)
    return {"frames": n, "scrubs": scrubs, "scrub_ms_p50": pct(times, 50), "scrub_ms_p95": pct(times, 95),
            "scrub_ms_max": pct(times, 100)}


class _Publisher:
    """The worker's frame callbacks, minus the run bookkeeping: JSON-encode and XADD each frame."""

    def __init__(self, client):
        self.client, self.frames = client, 0

    def on_frame(self, frame: dict) -> None:
        self.client.xadd("bench:stream", {"type": "frame", "data": json.dumps(frame)}, maxlen=100, approximate=True)
        self.frames += 1

    def should_stop(self) -> bool:
        return False

    def on_checkpoint(self, state: dict, weights: dict) -> None:
        raise AssertionError("the bench never checkpoints")


def streaming_cost(redis_url: str, rounds: int = 10, segment_steps: int = 150) -> dict:
    """One training run whose segments are: streaming off; streaming as pinwheel.train does it (a
    snapshot + queue put on the loop, panels and publishing on the FrameStreamer thread); and the
    old inline way (panels produced, JSON-encoded and XADDed by the loop itself), each at 5 frames/s.
    Order off, bg, inline, inline, bg, off per round, to cancel drift; a round's ratio compares its
    own segments (neighbours in time), and the median over rounds is reported with its quartiles,
    as other work on the machine moves single segments by ±10%. A streaming segment ends by waiting
    for its last frame to be published, inside its timing (its whole cost stays in it)."""
    cfg = RunConfig.model_validate(deep_merge(preset_by_id("topographic-natural")["config"], {"data": {"pool_size": 5000}}))
    ds = build_dataset(cfg.data, 0)
    g = torch.Generator().manual_seed(0)
    model = build_model(cfg.model, ds, g)
    opt = model.make_optimizer(cfg.train.lr)
    probe = ds.probe(256)[0]
    publisher = _Publisher(redis.Redis.from_url(redis_url))
    streamer = FrameStreamer(model, probe, None, publisher)
    for step in range(200):  # warm-up, not timed: first steps run slow (allocations, caches)
        x, y = ds.batch(cfg.train.batch_size, g)
        model.train_step(x, y, step, opt)
    step = 200
    ratios: dict[str, list[float]] = {"background": [], "inline": []}
    rates: dict[str, list[float]] = {"off": [], "background": [], "inline": []}
    loop_ms: dict[str, list[float]] = {"background": [], "inline": []}  # what one frame costs the loop
    frames = {"background": 0, "inline": 0}
    inline_cpu = 0.0
    try:
        for _ in range(rounds):
            rate: dict[str, list[float]] = {"off": [], "background": [], "inline": []}
            for mode in ["off", "background", "inline", "inline", "background", "off"]:
                last = t0 = time.perf_counter()
                for _ in range(segment_steps):
                    x, y = ds.batch(cfg.train.batch_size, g)
                    model.train_step(x, y, step, opt)
                    step += 1
                    now = time.perf_counter()
                    if mode != "off" and now - last >= 0.2:  # 5 frames/s, as the worker publishes them
                        if mode == "background":
                            head = {"step": step, "total_steps": 0, "wall_time": 0.0, "metrics": {}}
                            streamer.submit(head, streamer.snapshot(model, opt, g, step, 0.0), fresh=False)
                        else:
                            cpu = time.thread_time()
                            model.eval()
                            with torch.no_grad():
                                panels = produce_panels(model, probe, step=step)  # slow kinds reused, as the worker
                            model.train()
                            publisher.on_frame({"step": step, "time": time.time(), "metrics": {}, "panels": panels})
                            inline_cpu += time.thread_time() - cpu
                        frames[mode] += 1
                        last = time.perf_counter()
                        loop_ms[mode].append(1000 * (last - now))
                if mode == "background":
                    streamer.drain()
                rate[mode].append(segment_steps / (time.perf_counter() - t0))
            for mode in ratios:
                ratios[mode].append(float(np.mean(rate[mode]) / np.mean(rate["off"])))
            for mode in rates:
                rates[mode] += rate[mode]
    finally:
        streamer.close()
    out = {"load_average_1min": round(os.getloadavg()[0], 2), "torch_threads": torch.get_num_threads(), "batch_size": cfg.train.batch_size, "rounds": rounds,
           "segment_steps": segment_steps, "steps_per_s_not_streaming": round(float(np.mean(rates["off"])), 2)}
    for mode, name in (("background", "streaming"), ("inline", "inline_streaming")):
        r = ratios[mode]
        out[f"steps_per_s_{name}"] = round(float(np.mean(rates[mode])), 2)
        out[f"{name}_throughput_ratio_on_off"] = round(float(np.median(r)), 4)
        out[f"{name}_ratio_quartiles"] = [round(float(np.percentile(r, 25)), 4), round(float(np.percentile(r, 75)), 4)]
        out[f"{name}_cost_percent"] = round(100 * (1 - float(np.median(r))), 2)
        out[f"{name}_loop_ms_per_frame_p50"] = pct(loop_ms[mode], 50)
        out[f"{name}_frames"] = frames[mode]
    out["streaming_thread_cpu_ms_per_frame"] = round(1000 * streamer.cpu_seconds / max(streamer.delivered, 1), 1)
    out["inline_cpu_ms_per_frame"] = round(1000 * inline_cpu / max(frames["inline"], 1), 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--scrubs", type=int, default=60)
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--streaming-only", action="store_true")
    parser.add_argument("--page-only", action="store_true")
    args = parser.parse_args()
    key = "streaming_omp_num_threads_1" if os.environ.get("OMP_NUM_THREADS") == "1" else "streaming"
    if args.streaming_only:
        tmp = Path(tempfile.mkdtemp(prefix="pinwheel-bench-"))
        redis_proc, redis_url = services.start_redis(tmp / "redis")
        try:
            streaming = streaming_cost(redis_url)
        finally:
            services.stop(redis_proc)
            shutil.rmtree(tmp, ignore_errors=True)
        result = json.loads(OUT.read_text()) if OUT.exists() else {}
        result[key] = streaming
        OUT.write_text(json.dumps(result, indent=2) + "\n")
        print(key, json.dumps(streaming, indent=2))
        return
    tmp = Path(tempfile.mkdtemp(prefix="pinwheel-bench-"))
    redis_proc, redis_url = services.start_redis(tmp / "redis")
    env = services.service_env(redis_url, tmp)
    result: dict = {"machine": "2 shared CPU cores, headless Chromium (--disable-gpu)"}
    if args.page_only and OUT.exists():  # the training loop's streaming cost, measured before, kept
        result.update({k: v for k, v in json.loads(OUT.read_text()).items() if k.startswith("streaming")})
    try:
        run_id = seed_long_run(tmp / "pinwheel.db", args.frames)
        worker = services.start_worker(env, tmp / "worker.log")
        app, url = services.start_app(env, tmp / "app.log")
        try:
            with sync_playwright() as p, httpx.Client(base_url=url, timeout=60, headers=services.auth_headers()) as client:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                login(page, url)
                result["scrub"] = scrubbing(page, url, run_id, args.scrubs)
                print("scrub", result["scrub"], flush=True)
                result["live"] = live_latency(page, client, url, args.seconds)
                result["load_average_1min"] = round(os.getloadavg()[0], 2)
                print("live", result["live"], flush=True)
                browser.close()
        finally:
            services.stop(app)
            services.stop(worker)
        if not args.page_only:
            result[key] = streaming_cost(redis_url)
            print(key, result[key], flush=True)
    finally:
        services.stop(redis_proc)
        shutil.rmtree(tmp, ignore_errors=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
