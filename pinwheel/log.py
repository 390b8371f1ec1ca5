"""Your own training loop, live in Pinwheel: the same run page, timeline, sharing and exports as a preset.

    import pinwheel.log
    run = pinwheel.log.init("http://127.0.0.1:8000", token, name="my SAE", config={"lam": 0.1}, total_steps=5000)
    for step in range(5000):
        ...                                     # your training step
        if step % 25 == 0:
            run.log(step, metrics={"loss": loss.item()}, filters=W_dec.T, layout="grid",
                    codes=z, inputs=x, reconstructions=x_hat)
        if run.should_stop:                     # Cancel on the run's page
            break
    run.finish(weights={"W_d": W_dec})

What the loop pays: run.log checks the shapes (a wrong one raises LogArgumentError naming the
argument, before anything is sent) and copies the arrays; everything else — panels (the project's
own producers), JSON, HTTP — happens on one background thread at low priority. When that thread
is slower than the loop, a newer frame replaces the waiting one (its metrics are averaged into
the newer frame's, as the worker averages metrics between frames), so run.log never blocks.
Nothing here imports torch; tensors are copied to numpy through their own methods.
"""
from __future__ import annotations

import atexit
import io
import math
import os
import platform
import socket
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np

from ._client_panels import Arrays, LogArgumentError, check_arrays, to_array
from .client import Client, PinwheelError

__all__ = ["init", "Run", "LogArgumentError", "PinwheelError"]
HEARTBEAT_SECONDS = 5.0  # a silent loop still tells the server it is alive (and hears a cancel)
FINISH_TIMEOUT = 60.0  # finish() waits this long for the last frame to go out


@dataclass
class _Pending:
    step: int
    wall_time: float
    time: float
    metric_sums: dict
    metric_counts: dict
    arrays: Arrays | None
    total_steps: int


def _metrics(metrics: dict | None) -> dict[str, float]:
    out = {}
    for name, value in (metrics or {}).items():
        if not isinstance(name, str) or not name or len(name) > 100:
            raise LogArgumentError(f"metrics: names must be strings of 1-100 characters, got {name!r}")
        if hasattr(value, "item"):
            value = value.item()  # a 0-d tensor or numpy scalar
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise LogArgumentError(f"metrics[{name!r}]: expected a number, got {type(value).__name__}")
        out[name] = float(value)
    return out


def _environment() -> dict:
    env = {"device": "external", "hostname": socket.gethostname(), "python": platform.python_version(),
           "numpy": np.__version__}
    torch = sys.modules.get("torch")  # recorded only when the user's code already imported it
    if torch is not None:
        env["torch"] = getattr(torch, "__version__", None)
        env["cuda"] = getattr(getattr(torch, "version", None), "cuda", None)
    return env


