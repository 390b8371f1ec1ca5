"""`make run`'s launcher: starts embedded Redis + worker + web, refuses a second copy, stops cleanly."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
import redis

from tests.conftest import TINY_RUN
from tests.services import ADMIN_TOKEN, ROOT, auth_headers, free_port, wait_until


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_launcher_runs_refuses_a_second_copy_and_stops_everything(tmp_path):
    web_port, redis_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "PINWHEEL_ADMIN_TOKEN")}
    env.update(PINWHEEL_VAR_DIR=str(tmp_path), PINWHEEL_PORT=str(web_port), PINWHEEL_REDIS_PORT=str(redis_port),
               CUDA_VISIBLE_DEVICES="", PINWHEEL_DEVICE="cpu")
    cmd = [sys.executable, str(ROOT / "scripts" / "launch.py")]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = first.stdout.readline()
            lines.append(line)
            if "Ctrl-C" in line or not line:
                break
        out = "".join(lines)
        assert f"http://127.0.0.1:{web_port}/" in out and "#/login?token=" in out, out
        assert httpx.get(f"http://127.0.0.1:{web_port}/api/health").json() == {"ok": True}
        assert port_open(redis_port)

        second = subprocess.run(cmd, env={**env, "PINWHEEL_PORT": str(free_port())}, capture_output=True,
                                text=True, timeout=30)
        assert second.returncode == 1 and "already running" in second.stderr

        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=40) == 0
        assert not port_open(web_port) and not port_open(redis_port)
        assert (tmp_path / "redis" / "appendonly.aof").exists() or (tmp_path / "redis" / "appendonlydir").exists()
    finally:
        if first.poll() is None:
            first.kill()


class Launcher:
    """scripts/launch.py as `make run` starts it, in its own var folder and ports."""

    def __init__(self, tmp_path):
        self.var, self.web_port, self.redis_port = tmp_path, free_port(), free_port()
        self.env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        self.env.update(PINWHEEL_VAR_DIR=str(tmp_path), PINWHEEL_PORT=str(self.web_port),
                        PINWHEEL_REDIS_PORT=str(self.redis_port), CUDA_VISIBLE_DEVICES="", PINWHEEL_DEVICE="cpu",
                        PINWHEEL_ADMIN_TOKEN=ADMIN_TOKEN, PINWHEEL_LEASE_TTL_SECONDS="3", OMP_NUM_THREADS="1")
        self.url = f"http://127.0.0.1:{self.web_port}"
        self.proc = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "launch.py")], env=self.env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(iter(self.proc.stdout.readline, "")), daemon=True).start()
        wait_until(lambda: any("Ctrl-C" in line for line in self.lines), 120, "the launcher")

    def pids(self) -> dict:
        return json.loads((self.var / "run.pids").read_text())

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, headers=auth_headers())

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=120)


def test_launcher_restarts_dead_children_and_ctrl_c_mid_run_loses_nothing(tmp_path):
    launcher = Launcher(tmp_path)
    launcher.start()
    try:
        api = launcher.api()
        config = {**TINY_RUN["config"], "train": {**TINY_RUN["config"]["train"], "steps": 3000,
                                                  "checkpoint_every_seconds": 30}}
        run_id = api.post("/api/runs", json={"preset": TINY_RUN["preset"], "config": config}).json()["id"]
        wait_until(lambda: api.get(f"/api/runs/{run_id}").json()["step"] >= 200, 120, "frames")

        worker = launcher.pids()["worker"]
        os.kill(worker, signal.SIGKILL)  # the app stays up; the worker comes back and the run resumes
        wait_until(lambda: launcher.pids()["worker"] != worker, 30, "a restarted worker")
        assert httpx.get(f"{launcher.url}/api/health").json() == {"ok": True}
        assert any("worker exited with code -9; restarting" in line for line in launcher.lines), launcher.lines
        wait_until(lambda: len(api.get(f"/api/runs/{run_id}").json()["attempts"]) == 2
                   and api.get(f"/api/runs/{run_id}").json()["status"] == "running", 60, "the second attempt")

        redis_pid = launcher.pids()["redis"]
        os.kill(redis_pid, signal.SIGKILL)
        wait_until(lambda: launcher.pids()["redis"] != redis_pid and port_open(launcher.redis_port), 30, "Redis back")
        step = api.get(f"/api/runs/{run_id}").json()["step"]
        wait_until(lambda: api.get(f"/api/runs/{run_id}").json()["step"] > step, 60, "training on after Redis")

        web_pid = launcher.pids()["web"]
        os.kill(web_pid, signal.SIGKILL)
        wait_until(lambda: launcher.pids()["web"] != web_pid
                   and httpx.get(f"{launcher.url}/api/health").status_code == 200, 60, "the web server back")
        step = api.get(f"/api/runs/{run_id}").json()["step"]
        wait_until(lambda: api.get(f"/api/runs/{run_id}").json()["step"] > step, 60, "frames stored after it")

        children = list(launcher.pids().values())
        assert launcher.stop() == 0  # Ctrl-C mid-run: workers first, the run goes back to the queue
        assert not any(_alive(pid) for pid in children)
        assert not port_open(launcher.web_port) and not port_open(launcher.redis_port)
        lines = "".join(launcher.lines)
        assert "restarting" in lines

        launcher.start()  # make run again: the run resumes from where the Ctrl-C checkpointed it
        api = launcher.api()
        run = api.get(f"/api/runs/{run_id}").json()
        stopped_at = run["step"]
        assert run["status"] == "queued" and "shut down" in run["attempts"][-1]["ended"]
        wait_until(lambda: api.get(f"/api/runs/{run_id}").json()["status"] == "succeeded", 180, "the run's end")
        run = api.get(f"/api/runs/{run_id}").json()
        assert run["attempts"][-1]["resumed_from_step"] >= stopped_at - config["train"]["frame_every_steps"]
        steps = [f["step"] for f in api.get(f"/api/runs/{run_id}/frames",
                                             params={"panels": False, "limit": 5000}).json()["frames"]]
        assert steps == sorted(set(steps)) and steps[-1] == 3000
    finally:
        if launcher.proc.poll() is None:
            launcher.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie of a child that is gone counts as gone
        return not open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    except OSError:
        return False


def test_lab_server_mode_locks_redis_and_a_joined_worker_takes_runs_with_its_own_folder(tmp_path):
    server = Launcher(tmp_path / "server")
    server.var.mkdir()
    server.env.update(PINWHEEL_LAB="1", PINWHEEL_HOST="127.0.0.1", PINWHEEL_PUBLIC_HOST="127.0.0.1")
    server.start()
    joined = None
    try:
        printed = next(line for line in server.lines if line.startswith("Add a GPU machine"))
        values = dict(re.findall(r"(REDIS_URL|PINWHEEL_SERVER_URL|PINWHEEL_WORKER_TOKEN)=(\S+)", printed))
        assert set(values) == {"REDIS_URL", "PINWHEEL_SERVER_URL", "PINWHEEL_WORKER_TOKEN"}, printed
        assert values["PINWHEEL_SERVER_URL"] == server.url
        with pytest.raises(redis.exceptions.AuthenticationError):  # Redis beyond loopback: never without a password
            redis.Redis(port=server.redis_port).ping()
        assert redis.Redis.from_url(values["REDIS_URL"]).ping()
        api = server.api()
        assert api.get("/api/workers/join").json()["command"] in printed

        # the GPU machine: `make worker` with the printed values, its own folder, nothing shared
        joined_var = tmp_path / "gpu-box"
        joined_var.mkdir()
        env = {k: v for k, v in server.env.items() if not k.startswith("PINWHEEL_")}
        env.update(values, PINWHEEL_VAR_DIR=str(joined_var), PINWHEEL_DEVICE="cpu", PINWHEEL_WORKER_NAME="box-",
                   OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
        joined = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "launch.py"), "--workers-only"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wait_until(lambda: len(api.get("/api/workers").json()["workers"]) == 2, 120, "the joined worker")
        runs = [api.post("/api/runs", json=TINY_RUN).json()["id"] for _ in range(2)]
        wait_until(lambda: all(api.get(f"/api/runs/{r}").json()["status"] == "succeeded" for r in runs), 240, "runs")
        by_worker = {api.get(f"/api/runs/{r}").json()["attempts"][0]["worker"].split("@")[0]: r for r in runs}
        assert set(by_worker) == {"celery", "box-celery"}, by_worker
        remote = by_worker["box-celery"]
        assert (joined_var / "artifacts" / remote / "checkpoint.pt").exists()
        assert (server.var / "artifacts" / remote / "weights.npz").exists()  # handed over HTTP
        assert api.get(f"/api/runs/{remote}/weights.npz").status_code == 200
    finally:
        if joined is not None:
            joined.send_signal(signal.SIGINT)
            joined.wait(timeout=120)
        server.stop()
