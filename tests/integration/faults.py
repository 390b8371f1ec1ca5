"""Helpers for fault tests: a stack whose parts can be killed and restarted one by one, and an SSE
follower that reconnects with Last-Event-ID as a browser's EventSource does."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import redis

from tests import services


class FaultStack:
    """Redis (append-only file, fixed port, so a restart finds its data), web app, workers."""

    def __init__(self, tmp: Path, logs: Path, name: str, **settings: str):
        self.tmp, self.logs, self.name = tmp, logs, name
        self.port = services.free_port()
        self.redis_url = f"redis://127.0.0.1:{self.port}/0"
        self.env = services.service_env(self.redis_url, tmp)
        self.env.update({"PINWHEEL_LEASE_TTL_SECONDS": "3", "PINWHEEL_SSE_HEARTBEAT_SECONDS": "2", **settings})
        self.redis_proc = self.app = None
        self.workers: list[subprocess.Popen] = []
        self.start_redis()
        self.app, self.url = services.start_app(self.env, logs / f"{name}-app.log")
        self.api = httpx.Client(base_url=self.url, timeout=30, headers=services.auth_headers())

    def start_redis(self) -> None:
        (self.tmp / "redis").mkdir(exist_ok=True)
        self.redis_proc = subprocess.Popen(
            [services.redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.tmp / "redis"), "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
            stdout=open(self.logs / f"{self.name}-redis.log", "ab"), stderr=subprocess.STDOUT)
        services.wait_until(lambda: redis.Redis.from_url(self.redis_url).ping(), 30, "redis-server")

    def kill_redis(self) -> None:
        self.redis_proc.send_signal(signal.SIGKILL)
        self.redis_proc.wait()

    def start_worker(self, *args: str, name: str | None = None, **env: str) -> subprocess.Popen:
        log = self.logs / f"{self.name}-worker-{len(self.workers) + 1}.log"
        worker = services.start_worker({**self.env, **env}, log, *args, name=name)
        self.workers.append(worker)
        return worker

    def stop(self) -> None:
        for proc in [*self.workers, self.app, self.redis_proc]:
            if proc is not None and proc.poll() is None:
                services.stop(proc)

    def run(self, run_id: str) -> dict:
        return self.api.get(f"/api/runs/{run_id}").json()

    def wait_for(self, run_id: str, check, timeout: float, what: str) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                run = self.run(run_id)
                if check(run):
                    return run
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{what} within {timeout}s: {self.run(run_id)}")

    def stored_steps(self, run_id: str) -> list[int]:
        """Persisted frames in the order they were stored (by id): what /frames pages through."""
        import sqlite3

        with sqlite3.connect(self.tmp / "pinwheel.db") as db:
            return [s for (s,) in db.execute("select step from frames where run_id = ? order by id", (run_id,))]


class Follower(threading.Thread):
    """Reads a run's events to its terminal status, reconnecting with Last-Event-ID when dropped."""

    def __init__(self, url: str, run_id: str, timeout: float = 300):
        super().__init__(daemon=True)
        self.url, self.run_id, self.deadline = url, run_id, time.monotonic() + timeout
        self.events: list[tuple[str, str, dict]] = []
        self.reconnects = 0
        self.comments = 0

    def run(self) -> None:
        last = None
        with httpx.Client(base_url=self.url, timeout=httpx.Timeout(30, read=60), headers=services.auth_headers()) as c:
            while time.monotonic() < self.deadline:
                try:
                    headers = {"Last-Event-ID": last} if last else {}
                    with c.stream("GET", f"/api/runs/{self.run_id}/events", headers=headers) as res:
                        event_id = kind = None
                        for line in res.iter_lines():
                            if line.startswith(":"):
                                self.comments += 1
                            elif line.startswith("id: "):
                                event_id = line[4:]
                            elif line.startswith("event: "):
                                kind = line[7:]
                            elif line.startswith("data: ") and event_id:
                                data = json.loads(line[6:])
                                self.events.append((event_id, kind, data))
                                last = event_id
                                if kind == "status" and data["status"] in ("succeeded", "failed", "cancelled"):
                                    return
                except (httpx.HTTPError, OSError):
                    pass
                self.reconnects += 1
                time.sleep(0.3)

    def final_status(self) -> str | None:
        statuses = [d["status"] for _, kind, d in self.events if kind == "status"]
        return statuses[-1] if statuses else None

    def timeline(self) -> list[int]:
        """The steps a viewer's timeline holds: a resumed attempt drops what it redoes (as run_page.js)."""
        steps: list[int] = []
        for _, kind, data in self.events:
            if kind == "status" and data["status"] == "running" and (
                    data.get("resumed_from_step") is not None or (data.get("attempt") or 1) > 1):
                cut = data.get("resumed_from_step") or 0
                steps = [s for s in steps if s < cut]
            elif kind == "frame" and (not steps or data["step"] > steps[-1]):
                steps.append(data["step"])
        return steps

    def redone(self) -> list[tuple[int, float]]:
        """For each resume: (steps, seconds of training) the lost attempt did past the checkpoint the
        new attempt resumed from (its first frame is at that step, with the checkpoint's wall time)."""
        out, frames, pending = [], [], None
        for _, kind, data in self.events:
            if kind == "frame":
                if pending is not None and data["step"] == pending[0]:
                    out.append((pending[1]["step"] - pending[0], pending[1]["wall_time"] - data["wall_time"]))
                    pending = None
                frames.append(data)
            elif kind == "status" and data["status"] == "running" and data.get("resumed_from_step") is not None:
                cut = data["resumed_from_step"]
                lost = [f for f in frames if f["step"] >= cut]
                pending = (cut, max(lost, key=lambda f: f["step"])) if lost else None
                frames = [f for f in frames if f["step"] < cut]
        return out


def kill(proc: subprocess.Popen, sig=signal.SIGKILL) -> None:
    os.kill(proc.pid, sig)
    proc.wait(timeout=60)
