"""The GPU path, checked: every preset on the CPU and on CUDA in one call, and a non-zero exit on any failure.

For every preset and device (cpu, and cuda when present):
  - training steps per second (bench/step_check.py's loop: batch + model.train_step, small data pools),
    peak GPU memory on cuda, every parameter and step term finite afterwards;
  - no host synchronisation in a step: on cuda under torch.cuda.set_sync_debug_mode("error") (any sync
    raises), early and late in the schedules; without cuda, on the meta device under HostSyncGuard
    (what tests/pinwheel/test_no_host_sync.py checks);
  - the real loop (pinwheel.train.train) for a few frames: frames delivered, weights finite.
Resume across devices, for --resume presets: a run stopped half-way on one device, its checkpoint
serialised and loaded with map_location="cpu" (as the worker loads it), resumed on the other
(cuda→cpu, cpu→cuda; cpu→cpu where there is no GPU, which must equal the straight run exactly).
Prints a table and what it skipped; writes bench/results/cuda_check.json even when a check fails
or raises. Exit status 1 if any check failed.
    PYTHONPATH=. python bench/cuda_check.py [--seconds 3] [--resume topographic-natural pinwheels-local]
DrSAE runs on scikit-learn's digits when the MNIST sample is not on the machine (the row says so).
"""
from __future__ import annotations

import argparse
import io
import json
import math
import platform
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.step_check import HostSyncGuard, build, preset_config, run_steps, steps_per_second  # noqa: E402
from pinwheel.configs import PRESETS, RunConfig, deep_merge, preset_by_id  # noqa: E402
from pinwheel.train import train  # noqa: E402

OUT = Path(__file__).parent / "results" / "cuda_check.json"
LATE = 100_000  # a step past every schedule (conv stack's last layer, DrSAE's supervised phase, pools annealed)
DEFAULT_RESUME = ["topographic-natural", "groups-tree", "pinwheels-local", "lateral-tree"]


def finite(tensors) -> bool:
    return all(bool(torch.isfinite(t.detach()).all()) for t in tensors)


