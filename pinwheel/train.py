"""The generic training loop. It reports through callbacks and knows nothing of Celery or HTTP.

A *frame* is emitted every `frame_every_steps` steps or `frame_every_seconds` seconds, whichever
comes first: a pinwheel.protocol.Frame (step, total_steps, wall_time, time, metrics, panels), handed to
`on_frame` as the dict of the fields it sets. Metrics are averaged over the
steps since the previous frame, so the curve is not aliased by the frame rate.

Streaming cost: the panels and held-out measures (frame_metrics: probes, held-out energies) of a
frame are not computed by the training loop. At a frame the loop
takes a snapshot (its parameters, buffers and plain attributes, the optimizer's state and the data
generator's: clones, well under a millisecond for these models) and queues it; a FrameStreamer thread
loads the snapshot into a private copy of the model, produces the panels on it, and calls
`on_frame` and then `should_stop`, one frame at a time in step order (PNG encoding, numpy and torch
release the GIL, so training goes on meanwhile). When `should_stop` says yes after the frame of step
N, the loop checkpoints the snapshot of step N — exactly what it used to save — and returns
"cancelled"; frames after N are not delivered. Every checkpoint is written once all frames up to its
step are delivered, and the last frame (every panel computed afresh) before `train` returns.
"""
from __future__ import annotations

import copy
import math
import os
import queue
import threading
import time
from pathlib import Path
from typing import Protocol

import torch
from threadpoolctl import ThreadpoolController
from torch import nn

from .configs import RunConfig
from .data import build_dataset
from .models import build_model
from .panels import produce_panels
from .protocol import Frame


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


_MODULE_KEYS = frozenset(nn.Module().__dict__)  # torch's own bookkeeping in every module's __dict__


def _plain_attributes(model: nn.Module) -> list[tuple[str, dict]]:
    """Each submodule's own attributes (a layer's current step, a pooling schedule, a cached probe):
    tensors cloned, the rest by reference (models replace such values, they do not mutate them)."""
    return [(name, {k: v.detach().clone() if isinstance(v, torch.Tensor) else v
                    for k, v in mod.__dict__.items() if k not in _MODULE_KEYS})
            for name, mod in model.named_modules()]


def _tensors(model: nn.Module) -> list[torch.Tensor]:
    return [*model.parameters(), *model.buffers()]


