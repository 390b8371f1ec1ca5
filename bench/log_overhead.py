"""What pinwheel.log costs a user's training loop (issue #15), printed and written to
bench/results/log_overhead.json.

A plain torch loop (a ReLU sparse auto-encoder, 256 units on 16×16 patches, batch 256, Adam) runs
in segments that alternate between no logging and `run.log` every 25 steps with every panel
(filters on a 16×16 grid, codes, inputs and reconstructions of a 64-example probe) against a real
web app and Redis started here. Each round is one segment of each (the order flips every round,
so drift of the shared machine falls on both); the ratio of steps/s (logging / plain) is taken a
round, and the median and quartiles are reported, with the time the run.log call takes on the loop
(the probe batch's forward pass, the user's own code, is not counted).

Configurations: torch on 1 thread (the other core left to the logger and the web app) with
`min_interval` 1 s (the default: at most one frame a second goes out, the rest are merged into the
newest) and 0.25 s, and torch on 2 threads (on 2 shared cores its OpenMP threads stall whenever
anything else runs — the plain loop is ~10x slower than on 1 thread and its ratio mostly noise).
The logger's CPU a frame (its thread in the user's process and the sender process it starts) and
the web app's are recorded: on this machine the web app (validating, publishing and storing each ~50 KB frame) shares the two cores
with the loop, which a lab server would not. Their sum with the run.log calls, per second of
logged training, is `logging_cpu_percent_of_a_core`: the cost as CPU, steadier than the ratio.

    PYTHONPATH=. python bench/log_overhead.py [--rounds 10] [--seconds 3]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import pinwheel.log
from tests import services

OUT = Path(__file__).parent / "results" / "log_overhead.json"
LOG_EVERY = 25


class SAE(torch.nn.Module):
    def __init__(self, d: int, m: int):
        super().__init__()
        self.W_e = torch.nn.Parameter(torch.randn(m, d) / d ** 0.5)
        self.b = torch.nn.Parameter(torch.zeros(m))
        self.W_d = torch.nn.Parameter(self.W_e.detach().T.clone())

    def forward(self, x):
        z = torch.relu(x @ self.W_e.T + self.b)
        return z, z @ self.W_d.T


def segment(model, opt, data, probe, seconds: float, start: int, run=None) -> tuple[int, float, list[float]]:
    """Training for `seconds`; returns (steps, steps/s, seconds each run.log call took on the loop)."""
    calls = []
    t0 = time.perf_counter()
    i = 0
    while time.perf_counter() - t0 < seconds:
        x = data[torch.randint(len(data), (256,))]
        z, x_hat = model(x)
        loss = 0.5 * ((x - x_hat) ** 2).sum(1).mean() + 0.3 * z.abs().sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.W_d /= model.W_d.norm(dim=0, keepdim=True) + 1e-8
        step = start + i
        i += 1
        if run is not None and step % LOG_EVERY == 0:
            with torch.no_grad():
                z_p, x_hat_p = model(probe)
            c = time.perf_counter()
            run.log(step, metrics={"loss": loss.item()}, filters=model.W_d.T, layout="grid", codes=z_p,
                    inputs=probe, reconstructions=x_hat_p)
            calls.append(time.perf_counter() - c)
    return i, i / (time.perf_counter() - t0), calls


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (the web app: validating, publishing and storing the frames)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(url: str, app_pid: int, threads: int, min_interval: float, rounds: int, seconds: float) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    data = torch.randn(20_000, 256)
    probe = data[:64]
    model = SAE(256, 256)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    run = pinwheel.log.init(url, services.ADMIN_TOKEN, name=f"bench log overhead (min_interval {min_interval})",
                            min_interval=min_interval)
    step = segment(model, opt, data, probe, seconds, 0, run)[0]  # warm-up: torch, the panel imports, first frames
    deadline = time.monotonic() + 120
    while run.frames_sent < 1 and time.monotonic() < deadline:  # the sender's start-up (imports) is not a frame's cost
        time.sleep(0.1)
    ratios, plain, logged, calls = [], [], [], []
    sent0, app0, app_cpu_plain, plain_seconds = run.frames_sent, cpu_seconds(app_pid), 0.0, 0.0
    cpu0 = run.thread_cpu_seconds + run.sender_cpu_seconds
    for r in range(rounds):
        order = (None, run) if r % 2 == 0 else (run, None)
        rates = {}
        for who in order:
            app_before = cpu_seconds(app_pid)
            n, rate, c = segment(model, opt, data, probe, seconds, step, who)
            if who is None:  # the app's idle CPU (persister polling), subtracted below
                app_cpu_plain += cpu_seconds(app_pid) - app_before
                plain_seconds += n / rate
            step += n
            rates[who is not None] = rate
            calls += c
        plain.append(rates[False])
        logged.append(rates[True])
        ratios.append(rates[True] / rates[False])
    sent = run.frames_sent - sent0
    thread_cpu = run.thread_cpu_seconds + run.sender_cpu_seconds - cpu0  # the logging thread and the sender process
    app_cpu = cpu_seconds(app_pid) - app0
    logged_seconds = seconds * rounds
    app_per_frame = (app_cpu - app_cpu_plain - app_cpu_plain / plain_seconds * logged_seconds) / max(sent, 1)
    run.finish()
    q1, med, q3 = np.percentile(ratios, [25, 50, 75])
    return {"torch_threads": threads, "min_interval_s": min_interval, "rounds": rounds, "seconds_per_segment": seconds,
            "log_every": LOG_EVERY,
            "plain_steps_per_s": round(float(np.median(plain)), 1),
            "logged_steps_per_s": round(float(np.median(logged)), 1),
            "ratio_median": round(float(med), 4), "ratio_q1": round(float(q1), 4), "ratio_q3": round(float(q3), 4),
            "cost_percent": round(100 * (1 - float(med)), 2),
            "log_call_ms_mean": round(1000 * float(np.mean(calls)), 3),
            "log_call_ms_p95": round(1000 * float(np.percentile(calls, 95)), 3),
            "frames_sent": run.frames_sent, "frames_merged": run.frames_merged,
            "logger_cpu_ms_per_frame": round(1000 * thread_cpu / max(sent, 1), 2),
            "web_app_cpu_ms_per_frame": round(1000 * app_per_frame, 2),
            # the same cost as a share of one core while logging: far less noisy than the throughput ratio
            "frames_per_s": round(sent / logged_seconds, 2),
            "logging_cpu_percent_of_a_core": round(100 * (thread_cpu + app_per_frame * sent + sum(calls)) / logged_seconds, 2),
            "run_id": run.id}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=3.0, help="length of a segment")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pinwheel-bench-log-"))
    redis_proc, redis_url = services.start_redis(tmp / "redis")
    app = None
    try:
        app, url = services.start_app(services.service_env(redis_url, tmp), tmp / "app.log")
        results = {"cpus": os.cpu_count(),
                   "load_average_before": [round(v, 2) for v in os.getloadavg()],
                   "configs": [measure(url, app.pid, threads, mi, args.rounds, args.seconds)
                               for threads, mi in ((1, 1.0), (1, 0.25), (2, 1.0))],
                   "load_average_after": [round(v, 2) for v in os.getloadavg()],
                   "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    finally:
        if app is not None:
            services.stop(app)
        services.stop(redis_proc)
    print(f"cpus {results['cpus']}, load {results['load_average_before']} → {results['load_average_after']}")
    print(f"{'threads':>7} {'min_interval':>12} {'plain st/s':>10} {'logged st/s':>11} {'ratio (q1–q3)':>22} {'cost %':>7} "
          f"{'log() ms mean/p95':>18} {'sent/merged':>12} {'CPU ms/frame logger/app':>24} {'CPU % of a core':>16}")
    for c in results["configs"]:
        print(f"{c['torch_threads']:>7} {c['min_interval_s']:>12} {c['plain_steps_per_s']:>10} {c['logged_steps_per_s']:>11} "
              f"{c['ratio_median']:>8} ({c['ratio_q1']}–{c['ratio_q3']}) {c['cost_percent']:>7} "
              f"{c['log_call_ms_mean']:>8}/{c['log_call_ms_p95']:<9} {c['frames_sent']:>5}/{c['frames_merged']:<6} "
              f"{c['logger_cpu_ms_per_frame']:>11}/{c['web_app_cpu_ms_per_frame']:<12} "
              f"{c['logging_cpu_percent_of_a_core']:>16}")
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {OUT}")


if __name__ == "__main__":
    main()
