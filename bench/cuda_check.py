"""The CUDA path: every preset trains on the GPU through the generic loop, frames and weights
come out finite, and a checkpoint taken on the GPU resumes exactly. Prints a table, writes
bench/results/cuda_check.json. Needs a CUDA device; run where one is:
    PYTHONPATH=. python bench/cuda_check.py [--seconds 20]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from pinwheel.configs import PRESETS, RunConfig, deep_merge
from pinwheel.train import train

OUT = Path(__file__).parent / "results" / "cuda_check.json"


class Recorder:
    def __init__(self, seconds: float | None = None, stop_step: int | None = None):
        self.frames, self.state, self.weights = [], None, None
        self.t0, self.seconds, self.stop_step = time.monotonic(), seconds, stop_step

    def on_frame(self, frame):
        self.frames.append(frame)

    def on_checkpoint(self, state, weights):
        self.state, self.weights = state, weights

    def should_stop(self):
        if self.stop_step is not None:
            return self.frames[-1]["step"] >= self.stop_step
        return self.seconds is not None and time.monotonic() - self.t0 > self.seconds


def check_preset(preset: dict, device: str, seconds: float) -> dict:
    cfg = RunConfig.model_validate(deep_merge(preset["config"], {"train": {"device": device, "steps": 10**7}}))
    rec = Recorder(seconds=seconds)
    t = time.monotonic()
    train(cfg, rec)
    elapsed = time.monotonic() - t
    last = rec.frames[-1]
    finite = all(np.isfinite(np.asarray(v, dtype=np.float64)).all() for v in rec.weights.values()
                 if np.asarray(v).dtype.kind in "fiu")
    return {"preset": preset["id"], "device": device, "steps": last["step"],
            "steps_per_s": round(last["step"] / last["wall_time"], 1), "frames": len(rec.frames),
            "metrics": {k: round(v, 5) for k, v in last["metrics"].items()}, "weights_finite": bool(finite),
            "seconds": round(elapsed, 1)}


def check_resume(device: str) -> dict:
    base = deep_merge(PRESETS[0]["config"], {"data": {"pool_size": 2000}, "train": {
        "device": device, "steps": 300, "frame_every_steps": 50, "frame_every_seconds": 1e9}})
    cfg = RunConfig.model_validate(base)
    straight = Recorder()
    train(cfg, straight)
    half = Recorder(stop_step=150)
    train(cfg, half)
    state = torch.load(_roundtrip(half.state), weights_only=True, map_location="cpu")
    resumed = Recorder()
    train(cfg, resumed, resume=state)
    diff = float(np.abs(resumed.weights["W_d"] - straight.weights["W_d"]).max())
    return {"resume_max_abs_diff_W_d": diff, "resume_exact_within_1e-4": diff < 1e-4}


def _roundtrip(state):
    import io

    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return buf


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    info = {"torch": torch.__version__, "cuda": torch.version.cuda,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    rows = []
    for preset in PRESETS:
        try:
            rows.append(check_preset(preset, args.device, args.seconds))
        except Exception as exc:  # report every preset, not just the first failure
            rows.append({"preset": preset["id"], "device": args.device, "error": f"{type(exc).__name__}: {exc}"})
        print(json.dumps(rows[-1]), flush=True)
    resume = check_resume(args.device)
    print(json.dumps(resume), flush=True)
    print(f"\n{'preset':34} {'steps/s':>9} {'steps':>8} {'frames':>7}  finite")
    for r in rows:
        if "error" in r:
            print(f"{r['preset']:34} ERROR {r['error']}")
        else:
            print(f"{r['preset']:34} {r['steps_per_s']:>9} {r['steps']:>8} {r['frames']:>7}  {r['weights_finite']}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"environment": info, "presets": rows, "resume": resume}, indent=2))


if __name__ == "__main__":
    main()
