"""`make run` started in the background (a shell makes a background job ignore SIGINT) still stops on
SIGINT, in order; and PINWHEEL_VAR_DIR alone places the database, runs' files and data under it."""
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


def test_a_background_launch_stops_on_sigint_and_keeps_its_files_under_the_var_dir(tmp_path):
    web_port, redis_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("REDIS_URL", "DATABASE_URL", "PINWHEEL_ADMIN_TOKEN") and not k.startswith("PINWHEEL_")}
    env.update(PINWHEEL_VAR_DIR=str(tmp_path), PINWHEEL_PORT=str(web_port), PINWHEEL_REDIS_PORT=str(redis_port),
               CUDA_VISIBLE_DEVICES="", PINWHEEL_DEVICE="cpu")
    ignore_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)  # noqa: E731 — what `cmd &` does
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "launch.py")], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=ignore_sigint)
    try:
        lines, deadline = [], time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "Ctrl-C" in line or not line:
                break
        assert httpx.get(f"http://127.0.0.1:{web_port}/api/health").json() == {"ok": True}, "".join(lines)
        assert (tmp_path / "pinwheel.db").exists()  # the web process's database, from PINWHEEL_VAR_DIR alone
        assert (tmp_path / "redis").is_dir() and (tmp_path / "logs").is_dir()

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        assert not port_open(web_port) and not port_open(redis_port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
