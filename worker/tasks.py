"""The training task: runs pinwheel.train with a callback that publishes frames to Redis."""
from __future__ import annotations

import json
import logging
import os
import time
import traceback
from pathlib import Path

import numpy as np
import redis
import torch
from safetensors.torch import save_file as save_safetensors

from pinwheel.configs import RunConfig
from pinwheel.protocol import TASK_NAME, cancel_key, stream_key
from pinwheel.provenance import code_version
from pinwheel.train import TrainingDiverged, resolve_device, train

from .celery_app import app
from .settings import settings

log = logging.getLogger(__name__)


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def _save_npz(path: Path, arrays: dict) -> None:
    with open(path, "wb") as f:  # a file object, so numpy does not append another ".npz"
        np.savez(f, **arrays)


class StreamPublisher:
    """The train-loop callbacks: frames and status to the run's Redis Stream, checkpoints to disk."""

    def __init__(self, client: redis.Redis, run_id: str, artifacts: Path):
        self.redis, self.run_id, self.artifacts = client, run_id, artifacts
        self.key = stream_key(run_id)

    def publish(self, kind: str, data: dict) -> str:
        return self.redis.xadd(self.key, {"type": kind, "data": json.dumps(data)},
                               maxlen=settings.stream_maxlen, approximate=True)

    def status(self, status: str, **extra) -> None:
        self.publish("status", {"status": status, "time": time.time(), **extra})

    def on_frame(self, frame: dict) -> None:
        self.publish("frame", frame)

    def should_stop(self) -> bool:
        return bool(self.redis.exists(cancel_key(self.run_id)))

    def on_checkpoint(self, state: dict, weights: dict) -> None:
        self.artifacts.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.artifacts / "checkpoint.pt", lambda p: torch.save(state, p))
        _atomic_write(self.artifacts / "weights.npz", lambda p: _save_npz(p, weights))
        model = {k: v.detach().cpu().contiguous().clone() for k, v in state["model"].items()}  # no pickle: for bundles
        _atomic_write(self.artifacts / "checkpoint.safetensors",
                      lambda p: save_safetensors(model, str(p), metadata={"step": str(state["step"])}))

    def load_checkpoint(self) -> dict | None:
        path = self.artifacts / "checkpoint.pt"
        return torch.load(path, weights_only=True, map_location="cpu") if path.exists() else None


def environment_record(device: torch.device) -> dict:
    return {"torch": torch.__version__, "cuda": torch.version.cuda, "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "hostname": os.uname().nodename, "code": code_version()}


@app.task(name=TASK_NAME)
def train_run(run_id: str, config: dict) -> str:
    client = redis.Redis.from_url(settings.redis_url)
    publisher = StreamPublisher(client, run_id, settings.artifacts_dir / run_id)
    try:
        cfg = RunConfig.model_validate(config)
        if settings.device:
            cfg.train.device = settings.device
        if publisher.should_stop():  # cancelled while still queued
            publisher.status("cancelled")
            return "cancelled"
        resume = publisher.load_checkpoint()
        device = resolve_device(cfg.train.device)
        publisher.status("running", environment=environment_record(device),
                         resumed_from_step=resume["step"] if resume else None)
        outcome = train(cfg, publisher, resume=resume, data_root=settings.data_root)
        publisher.status(outcome)
    except TrainingDiverged as exc:
        outcome = "failed"
        publisher.status("failed", error=str(exc))
    except Exception as exc:  # a crash is the run's result, not a reason to redeliver the task
        outcome = "failed"
        log.error("run %s failed:\n%s", run_id, traceback.format_exc())
        publisher.status("failed", error=f"{type(exc).__name__}: {exc}")
    finally:
        client.expire(publisher.key, settings.stream_ttl_seconds)
    return outcome