class Run:
    """One external run. Create it with `init`."""

    def __init__(self, client: Client, record, total_steps: int, min_interval: float):
        self.client = client
        self.id = record.id
        self.url = client.run_url(record.id)
        self.total_steps = total_steps
        self.min_interval = min_interval
        self.status = "running"
        self.error: str | None = None  # the last failure of the background thread (network, server)
        self.frames_sent = 0
        self.frames_merged = 0  # frames replaced by a newer one before they were sent
        self.thread_cpu_seconds = 0.0  # CPU the background thread spent on panels, JSON and HTTP
        self._started = time.monotonic()
        self._last_step = -1
        self._pending: _Pending | None = None
        self._stop_flag = False
        self._finished = False
        self._closing = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._send_loop, name=f"pinwheel-log-{self.id[:8]}", daemon=True)
        self._thread.start()
        atexit.register(self._at_exit)

    # --- the user's thread ------------------------------------------------------------------------
    @property
    def should_stop(self) -> bool:
        """True once the run was cancelled from its page (or ended on the server): leave the loop."""
        return self._stop_flag

    def log(self, step: int, metrics: dict | None = None, *, filters=None, layout="list", codes=None, inputs=None,
            reconstructions=None, filter_shape: tuple[int, int] | None = None) -> None:
        """One frame. filters: (units, h, w) or (units, h*w); layout: "grid" | (rows, cols) | a tree's
        parents list (-1 for roots) | "list"; codes: (batch, units); inputs and reconstructions:
        (batch, h*w) or (batch, h, w), both or neither."""
        if self._finished:
            raise RuntimeError("run.log after run.finish()")
        if not isinstance(step, (int, np.integer)) or isinstance(step, bool) or step < 0:
            raise LogArgumentError(f"step: expected a non-negative integer, got {step!r}")
        step = int(step)
        if step < self._last_step:
            raise LogArgumentError(f"step: {step} comes before the last logged step {self._last_step}")
        values = _metrics(metrics)
        wants_panels = any(a is not None for a in (filters, codes, inputs, reconstructions))
        arrays = check_arrays(filters, layout, codes, inputs, reconstructions, filter_shape) if wants_panels else None
        self._last_step = step
        with self._cond:
            prev = self._pending
            sums, counts = (dict(prev.metric_sums), dict(prev.metric_counts)) if prev else ({}, {})
            if prev:
                self.frames_merged += 1
            for name, value in values.items():
                if math.isfinite(value):
                    sums[name] = sums.get(name, 0.0) + value
                    counts[name] = counts.get(name, 0) + 1
                else:
                    sums.setdefault(name, value)
            self._pending = _Pending(step, round(time.monotonic() - self._started, 4), time.time(), sums, counts,
                                     arrays if arrays is not None else (prev.arrays if prev else None),
                                     max(self.total_steps, step))
            self._cond.notify()

    def finish(self, status: str = "succeeded", error: str | None = None, weights: dict | None = None,
               timeout: float = FINISH_TIMEOUT) -> str:
        """Send the last frame, the weights (arrays by name, stored as the run's weights.npz) and the end.
        Returns the run's final status (`cancelled` when it was cancelled from its page)."""
        if self._finished:
            return self.status
        blob = self._weights_npz(weights) if weights else None
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout)
        self._finished = True
        try:
            if blob is not None:
                self.client.request("PUT", f"/api/external/runs/{self.id}/weights.npz", content=blob,
                                    headers={"Content-Type": "application/octet-stream"})
            answer = self.client.request("POST", f"/api/external/runs/{self.id}/finish",
                                         json={"status": status, **({"error": error[:2000]} if error else {})}).json()
            self.status = answer["status"]
        finally:
            self.client.close()
        return self.status

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, kind, value, tb) -> None:
        if kind is None:
            self.finish()
        else:
            self.finish("failed", error=f"{kind.__name__}: {value}")

    @staticmethod
    def _weights_npz(weights: dict) -> bytes:
        arrays = {}
        for name, value in weights.items():
            if not isinstance(name, str) or not name.replace("_", "").replace(".", "").isalnum():
                raise LogArgumentError(f"weights: array names must be letters, digits, '_' or '.', got {name!r}")
            arrays[name] = to_array(value, f"weights[{name!r}]")
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()

    def _at_exit(self) -> None:
        if not self._finished:  # the script ended without finish(): end the run rather than leave it running
            try:
                self.finish(timeout=10)
            except Exception:
                pass

    # --- the logging thread -----------------------------------------------------------------------
    def _send_loop(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)  # Linux: this thread only
        except (AttributeError, OSError):
            pass
        from ._client_panels import produce

        last_sent = 0.0
        while True:
            with self._cond:
                if self._pending is None and not self._closing:
                    self._cond.wait(timeout=HEARTBEAT_SECONDS)
                if self._pending is None:
                    if self._closing:
                        return
                    pending = None
                else:
                    wait = self.min_interval - (time.monotonic() - last_sent)
                    if wait > 0 and not self._closing:
                        self._cond.wait(timeout=wait)  # let frames gather: the newest goes out
                        continue
                    pending, self._pending = self._pending, None
            if pending is None:  # silence: a heartbeat (never under the lock: log() must not wait on HTTP)
                self._heartbeat()
                continue
            cpu = time.thread_time()
            self._send(pending, produce)
            self.thread_cpu_seconds += time.thread_time() - cpu
            last_sent = time.monotonic()

    def _heartbeat(self) -> None:
        try:
            answer = self.client.request("GET", f"/api/external/runs/{self.id}/control").json()
            self._stop_flag = self._stop_flag or answer["should_stop"]
        except PinwheelError as exc:
            self.error = str(exc)

    def _send(self, pending: _Pending, produce) -> None:
        metrics = {n: (s / pending.metric_counts[n] if pending.metric_counts.get(n) else None)
                   for n, s in pending.metric_sums.items()}
        try:
            panels = produce(pending.arrays) if pending.arrays is not None else {}
        except Exception as exc:  # a producer failing must not end the user's training
            self.error = f"panels: {type(exc).__name__}: {exc}"
            panels = {}
        frame = {"step": pending.step, "total_steps": pending.total_steps, "wall_time": pending.wall_time,
                 "time": pending.time, "metrics": metrics, "panels": panels}
        for attempt in range(3):
            try:
                answer = self.client.request("POST", f"/api/external/runs/{self.id}/frames", json=frame).json()
                self._stop_flag = self._stop_flag or answer["should_stop"]
                self.frames_sent += 1
                return
            except PinwheelError as exc:
                self.error = str(exc)
                if exc.status and exc.status < 500:
                    if exc.status in (404, 409):
                        self._stop_flag = True  # the run is gone or no longer ours to log to
                    return
                time.sleep(min(5.0, 0.5 * 2 ** attempt))  # the server or network is down: a short retry, then drop


def init(server: str | None = None, token: str | None = None, *, name: str = "external run", config: dict | None = None,
         total_steps: int = 0, tags: list[str] | None = None, min_interval: float = 1.0) -> Run:
    """Start a run on the server (its page exists at once) and the background sender.

    server / token default to PINWHEEL_URL / PINWHEEL_TOKEN, then the file `pinwheel login` wrote.
    min_interval: the least time between frames sent (a faster loop has its frames merged); each frame
    costs ~10-20 ms of CPU off the loop (panels, JSON) and as much in the web app, so 1 s keeps
    logging near 2 % of a core (bench/log_overhead.py)."""
    from ._client_config import resolve

    server, token = resolve(server or os.environ.get("PINWHEEL_URL"), token or os.environ.get("PINWHEEL_TOKEN"))
    if not server:
        raise PinwheelError("server", "no server given; pass it, set PINWHEEL_URL, or run `pinwheel login URL`")
    if not isinstance(total_steps, int) or total_steps < 0:
        raise LogArgumentError(f"total_steps: expected a non-negative integer, got {total_steps!r}")
    client = Client(server, token)
    body = {"name": name, "config": config or {}, "total_steps": total_steps, "environment": _environment(),
            "tags": tags or [],
            "client": {"script": os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else None,
                       "host": socket.gethostname(), "pid": os.getpid()}}
    try:
        from ._client_models import RunInfo

        record = RunInfo.model_validate(client.request("POST", "/api/external/runs", json=body).json())
    except BaseException:
        client.close()
        raise
    return Run(client, record, total_steps, min_interval)
