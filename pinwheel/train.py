"""The generic training loop. It reports through callbacks and knows nothing of Celery or HTTP.

A *frame* is emitted every `frame_every_steps` steps or `frame_every_seconds` seconds, whichever
comes first: {step, total_steps, wall_time, time, metrics, panels}. Metrics are averaged over the
steps since the previous frame, so the curve is not aliased by the frame rate.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Protocol

import torch

from .configs import RunConfig
from .data import build_dataset
from .models import build_model
from .panels import produce_panels


class Callbacks(Protocol):
    def on_frame(self, frame: dict) -> None: ...
    def on_checkpoint(self, state: dict, weights: dict) -> None: ...
    def should_stop(self) -> bool: ...


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message says at which step and which term."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device: 'cuda' was asked for but no CUDA device is available")
    return torch.device(name)


def _mean_metrics(sums: dict[str, torch.Tensor], count: int) -> dict[str, float]:
    return {k: float(v) / count for k, v in sums.items()}


def train(config: RunConfig, callbacks: Callbacks, *, resume: dict | None = None,
          data_root: Path | None = None, probe_size: int = 256) -> str:
    """Train to config.train.steps. Returns "succeeded" or "cancelled"; raises TrainingDiverged."""
    tc = config.train
    device = resolve_device(tc.device)
    torch.manual_seed(tc.seed)
    generator = torch.Generator().manual_seed(tc.seed)
    dataset = build_dataset(config.data, tc.seed, data_root).to(device)
    model = build_model(config.model, dataset, generator).to(device)
    optimizer = model.make_optimizer(tc.lr, tc.optimizer)
    step, elapsed_before = 0, 0.0
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        generator.set_state(resume["generator"])
        step, elapsed_before = int(resume["step"]), float(resume["elapsed"])
    probe_x, probe_y = dataset.probe(probe_size)

    start = time.monotonic()
    last_frame = last_ckpt = start
    sums: dict[str, torch.Tensor] = {}
    since_frame = 0

    def checkpoint() -> None:
        state = {"step": step, "elapsed": elapsed_before + time.monotonic() - start,
                 "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "generator": generator.get_state()}
        callbacks.on_checkpoint(state, model.weights())

    def emit() -> None:
        nonlocal sums, since_frame, last_frame
        metrics = _mean_metrics(sums, since_frame) if since_frame else {}
        bad = [k for k, v in metrics.items() if not math.isfinite(v)]
        if bad:
            raise TrainingDiverged(f"{bad[0]} became {metrics[bad[0]]} by step {step} "
                                   f"(try a smaller train.lr than {tc.lr})")
        model.eval()
        with torch.no_grad():
            metrics.update(model.frame_metrics(dataset))
            panels = produce_panels(model, probe_x, probe_y, step=step, fresh=step >= tc.steps)
        model.train()
        callbacks.on_frame({"step": step, "total_steps": tc.steps,
                            "wall_time": round(elapsed_before + time.monotonic() - start, 4),
                            "time": time.time(), "metrics": metrics, "panels": panels})
        sums, since_frame, last_frame = {}, 0, time.monotonic()

    emit()  # step-0 frame: the page shows the initial filters at once
    while step < tc.steps:
        x, y = dataset.batch(tc.batch_size, generator)
        terms = model.train_step(x, y, step, optimizer)
        step += 1
        since_frame += 1
        for k, v in terms.items():
            sums[k] = sums[k] + v if k in sums else v.clone()
        now = time.monotonic()
        if step % tc.frame_every_steps == 0 or now - last_frame >= tc.frame_every_seconds or step == tc.steps:
            emit()
            if callbacks.should_stop():
                checkpoint()
                return "cancelled"
        if now - last_ckpt >= tc.checkpoint_every_seconds:
            checkpoint()
            last_ckpt = now
    checkpoint()
    return "succeeded"
