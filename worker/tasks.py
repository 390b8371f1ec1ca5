"""The training task: claims the run (pinwheel/leases.py), runs pinwheel.train, publishes to Redis.

One attempt of a run = one claim. A RunWatch thread, independent of how long a training step
takes, renews the attempt's lease, watches the cancel flag and the worker's own shutdown:
- cancel: the loop stops at its next frame (checkpointing that frame's state); if a long step
  keeps it from doing so within `cancel_grace_seconds`, the watcher publishes `cancelled` itself;
- shutdown (SIGTERM/Ctrl-C of the worker): the loop checkpoints at its next frame and the run goes
  back to the queue (Reject with requeue), so the next worker resumes with almost nothing redone;
- superseded (this attempt stalled past its lease and was replaced): stop, publish and save nothing.
Every publication is fenced by the attempt number and retried while Redis is unreachable.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import traceback

import redis
import torch
from celery.exceptions import Reject
from celery.worker import state as worker_state

from pinwheel.configs import RunConfig
from pinwheel.devices import choose_device
from pinwheel.leases import Lease
from pinwheel.protocol import TASK_NAME, Event, Frame, StatusEvent, cancel_key, kind_of, stream_key
from pinwheel.provenance import code_version
from pinwheel.train import TrainingDiverged, resolve_device, train

from . import gpu_slots, presence
from .celery_app import app
from .files import RunFiles, Superseded
from .gpu_slots import GpuSlot
from .guards import TIME_LIMIT_ERROR, Deadline, check_memory, device_available_bytes
from .settings import WorkerSettings, get_settings

log = logging.getLogger(__name__)
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)  # BusyLoadingError (AOF replay) is a ConnectionError


def retrying(what: str, call, seconds: float):
    """call() until Redis answers (back-off 0.2 → 5 s), for at most `seconds` (settings.redis_retry_seconds)."""
    deadline, delay = time.monotonic() + seconds, 0.2
    while True:
        try:
            return call()
        except REDIS_DOWN as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("%s: Redis unreachable (%s); retrying in %.1f s", what, exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _shutting_down() -> bool:
    return worker_state.should_stop is not None or worker_state.should_terminate is not None


class RunWatch(threading.Thread):
    """Renews the lease and watches cancel/shutdown every `watch_seconds`, off the training thread."""

    def __init__(self, lease: Lease, client: redis.Redis, run_id: str, deadline: Deadline, slot: GpuSlot | None,
                 settings: WorkerSettings):
        super().__init__(name=f"run-watch-{run_id[:8]}", daemon=True)
        self.lease, self.redis, self.run_id, self.deadline, self.slot = lease, client, run_id, deadline, slot
        self.every, self.cancel_grace = settings.watch_seconds, settings.cancel_grace_seconds
        self.reason: str | None = None  # cancel | shutdown | superseded | time limit: why the loop must stop
        self.cancel_published = False
        self.finished = threading.Event()  # the task is done with the run

    def stop(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
            log.info("run %s attempt %d: stopping (%s)", self.run_id, self.lease.attempt, reason)

    def run(self) -> None:
        cancel_seen = None
        while not self.finished.wait(self.every):
            try:
                if self.slot is not None:
                    self.slot.renew()
                if not self.lease.renew():
                    self.stop("superseded")
                    return
                if self.reason is None and self.redis.exists(cancel_key(self.run_id)):
                    self.stop("cancel")
                    cancel_seen = time.monotonic()
            except REDIS_DOWN as exc:
                log.warning("run %s: lease not renewed, Redis unreachable (%s)", self.run_id, exc)
                continue
            if _shutting_down():
                self.stop("shutdown")
            if self.deadline.expired():  # the solo pool does not enforce Celery's time limits itself
                self.stop("time limit")
            if (self.reason == "cancel" and not self.cancel_published
                    and time.monotonic() - cancel_seen > self.cancel_grace):
                try:  # a long step: say so now; the step finishes in the background and saves nothing new
                    self.cancel_published = self.lease.publish(StatusEvent(
                        status="cancelled", time=time.time(), attempt=self.lease.attempt,
                        reason="cancelled during a long step"), end_state="done") is not None
                except REDIS_DOWN:
                    pass


class StreamPublisher:
    """The train-loop callbacks: frames and status to the run's stream (fenced), checkpoints to the
    run's files (worker/files.py: this host's folder, and the web server when it is another host)."""

    def __init__(self, lease: Lease, watch: RunWatch, run_id: str, files: RunFiles, retry_seconds: float):
        self.lease, self.watch, self.run_id, self.files = lease, watch, run_id, files
        self.retry_seconds = retry_seconds

    def publish(self, event: Event, end_state: str = "") -> str | None:
        entry = retrying(f"run {self.run_id}: publish {kind_of(event)}", lambda: self.lease.publish(event, end_state),
                         self.retry_seconds)
        if entry is None:  # this attempt no longer holds the run: write nothing more
            self.watch.stop("superseded")
        return entry

    def status(self, status: str, end_state: str = "", **extra) -> None:
        self.publish(StatusEvent(status=status, time=time.time(), attempt=self.lease.attempt, **extra), end_state)

    def on_frame(self, frame: dict) -> None:
        self.publish(Frame.model_validate({**frame, "attempt": self.lease.attempt}))

    def should_stop(self) -> bool:
        return self.watch.reason is not None

    def on_checkpoint(self, state: dict, weights: dict) -> None:
        if self.watch.reason == "superseded":  # the newer attempt owns the files now
            return
        try:
            self.files.save(state, weights, self.lease.attempt)
        except Superseded:
            self.watch.stop("superseded")

    def load_checkpoint(self) -> dict | None:
        return self.files.load_checkpoint()


def environment_record(device: torch.device) -> dict:
    return {"torch": torch.__version__, "cuda": torch.version.cuda, "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "hostname": os.uname().nodename, "code": code_version()}


def redis_client(settings: WorkerSettings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url, socket_timeout=10, socket_connect_timeout=5,
                                health_check_interval=15)


@app.task(name=TASK_NAME, bind=True)
def train_run(self, run_id: str, config: dict) -> str:
    settings = get_settings()
    client = redis_client(settings)
    host, device = os.uname().nodename, gpu_slots.device_id()
    slot = None
    if device is not None:  # worker processes may share this GPU; a run may want it to itself
        slot = GpuSlot(client, host, self.request.hostname or host, device)
        whole = bool((config.get("train") or {}).get("whole_gpu"))
        if not retrying(f"run {run_id}: GPU slot", lambda: slot.enter(whole, run_id, _shutting_down),
                        settings.redis_retry_seconds):
            time.sleep(2.0)  # the device is held whole: hand the task back, after a pause, not in a spin
            raise Reject("the GPU is held by a whole-GPU run", requeue=True)
    try:
        return _attempt(self, settings, client, host, run_id, config, slot)
    finally:
        if slot is not None:
            try:
                slot.leave()
            except REDIS_DOWN:
                pass  # its marks expire on their own


def _attempt(self, settings: WorkerSettings, client: redis.Redis, host: str, run_id: str, config: dict,
             slot: GpuSlot | None) -> str:
    lease = Lease(client, run_id, worker=f"{self.request.hostname or host}:{os.getpid()}", host=host,
                  ttl_seconds=settings.lease_ttl_seconds)
    claim = retrying(f"run {run_id}: claim", lease.claim, settings.redis_retry_seconds)
    if claim != "claimed":  # done, cancelled while queued, or a duplicate delivery of a held run
        log.info("run %s: not started (%s)", run_id, claim)
        return claim
    presence.current.update(run=run_id, attempt=lease.attempt)
    watch = RunWatch(lease, client, run_id, Deadline.from_timelimit(self.request.timelimit), slot, settings)
    watch.start()
    files = RunFiles(run_id, settings.artifacts_dir / run_id, settings.server_url, settings.worker_token,
                     settings.redis_retry_seconds)
    publisher = StreamPublisher(lease, watch, run_id, files, settings.redis_retry_seconds)
    outcome = "failed"
    try:
        cfg = RunConfig.model_validate(config)
        if settings.device:
            cfg.train.device = settings.device
        device_choice = None
        if cfg.train.device == "auto":  # small models stay off the GPU, and the record says why
            cfg.train.device, device_choice = choose_device(cfg, torch.cuda.is_available())
        resume = publisher.load_checkpoint()
        device = resolve_device(cfg.train.device)
        free_cuda = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else None
        too_big = check_memory(cfg, device_available_bytes(device.type, free_cuda))
        if too_big:
            publisher.status("failed", end_state="done", error=f"memory: {too_big}")
            return outcome
        publisher.status("running", environment={**environment_record(device), "device_choice": device_choice},
                         host=host, worker=lease.worker,
                         resumed_from_step=int(resume["step"]) if resume else None, taken_over=lease.taken_over)
        result = train(cfg, publisher, resume=resume, data_root=settings.data_root)
        if result == "succeeded" or watch.reason == "cancel":
            outcome = "succeeded" if result == "succeeded" else "cancelled"
            publisher.status(outcome, end_state="done")
        elif watch.reason == "time limit":
            publisher.status("failed", end_state="done", error=f"{TIME_LIMIT_ERROR}: ran longer than "
                             f"{watch.deadline.seconds:.0f} s")
        elif watch.reason == "shutdown":
            outcome = "requeued"
            reason = "worker shut down; re-queued to resume from its checkpoint"
            retrying(f"run {run_id}: release", lambda: lease.release(reason), settings.redis_retry_seconds)
            raise Reject("worker shutting down", requeue=True)
        else:
            outcome = "superseded"
    except Reject:
        raise
    except TrainingDiverged as exc:
        publisher.status("failed", end_state="done", error=str(exc))
    except Exception as exc:  # a crash is the run's result, not a reason to redeliver the task
        log.error("run %s failed:\n%s", run_id, traceback.format_exc())
        publisher.status("failed", end_state="done", error=f"{type(exc).__name__}: {exc}")
    finally:
        presence.current.update(run=None, attempt=None, runs_done=presence.current["runs_done"] + 1)
        watch.finished.set()
        watch.join(timeout=5)
        if outcome not in ("requeued", "superseded"):
            try:
                client.expire(stream_key(run_id), settings.stream_ttl_seconds)
            except REDIS_DOWN:
                pass
    return outcome