class FrameStreamer:
    """Produces and delivers frames on a background thread, from snapshots of the model (see module doc).

    submit() is all the training loop pays for a frame. `halted` becomes true when a frame's
    should_stop said yes (`stop_state` is then that frame's training state) or the thread failed
    (`error`, re-raised by check()). At most `depth` frames wait; submit() blocks beyond that, so a
    model whose panels take longer than the frame interval slows training instead of piling up memory."""

    def __init__(self, model: nn.Module, probe_x, probe_y, callbacks: Callbacks, depth: int = 2, dataset=None):
        shared = {id(v): v for _, attrs in _plain_attributes(model) for v in attrs.values()
                  if not isinstance(v, torch.Tensor)}  # the copy shares configs, group structures, ...
        self.shadow = copy.deepcopy(model, shared).eval()
        self.probe_x, self.probe_y, self.callbacks, self.dataset = probe_x, probe_y, callbacks, dataset
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.halted = False
        self.stop_state: dict | None = None
        self.error: BaseException | None = None
        self.delivered, self.cpu_seconds = 0, 0.0  # frames delivered, CPU time the thread spent on them
        # numpy's OpenBLAS runs the panels' small products on one thread: a second BLAS thread only spins
        # against the training loop's threads for the cores (the loop itself uses torch's own pool)
        self._blas = ThreadpoolController().select(internal_api="openblas")
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="pinwheel-frames", daemon=True)
        self._thread.start()

    def snapshot(self, model: nn.Module, optimizer, generator: torch.Generator, step: int, elapsed: float) -> dict:
        with torch.no_grad():
            return {"tensors": [t.detach().clone() for t in _tensors(model)], "attributes": _plain_attributes(model),
                    "optimizer": copy.deepcopy(optimizer.state_dict()), "generator": generator.get_state(),
                    "step": step, "elapsed": elapsed}

    def submit(self, head: dict, snap: dict, fresh: bool) -> None:
        self.check()
        self.queue.put((head, snap, fresh))

    def load(self, snap: dict) -> nn.Module:
        """The private model at the snapshot's state (only the streamer thread, or the loop once it stopped)."""
        with torch.no_grad():
            for dst, src in zip(_tensors(self.shadow), snap["tensors"]):
                dst.copy_(src)
        for name, attrs in snap["attributes"]:
            self.shadow.get_submodule(name).__dict__.update(attrs)
        return self.shadow

    def _run(self) -> None:
        try:  # Linux schedules threads one by one: let the training threads have the cores first
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except (AttributeError, OSError):
            pass
        while (item := self.queue.get()) is not None:
            try:
                if not self.halted:
                    self._deliver(*item)
            except BaseException as exc:  # noqa: BLE001 — handed to the training loop by check()
                self.error, self.halted = exc, True
            finally:
                self.queue.task_done()
        self.queue.task_done()

    def _deliver(self, head: dict, snap: dict, fresh: bool) -> None:
        cpu = time.thread_time()
        model = self.load(snap)
        with torch.no_grad(), self._blas.limit(limits=1):
            panels = produce_panels(model, self.probe_x, self.probe_y, step=head["step"], fresh=fresh)
            # held-out measures and probes, on the snapshot: off the training thread too
            measured = model.frame_metrics(self.dataset) if self.dataset is not None else {}
        frame = Frame(step=head["step"], total_steps=head["total_steps"], wall_time=head["wall_time"], time=time.time(),
                      metrics={**head["metrics"], **measured}, panels=panels)
        self.callbacks.on_frame(frame.model_dump(exclude_unset=True))
        self.delivered, self.cpu_seconds = self.delivered + 1, self.cpu_seconds + time.thread_time() - cpu
        if self.callbacks.should_stop():
            self.stop_state, self.halted = snap, True

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def drain(self) -> None:
        """Wait until every submitted frame is delivered (or the streamer halted); re-raise its error."""
        self.queue.join()
        self.check()

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            self.queue.put(None)
            self._thread.join()


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
    streamer = FrameStreamer(model, probe_x, probe_y, callbacks, dataset=dataset)

    def checkpoint() -> None:
        state = {"step": step, "elapsed": elapsed_before + time.monotonic() - start,
                 "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "generator": generator.get_state()}
        callbacks.on_checkpoint(state, model.weights())

    def cancel() -> str:
        """should_stop said yes after the frame of step N: checkpoint the training state of step N."""
        snap = streamer.stop_state
        streamer.close()
        shadow = streamer.load(snap)
        state = {"step": snap["step"], "elapsed": snap["elapsed"], "model": shadow.state_dict(),
                 "optimizer": snap["optimizer"], "generator": snap["generator"]}
        callbacks.on_checkpoint(state, shadow.weights())
        return "cancelled"

    def emit() -> None:
        nonlocal sums, since_frame, last_frame
        metrics = _mean_metrics(sums, since_frame) if since_frame else {}
        bad = [k for k, v in metrics.items() if not math.isfinite(v)]
        if bad:
            raise TrainingDiverged(f"{bad[0]} became {metrics[bad[0]]} by step {step} "
                                   f"(try a smaller train.lr than {tc.lr})")
        elapsed = elapsed_before + time.monotonic() - start
        head = {"step": step, "total_steps": tc.steps, "wall_time": round(elapsed, 4), "metrics": metrics}
        streamer.submit(head, streamer.snapshot(model, optimizer, generator, step, elapsed), fresh=step >= tc.steps)
        sums, since_frame, last_frame = {}, 0, time.monotonic()

    try:
        try:
            emit()  # step-0 frame: the page shows the initial filters at once
            while step < tc.steps:
                if streamer.halted:
                    streamer.check()
                    return cancel()
                x, y = dataset.batch(tc.batch_size, generator)
                terms = model.train_step(x, y, step, optimizer)
                step += 1
                since_frame += 1
                for k, v in terms.items():
                    sums[k] = sums[k] + v if k in sums else v.clone()
                now = time.monotonic()
                if step % tc.frame_every_steps == 0 or now - last_frame >= tc.frame_every_seconds or step == tc.steps:
                    emit()
                if now - last_ckpt >= tc.checkpoint_every_seconds:
                    streamer.drain()  # a checkpoint never runs ahead of the frames up to its step
                    if streamer.halted:
                        return cancel()
                    checkpoint()
                    last_ckpt = now
        except TrainingDiverged:
            streamer.drain()  # the frames before the diverging one are delivered, as they were
            if streamer.halted:  # a cancel asked for before it still wins
                return cancel()
            raise
        streamer.drain()
        if streamer.halted:
            return cancel()
        checkpoint()
        return "succeeded"
    finally:
        streamer.close()
