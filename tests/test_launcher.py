"""`make run`'s launcher: starts embedded Redis + worker + web, refuses a second copy, stops cleanly."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx

from tests.services import ROOT, free_port


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