def step_row(preset: dict, device: str, seconds: float) -> dict:
    cfg, note = preset_config(preset)
    row = {"preset": preset["id"], "device": device, "note": note, "failures": []}
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    model, dataset, optimizer, generator = build(cfg, device)
    rate, n = steps_per_second(model, dataset, optimizer, generator, cfg.train.batch_size, seconds)
    row.update(steps_per_s=round(rate, 2), steps_timed=n)
    for start in (n + 10, LATE):  # the sync check, early then late in the schedules
        run_steps(model, dataset, optimizer, generator, 1, cfg.train.batch_size, start)  # first use builds tables
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.set_sync_debug_mode("error")
            try:
                terms = run_steps(model, dataset, optimizer, generator, 2, cfg.train.batch_size, start + 1)
            except RuntimeError as exc:
                row["failures"].append(f"host sync at step {start + 1}: {str(exc).splitlines()[0]}")
                terms = {}
            finally:
                torch.cuda.set_sync_debug_mode(0)
        else:
            terms = run_steps(model, dataset, optimizer, generator, 2, cfg.train.batch_size, start + 1)
        if not finite(terms.values()):
            row["failures"].append(f"non-finite step terms at step {start + 2}")
    if device == "cuda":
        torch.cuda.synchronize()
        row["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    if not finite(model.parameters()):
        row["failures"].append("non-finite parameters")
    return row


def meta_row(preset: dict) -> dict:
    cfg, note = preset_config(preset)
    row = {"preset": preset["id"], "device": "meta", "note": note, "failures": []}
    model, dataset, optimizer, generator = build(cfg, "meta", build_on="cpu")
    for start in (0, LATE):
        run_steps(model, dataset, optimizer, generator, 1, 16, start)
        with HostSyncGuard() as guard:
            run_steps(model, dataset, optimizer, generator, 2, 16, start + 1)
        row["failures"] += [f"step {start + 1}: {f}" for f in guard.found]
    return row


class Recorder:
    def __init__(self, stop_at: int | None = None):
        self.frames, self.state, self.weights, self.stop_at = [], None, None, stop_at

    def on_frame(self, frame):
        self.frames.append(frame)

    def on_checkpoint(self, state, weights):
        self.state, self.weights = state, weights

    def should_stop(self):
        return self.stop_at is not None and self.frames[-1]["step"] >= self.stop_at


def loop_config(preset: dict, device: str, steps: int = 20) -> RunConfig:
    cfg, _ = preset_config(preset)
    return RunConfig.model_validate(deep_merge(cfg.model_dump(), {"train": {
        "device": device, "steps": steps, "frame_every_steps": 5, "frame_every_seconds": 3600,
        "checkpoint_every_seconds": 3600}}))


def weights_finite(weights: dict) -> bool:
    return all(np.isfinite(np.asarray(v, dtype=np.float64)).all() for v in weights.values()
               if np.asarray(v).dtype.kind in "fiu")


def loop_row(preset: dict, device: str) -> dict:
    rec, t0 = Recorder(), time.perf_counter()
    status = train(loop_config(preset, device), rec)
    row = {"preset": preset["id"], "device": device, "check": "loop", "status": status,
           "frames": [f["step"] for f in rec.frames], "seconds": round(time.perf_counter() - t0, 2), "failures": []}
    if status != "succeeded" or row["frames"][-1] != 20:
        row["failures"].append(f"loop ended {status} at frame {row['frames'][-1]}")
    if not weights_finite(rec.weights):
        row["failures"].append("non-finite weights")
    return row


def resume_row(preset: dict, first: str, second: str) -> dict:
    row = {"preset": preset["id"], "check": f"resume {first}→{second}", "failures": []}
    straight = Recorder()
    train(loop_config(preset, second), straight)
    half = Recorder(stop_at=10)
    train(loop_config(preset, first), half)
    buf = io.BytesIO()
    torch.save(half.state, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True, map_location="cpu")  # as worker/tasks.py loads it
    resumed = Recorder()
    status = train(loop_config(preset, second), resumed, resume=state)
    steps = [f["step"] for f in resumed.frames]
    diff = max(float(np.abs(np.asarray(resumed.weights[k], dtype=np.float64) - np.asarray(straight.weights[k])).max())
               for k, v in straight.weights.items() if np.asarray(v).dtype.kind == "f")
    row.update(status=status, frames=steps, max_abs_diff_vs_straight=diff)
    if status != "succeeded" or steps[0] != 10 or steps[-1] != 20:
        row["failures"].append(f"resume ended {status} with frames {steps}")
    if not weights_finite(resumed.weights):
        row["failures"].append("non-finite weights after resume")
    if first == second and diff != 0.0:
        row["failures"].append(f"resumed run differs from the straight run by {diff:.3g}")
    return row


def guarded(rows: list, fn, *args, **info) -> None:
    """Run one check; an exception is a failed row (with its traceback's last line), never a lost report."""
    try:
        rows.append(fn(*args))
    except Exception as exc:  # noqa: BLE001 — every check reports
        rows.append({**info, "failures": [f"{type(exc).__name__}: {exc}"],
                     "where": traceback.format_exc().strip().splitlines()[-3:]})
    print(json.dumps(rows[-1]), flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0, help="timed steps per preset and device")
    ap.add_argument("--resume", nargs="*", default=DEFAULT_RESUME, help="presets for the resume checks")
    ap.add_argument("--only", nargs="*", help="preset ids (default: every preset)")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = torch.cuda.is_available()
    devices = ["cpu", "cuda"] if cuda else ["cpu"]
    unknown = [i for i in (args.only or []) + args.resume if preset_by_id(i) is None]
    if unknown:
        ap.error(f"no preset named {', '.join(unknown)} (presets: {', '.join(p['id'] for p in PRESETS)})")
    presets = [preset_by_id(i) for i in args.only] if args.only else PRESETS
    report = {"environment": {"torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
                              "gpu": torch.cuda.get_device_name(0) if cuda else None,
                              "cpu_threads": torch.get_num_threads()},
              "steps": [], "sync": [], "loop": [], "resume": [], "skipped": []}
    status = 1
    try:
        if not cuda:
            report["skipped"] = ["cuda steps/s and peak GPU memory (no CUDA device)",
                                 "torch.cuda.set_sync_debug_mode('error') check (no CUDA device): meta-device check instead",
                                 "real loop on cuda", "resume cuda→cpu and cpu→cuda (no CUDA device): cpu→cpu instead"]
            for line in report["skipped"]:
                print(f"SKIPPED: {line}", flush=True)
        for preset in presets:
            for device in devices:
                guarded(report["steps"], step_row, preset, device, args.seconds, preset=preset["id"], device=device)
            if not cuda:
                guarded(report["sync"], meta_row, preset, preset=preset["id"], device="meta")
            for device in devices:
                guarded(report["loop"], loop_row, preset, device, preset=preset["id"], device=device, check="loop")
        pairs = [("cuda", "cpu"), ("cpu", "cuda")] if cuda else [("cpu", "cpu")]
        for preset_id in args.resume:
            for first, second in pairs:
                guarded(report["resume"], resume_row, preset_by_id(preset_id), first, second,
                        preset=preset_id, check=f"resume {first}→{second}")
        status = 0
    finally:
        failures = [f"{r.get('preset')} {r.get('device') or r.get('check')}: {f}"
                    for part in ("steps", "sync", "loop", "resume") for r in report[part] for f in r["failures"]]
        if status:
            failures.append("cuda_check itself stopped early (see the traceback above)")
        report["failures"] = failures
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(report, indent=2, default=str))
    by = {(r["preset"], r["device"]): r for r in report["steps"]}
    print(f"\n{'preset':22} {'cpu steps/s':>12} {'cuda steps/s':>13} {'cuda/cpu':>9} {'peak GPU MiB':>13}  note")
    for preset in presets:
        c, g = by.get((preset["id"], "cpu"), {}), by.get((preset["id"], "cuda"), {})
        ratio = g["steps_per_s"] / c["steps_per_s"] if g.get("steps_per_s") and c.get("steps_per_s") else math.nan
        print(f"{preset['id']:22} {c.get('steps_per_s', math.nan):12.2f} {g.get('steps_per_s', math.nan):13.2f} "
              f"{ratio:9.2f} {g.get('peak_gpu_mib', math.nan):13.1f}  {c.get('note', '')}")
    for r in report["resume"]:
        print(f"{r['preset']:22} {r['check']}: frames {r.get('frames')}, max |Δ| vs straight "
              f"{r.get('max_abs_diff_vs_straight', math.nan):.3g}")
    print(f"\n{len(failures)} failure(s)" + "".join(f"\n  FAIL {f}" for f in failures))
    print(f"wrote {OUT}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
