"""A run's files as one worker sees them: written to its own folder, and — when the worker runs on
another host (settings.server_url) — handed to the web server over HTTP, which is where downloads
and a resume on any other host find them. No disk is shared between machines."""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import httpx
import numpy as np
import torch
from safetensors.torch import save_file as save_safetensors

log = logging.getLogger(__name__)
FILES = ("checkpoint.pt", "weights.npz", "checkpoint.safetensors")


class Superseded(RuntimeError):
    """The web side refused the upload: another attempt holds the run now."""


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def _save_npz(path: Path, arrays: dict) -> None:
    with open(path, "wb") as f:  # a file object, so numpy does not append another ".npz"
        np.savez(f, **arrays)


class RunFiles:
    def __init__(self, run_id: str, folder: Path, server_url: str | None, token: str | None, retry_seconds: float):
        self.run_id, self.folder, self.retry_seconds = run_id, folder, retry_seconds
        self.http = None
        if server_url:
            self.http = httpx.Client(base_url=server_url.rstrip("/"), timeout=httpx.Timeout(60, connect=10),
                                     headers={"Authorization": f"Bearer {token or ''}"})

    def save(self, state: dict, weights: dict, attempt: int) -> None:
        """Checkpoint, weights.npz and a pickle-free safetensors copy; uploaded when a server is set.
        Raises Superseded when the web side says another attempt holds the run."""
        self.folder.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.folder / "checkpoint.pt", lambda p: torch.save(state, p))
        _atomic_write(self.folder / "weights.npz", lambda p: _save_npz(p, weights))
        model = {k: v.detach().cpu().contiguous().clone() for k, v in state["model"].items()}  # no pickle: bundles
        _atomic_write(self.folder / "checkpoint.safetensors",
                      lambda p: save_safetensors(model, str(p), metadata={"step": str(state["step"])}))
        if self.http is not None:
            for name in FILES:
                self._upload(name, attempt)

    def _upload(self, name: str, attempt: int) -> None:
        url = f"/api/worker/runs/{self.run_id}/files/{name}"
        deadline, delay = time.monotonic() + self.retry_seconds, 0.5
        while True:
            try:
                with open(self.folder / name, "rb") as f:
                    res = self.http.put(url, content=f, headers={"X-Pinwheel-Attempt": str(attempt)})
                if res.status_code == 409:
                    raise Superseded(res.json().get("detail", "superseded"))
                if res.status_code < 500:
                    res.raise_for_status()
                    return
                problem = f"HTTP {res.status_code}"
            except httpx.TransportError as exc:  # the web server restarting, or the network
                problem = str(exc) or type(exc).__name__
            if time.monotonic() > deadline:
                raise RuntimeError(f"could not hand {name} to the web server: {problem}")
            log.warning("run %s: upload of %s failed (%s); retrying in %.1f s", self.run_id, name, problem, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)

    def load_checkpoint(self) -> dict | None:
        """The newest checkpoint: the web server's when there is one (another host may have written
        it), else this folder's. Loaded without pickle (weights_only)."""
        path = self.folder / "checkpoint.pt"
        if self.http is not None:
            path = self._download("checkpoint.pt")
        if path is None or not path.exists():
            return None
        return torch.load(path, weights_only=True, map_location="cpu")

    def _download(self, name: str) -> Path | None:
        deadline, delay = time.monotonic() + self.retry_seconds, 0.5
        while True:
            try:
                with self.http.stream("GET", f"/api/worker/runs/{self.run_id}/files/{name}") as res:
                    if res.status_code == 404:
                        return None
                    if res.status_code < 500:
                        res.raise_for_status()
                        self.folder.mkdir(parents=True, exist_ok=True)
                        target = self.folder / name
                        _atomic_write(target, lambda p: p.write_bytes(res.read()))
                        return target
                    problem = f"HTTP {res.status_code}"
            except httpx.TransportError as exc:
                problem = str(exc) or type(exc).__name__
            if time.monotonic() > deadline:
                raise RuntimeError(f"could not fetch {name} from the web server: {problem}")
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
