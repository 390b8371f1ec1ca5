"""Lab-scale benchmark on real processes (Redis, web, Celery workers), one machine.

1. Viewers: N concurrent SSE viewers of one live run on ONE web process (N = 20, 100, 300): frames
   lost per viewer (every viewer must get every frame), worker timestamp → received p50/p95, the web
   process's CPU, and the latency of other API calls meanwhile.
2. Dispatch: launch → running on idle workers (p50/p95 over 12 short runs spread over 3 worker
   processes), how many each worker took, and whether all finished.
Prints a table and writes bench/results/cluster.json.

    .venv/bin/python bench/cluster.py [--viewers 20 100 300]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import services  # noqa: E402
from tests.conftest import TINY_RUN  # noqa: E402

HEAD = re.compile(r'"step": (?P<step>\d+).*?"time": (?P<time>[\d.]+)')
LIVE_RUN = {"preset": TINY_RUN["preset"], "config": {**TINY_RUN["config"], "train": {
    **TINY_RUN["config"]["train"], "steps": 400_000, "frame_every_steps": 10_000, "frame_every_seconds": 0.5}}}
SHORT_RUN = {"preset": TINY_RUN["preset"], "config": {**TINY_RUN["config"], "train": {
    **TINY_RUN["config"]["train"], "steps": 100}}}


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def viewer(url: str, run_id: str, after: str, stop: asyncio.Event, got: list, ready: list) -> None:
    headers = services.auth_headers()
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=httpx.Timeout(30, read=60)) as c:
        async with c.stream("GET", f"/api/runs/{run_id}/events", params={"after": after}) as res:
            ready.append(res.status_code)
            kind = None
            async for line in res.aiter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind == "frame":
                    # the head only (step and worker time come first): parsing ~50 KB of panels in
                    # 300 viewers would make this client, not the server, the thing measured
                    head = HEAD.search(line, 0, 400)
                    got.append((int(head["step"]), float(head["time"]), time.time()))
                if stop.is_set():
                    return


def api_probe(url: str, run_id: str, seconds: float) -> list[float]:
    out, t0 = [], time.monotonic()
    with httpx.Client(base_url=url, headers=services.auth_headers(), timeout=30) as c:
        while time.monotonic() - t0 < seconds:
            s = time.monotonic()
            c.get(f"/api/runs/{run_id}")
            out.append(time.monotonic() - s)
            time.sleep(0.5)
    return out


async def viewers_here(url: str, run_id: str, after: str, n: int, start_at: float, seconds: float) -> list[list]:
    """n viewers in this process: connect, then read until `seconds` after start_at (wall clock)."""
    stop = asyncio.Event()
    results: list[list] = [[] for _ in range(n)]
    ready: list[int] = []
    tasks = [asyncio.create_task(viewer(url, run_id, after, stop, results[i], ready)) for i in range(n)]
    await asyncio.sleep(max(0.0, start_at + seconds - time.time()))
    stop.set()
    await asyncio.sleep(1.5)  # the next frame wakes every viewer, which then returns
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return [[len(ready)], *results]


def viewer_process(args: tuple) -> list[list]:
    return asyncio.run(viewers_here(*args))


def watch(url: str, run_id: str, n: int, seconds: float, web_pid: int, processes: int = 4) -> dict:
    """n viewers spread over client processes (one Python process cannot read 300 streams of ~50 KB
    frames without becoming the bottleneck it is meant to measure), API calls from another."""
    after = httpx.get(f"{url}/api/runs/{run_id}", headers=services.auth_headers()).json()["last_event_id"]
    settle = 10.0 + n / 30  # time for every viewer to connect before the measured window opens
    wall0 = time.time() + settle
    shares = [n // processes + (i < n % processes) for i in range(processes)]
    with multiprocessing.Pool(processes + 1) as pool:
        parts = [pool.apply_async(viewer_process, ((url, run_id, after, k, wall0, seconds),)) for k in shares if k]
        time.sleep(settle)
        cpu0, t0 = cpu_seconds(web_pid), time.monotonic()
        api_latency = pool.apply(api_probe, (url, run_id, seconds))
        web_cpu = (cpu_seconds(web_pid) - cpu0) / (time.monotonic() - t0)
        outs = [p.get(timeout=seconds + settle + 120) for p in parts]
    wall1 = wall0 + seconds
    connected = sum(o[0][0] for o in outs)
    results = [r for o in outs for r in o[1:]]
    made_in_window = {s for r in results for s, made, _ in r if wall0 <= made <= wall1 - 1}
    latencies = [got - made for r in results for _, made, got in r if wall0 <= made <= wall1]
    lost = sum(len(made_in_window - {s for s, _, _ in r}) for r in results)
    return {"viewers": n, "connected": connected, "frames_in_window": len(made_in_window), "frames_lost": lost,
            "latency_p50_ms": round(1000 * float(np.percentile(latencies, 50)), 1) if latencies else None,
            "latency_p95_ms": round(1000 * float(np.percentile(latencies, 95)), 1) if latencies else None,
            "web_cpu_cores": round(web_cpu, 2),
            "api_p95_ms": round(1000 * float(np.percentile(api_latency, 95)), 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, nargs="+", default=[20, 100, 300])
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pinwheel-cluster-"))
    redis_proc, redis_url = services.start_redis(tmp / "redis")
    env = services.service_env(redis_url, tmp)
    app, url = services.start_app(env, tmp / "app.log")
    workers = [services.start_worker(env, tmp / f"worker-{i}.log", name=f"bench{i}@%h") for i in range(3)]
    api = httpx.Client(base_url=url, timeout=30, headers=services.auth_headers())
    result: dict = {"load_average_before": round(os.getloadavg()[0], 2)}
    try:
        # dispatch: 12 short runs over 3 idle workers
        launched, started = {}, {}
        for _ in range(12):
            t = time.time()
            launched[api.post("/api/runs", json=SHORT_RUN).json()["id"]] = t
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not all(
                api.get(f"/api/runs/{r}").json()["status"] == "succeeded" for r in launched):
            time.sleep(0.5)
        runs = {r: api.get(f"/api/runs/{r}").json() for r in launched}
        for r, run in runs.items():  # the worker's own clock: when its attempt began
            started[r] = run["attempts"][0]["started_at"] if run["attempts"] else None
        from datetime import datetime

        waits = sorted(datetime.fromisoformat(started[r]).timestamp() - launched[r] for r in runs if started[r])
        first_wave = waits[:3]  # the three that found an idle worker
        per_worker: dict[str, int] = {}
        for run in runs.values():
            name = run["attempts"][0]["worker"].split("@")[0] if run["attempts"] else "none"
            per_worker[name] = per_worker.get(name, 0) + 1
        result["dispatch"] = {"runs": len(runs), "finished": sum(r["status"] == "succeeded" for r in runs.values()),
                              "runs_per_worker": per_worker,
                              "launch_to_running_idle_worker_s": [round(w, 3) for w in first_wave],
                              "queue_wait_all_p50_s": round(float(np.percentile(waits, 50)), 2)}
        print(json.dumps(result["dispatch"], indent=2), flush=True)

        # viewers: one live run, N viewers on one web process
        live = api.post("/api/runs", json=LIVE_RUN).json()["id"]
        services.wait_until(lambda: api.get(f"/api/runs/{live}").json()["frame_count"] >= 2, 120, "live run")
        result["viewers"] = []
        for n in args.viewers:
            row = watch(url, live, n, args.seconds, app.pid)
            result["viewers"].append(row)
            print(json.dumps(row), flush=True)
        api.post(f"/api/runs/{live}/cancel")
    finally:
        for p in [*workers, app, redis_proc]:
            services.stop(p)
    result["load_average_after"] = round(os.getloadavg()[0], 2)
    out = ROOT / "bench" / "results" / "cluster.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
