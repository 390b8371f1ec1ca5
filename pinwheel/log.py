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
own producers), JSON, HTTP — happens in a sender process at nice 19 (pinwheel/_client_sender.py),
fed by one background thread through a pipe, so nothing shares the loop's GIL. When the sender is
slower than the loop, a newer frame replaces the waiting one (its metrics are averaged into the
newer frame's, as the worker averages metrics between frames), so run.log never blocks.
Nothing here imports torch; tensors are copied to numpy through their own methods.
"""
from __future__ import annotations

import atexit
import io
import json
import math
import os
import platform
import socket
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np

from . import _client_sender as _sender
from ._client_panels import Arrays, LogArgumentError, check_arrays, to_array
from .client import Client, PinwheelError

__all__ = ["init", "Run", "LogArgumentError", "PinwheelError"]
HEARTBEAT_SECONDS = 5.0  # a silent loop still tells the server it is alive (and hears a cancel)
FINISH_TIMEOUT = 60.0  # finish() waits this long for the last frame to go out
READY_TIMEOUT = 60.0  # init() waits this long for the sender process to load the panel producers


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

    def __init__(self, client: Client, record, total_steps: int, min_interval: float, sender: str = "process"):
        self.client = client
        self.id = record.id
        self.url = client.run_url(record.id)
        self.total_steps = total_steps
        self.min_interval = min_interval
        self.status = "running"
        self.error: str | None = None  # the last failure of the background thread (network, server)
        self.frames_sent = 0
        self.frames_merged = 0  # frames replaced by a newer one before they were sent
        self.thread_cpu_seconds = 0.0  # CPU the logging thread spent (pipe writes; all the work when in-thread)
        self.sender_cpu_seconds = 0.0  # CPU the sender process spent on panels, JSON and HTTP
        self._transport = _ChildProcess(client, record.id) if sender == "process" else _InThread(client, record.id)
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
        if isinstance(self._transport, _InThread):  # the panels run here: behind the training loop
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)  # Linux: this thread only
            except (AttributeError, OSError):
                pass
        last_sent = 0.0
        while True:
            with self._cond:
                if self._pending is None and not self._closing:
                    self._cond.wait(timeout=HEARTBEAT_SECONDS)
                if self._pending is None:
                    if self._closing:
                        self._transport.close()
                        return
                    pending = None
                else:
                    wait = self.min_interval - (time.monotonic() - last_sent)
                    if wait > 0 and not self._closing:
                        self._cond.wait(timeout=wait)  # let frames gather: the newest goes out
                        continue
                    pending, self._pending = self._pending, None
            # never under the lock: log() must not wait on the pipe or HTTP
            if pending is None:
                self._apply(self._transport.heartbeat())
                continue
            metrics = {n: (s / pending.metric_counts[n] if pending.metric_counts.get(n) else None)
                       for n, s in pending.metric_sums.items()}
            frame = {"step": pending.step, "total_steps": pending.total_steps, "wall_time": pending.wall_time,
                     "time": pending.time, "metrics": metrics}
            cpu = time.thread_time()
            reply = self._transport.frame(frame, pending.arrays)
            self.thread_cpu_seconds += time.thread_time() - cpu
            self._apply(reply)
            last_sent = time.monotonic()

    def _apply(self, reply: dict) -> None:
        self._stop_flag = self._stop_flag or bool(reply.get("should_stop"))
        self.frames_sent += bool(reply.get("sent"))
        if reply.get("error"):
            self.error = reply["error"]
        if "cpu" in reply:
            self.sender_cpu_seconds = reply["cpu"]


class _InThread:
    """Panels and HTTP on the logging thread itself (the fallback when no child process can run)."""

    def __init__(self, client: Client, run_id: str):
        self.client, self.run_id = client, run_id

    def frame(self, frame: dict, arrays: Arrays | None) -> dict:
        return _sender.deliver(self.client, self.run_id, frame, arrays)

    def heartbeat(self) -> dict:
        return _sender.heartbeat(self.client, self.run_id)

    def close(self) -> None:
        pass


class _ChildProcess:
    """Panels and HTTP in `python -m pinwheel._client_sender` (nice 19): the user's process only writes
    the arrays down a pipe, so no GIL is shared with the training loop. A child that dies hands over
    to the in-thread way."""

    def __init__(self, client: Client, run_id: str):
        import subprocess

        self.fallback = _InThread(client, run_id)
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the child imports this pinwheel
        # one BLAS/OpenMP thread: the panels' small products gain nothing from more, and idle BLAS
        # threads spin (bench/log_overhead.py: 77 ms of CPU a frame with the defaults, 14 ms with one)
        threads = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
        env = {**os.environ, **threads, "PINWHEEL_SENDER_TOKEN": client.token or "",
               "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
        self.proc = subprocess.Popen([sys.executable, "-m", "pinwheel._client_sender", client.url, run_id],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self.dead = False
        # init() waits (once, before the loop starts) for the child's imports, so the first frames
        # are not merged away while it loads; a child not ready in READY_TIMEOUT is given up
        ready = threading.Event()
        reader = threading.Thread(target=lambda: (self.proc.stdout.readline(), ready.set()), daemon=True)
        reader.start()
        if not ready.wait(READY_TIMEOUT) or self.proc.poll() is not None:
            self.dead = True
            self.proc.kill()

    def _call(self, buffers: list[bytes]) -> dict | None:
        if self.dead:
            return None
        try:
            for buf in buffers:
                self.proc.stdin.write(buf)
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
            if line:
                return json.loads(line)
        except (OSError, ValueError):
            pass
        self.dead = True
        return None

    def frame(self, frame: dict, arrays: Arrays | None) -> dict:
        reply = self._call(_sender.encode("frame", frame, arrays))
        return reply if reply is not None else self.fallback.frame(frame, arrays)

    def heartbeat(self) -> dict:
        reply = self._call(_sender.encode("heartbeat"))
        return reply if reply is not None else self.fallback.heartbeat()

    def close(self) -> None:
        if not self.dead:
            try:
                for buf in _sender.encode("close"):
                    self.proc.stdin.write(buf)
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()


def init(server: str | None = None, token: str | None = None, *, name: str = "external run", config: dict | None = None,
         total_steps: int = 0, tags: list[str] | None = None, min_interval: float = 1.0,
         sender: str = "process") -> Run:
    """Start a run on the server (its page exists at once) and the background sender.

    server / token default to PINWHEEL_URL / PINWHEEL_TOKEN, then the file `pinwheel login` wrote.
    min_interval: the least time between frames sent (a faster loop has its frames merged); each frame
    costs ~10-20 ms of CPU off the loop (panels, JSON) and as much in the web app, so 1 s keeps
    logging near 2 % of a core (bench/log_overhead.py). sender: "process" (panels and HTTP in a child
    process, no GIL shared with the loop) or "thread" (all on the logging thread)."""
    if sender not in ("process", "thread"):
        raise LogArgumentError(f"sender: expected 'process' or 'thread', got {sender!r}")
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
    return Run(client, record, total_steps, min_interval, sender)
