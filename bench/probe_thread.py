"""Conv stack steps/s with its linear probe on the training thread (as before issue 17) vs off it.

Both through the real loop (pinwheel.train.train, frames and panels included), the preset as shipped
except the number of steps; "on" swaps in the old frame_metrics (the probe fitted inside the frame,
on the training thread), "off" is the model as it is. Rounds alternate on/off so the machine's load
(2 shared cores) hits both alike; the ratio is the median of the per-round ratios.
    PYTHONPATH=. python bench/probe_thread.py [--steps 1500] [--rounds 3]
Writes bench/results/probe_thread.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from pinwheel.configs import RunConfig, deep_merge, preset_by_id
from pinwheel.models import conv_stack
from pinwheel.models.conv_stack import ConvStack
from pinwheel.train import train

OUT = Path(__file__).parent / "results" / "probe_thread.json"


@torch.no_grad()
def frame_metrics_on_thread(self, dataset):
    """ConvStack.frame_metrics before issue 17: the probe fitted here, on the training thread, when due."""
    if dataset.y is None or dataset.x_test is None:
        return {}
    if getattr(self, "_old_step", -1) < 0 or self._step - self._old_step >= self.config.probe_every_steps:
        self._old_probe, self._old_step = self.probe_accuracies(dataset), self._step
    return dict(self._old_probe)


class Recorder:
    def __init__(self):
        self.frames, self.probe_frames = 0, 0

    def on_frame(self, frame):
        self.frames += 1
        self.probe_frames += "probe_layer2" in frame["metrics"]

    def on_checkpoint(self, state, weights):
        pass

    def should_stop(self):
        return False


def one_run(steps: int, on_thread: bool) -> dict:
    cfg = RunConfig.model_validate(deep_merge(preset_by_id("conv-stack")["config"], {
        "train": {"steps": steps, "device": "cpu", "checkpoint_every_seconds": 3600}}))
    real = ConvStack.frame_metrics
    chosen, blocked = frame_metrics_on_thread if on_thread else real, [0.0]

    def timed(self, dataset):  # time the training thread spends in frame_metrics
        t = time.perf_counter()
        try:
            return chosen(self, dataset)
        finally:
            blocked[0] += time.perf_counter() - t

    ConvStack.frame_metrics = timed
    try:
        rec, t0 = Recorder(), time.perf_counter()
        train(cfg, rec)
        wall = time.perf_counter() - t0
    finally:
        ConvStack.frame_metrics = real
    idle = time.perf_counter()
    conv_stack._PROBE_THREAD.submit(lambda: None).result()  # a fit still running after the run: not into the next
    return {"steps_per_s": steps / wall, "wall_s": wall, "frames": rec.frames, "frames_with_probe": rec.probe_frames,
            "probe_thread_busy_after_s": time.perf_counter() - idle, "training_thread_in_frame_metrics_s": blocked[0]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    rounds = []
    for r in range(args.rounds):
        on, off = one_run(args.steps, True), one_run(args.steps, False)
        rounds.append({"on_thread": on, "off_thread": off, "ratio_off_over_on": off["steps_per_s"] / on["steps_per_s"]})
        print(f"round {r + 1}: on thread {on['steps_per_s']:.1f} steps/s ({on['wall_s']:.1f} s, "
              f"{on['training_thread_in_frame_metrics_s']:.2f} s of it in frame_metrics), off thread "
              f"{off['steps_per_s']:.1f} steps/s ({off['wall_s']:.1f} s, {off['training_thread_in_frame_metrics_s']:.3f} s "
              f"in frame_metrics), ratio {rounds[-1]['ratio_off_over_on']:.2f}", flush=True)
    med = lambda key: statistics.median(r[key]["steps_per_s"] for r in rounds)  # noqa: E731
    summary = {"steps": args.steps, "probe_every_steps": 500, "torch_threads": torch.get_num_threads(),
               "load_average": os.getloadavg(), "median_on_thread_steps_per_s": round(med("on_thread"), 2),
               "median_off_thread_steps_per_s": round(med("off_thread"), 2),
               "median_ratio_off_over_on": round(statistics.median(r["ratio_off_over_on"] for r in rounds), 3),
               "median_training_thread_blocked_s": {k: round(statistics.median(
                   r[k]["training_thread_in_frame_metrics_s"] for r in rounds), 3) for k in ("on_thread", "off_thread")}}
    print(f"\nconv stack, {args.steps} steps, probe every 500: on the training thread "
          f"{summary['median_on_thread_steps_per_s']} steps/s, off it {summary['median_off_thread_steps_per_s']} "
          f"steps/s, ratio {summary['median_ratio_off_over_on']} (median of {args.rounds} rounds); training thread "
          f"blocked in frame_metrics {summary['median_training_thread_blocked_s']['on_thread']} s vs "
          f"{summary['median_training_thread_blocked_s']['off_thread']} s")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"summary": summary, "rounds": rounds}, indent=2))


if __name__ == "__main__":
    main()
