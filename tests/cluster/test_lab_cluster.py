"""A lab's cluster on simulated hosts (network namespaces): host A runs Redis with a password, W1 and
W2 run web processes against one PostgreSQL, G1–G3 run workers, each host with its own folder and
nothing shared but the network. Runs launched through W1 are watched live through W2, every frame is
stored once although both web processes persist, and a run whose worker host dies resumes on
another host from the checkpoint it handed over."""
from __future__ import annotations

import io
import os
import signal
import sys
import time
import zipfile

import httpx
import pytest
import redis
from sqlalchemy import create_engine, text

from tests import services
from tests.conftest import TINY_RUN
from tests.integration.faults import Follower

from . import netns

pytestmark = pytest.mark.integration
POSTGRES = "postgresql+psycopg://postgres@/{db}?host=/var/run/postgresql"  # the machine's, by its socket
PASSWORD, WORKER_TOKEN = "lab-redis-password", "lab-worker-token"
RUN = {"preset": TINY_RUN["preset"], "config": {**TINY_RUN["config"], "train": {
    **TINY_RUN["config"]["train"], "steps": 2500, "checkpoint_every_seconds": 1.0}}}


def fresh_database() -> str | None:
    """A database of its own (the lab's reapers would otherwise adopt other tests' runs)."""
    name = f"pinwheel_lab_{os.getpid()}"
    try:
        engine = create_engine(POSTGRES.format(db="postgres"), isolation_level="AUTOCOMMIT",
                               connect_args={"connect_timeout": 3})
        with engine.connect() as c:
            c.execute(text(f"DROP DATABASE IF EXISTS {name}"))
            c.execute(text(f"CREATE DATABASE {name}"))
        return name
    except Exception:
        return None


def drop_database(name: str) -> None:
    engine = create_engine(POSTGRES.format(db="postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
def lab(tmp_path, artifacts_dir):
    why = netns.available()
    if why:
        pytest.skip(why)
    database = fresh_database()
    if database is None:
        pytest.skip("no PostgreSQL on its local socket")
    net = netns.Network()
    try:
        for number, host in enumerate(("a", "w1", "w2", "g1", "g2", "g3"), start=1):
            net.add_host(host, number)
        a = net.hosts["a"]
        folders = {h: tmp_path / h for h in net.hosts}
        for f in folders.values():
            f.mkdir()
        net.start("a", [services.redis_server_binary(), "--port", "6379", "--bind", a, "--requirepass", PASSWORD,
                        "--dir", str(folders["a"]), "--appendonly", "yes", "--save", ""], dict(os.environ),
                  artifacts_dir / "cluster-redis.log", services.ROOT)
        redis_url = f"redis://:{PASSWORD}@{a}:6379/0"
        services.wait_until(lambda: redis.Redis.from_url(redis_url).ping(), 30, "Redis on host A")
        base = {**os.environ, "REDIS_URL": redis_url, "PINWHEEL_DATABASE_URL": POSTGRES.format(db=database), "PYTHONPATH": str(services.ROOT),
                "PINWHEEL_ADMIN_TOKEN": services.ADMIN_TOKEN, "PINWHEEL_WORKER_TOKEN": WORKER_TOKEN,
                "PINWHEEL_LEASE_TTL_SECONDS": "3", "PINWHEEL_DEVICE": "cpu", "OMP_NUM_THREADS": "1",
                "PYTHONUNBUFFERED": "1", "PINWHEEL_DATA_ROOT": str(tmp_path / "data")}
        webs = {}
        for host in ("w1", "w2"):  # one after the other: the first creates the tables
            env = {**base, "PINWHEEL_ARTIFACTS_DIR": str(folders[host] / "artifacts"),
                   "PINWHEEL_CONSUMER_NAME": host}
            net.start(host, [sys.executable, "-m", "uvicorn", "backend.app.asgi:app", "--host", net.hosts[host],
                             "--port", "8000"], env, artifacts_dir / f"cluster-{host}.log", services.ROOT)
            webs[host] = f"http://{net.hosts[host]}:8000"
            services.wait_until(lambda: httpx.get(webs[host] + "/api/health").status_code == 200, 60, host)
        workers = {}
        for host in ("g1", "g2", "g3"):
            env = {**base, "PINWHEEL_ARTIFACTS_DIR": str(folders[host] / "artifacts"), "PINWHEEL_SERVER_URL": webs["w1"]}
            env.pop("PINWHEEL_DATABASE_URL")  # a worker host knows Redis and the web server, nothing else
            log = artifacts_dir / f"cluster-{host}.log"
            log.write_bytes(b"")
            workers[host] = net.start(host, [sys.executable, "-m", "celery", "-A", "worker.celery_app:app", "worker",
                                             "--pool=solo", "--loglevel=INFO", "-n", f"{host}@%h"], env, log,
                                      services.ROOT)
        for host in workers:
            services.wait_until(lambda: b"ready." in (artifacts_dir / f"cluster-{host}.log").read_bytes(), 90, host)
        yield {"net": net, "webs": webs, "workers": workers, "folders": folders}
    finally:
        net.close()
        drop_database(database)


def client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=30, headers=services.auth_headers())


def test_runs_cross_hosts_watched_anywhere_and_resume_on_another_host(lab):
    w1, w2 = client(lab["webs"]["w1"]), client(lab["webs"]["w2"])
    assert len(w2.get("/api/workers").json()["workers"]) == 3
    runs = [w1.post("/api/runs", json=RUN).json()["id"] for _ in range(3)]
    viewers = [Follower(lab["webs"]["w2"], r) for r in runs]  # watched live through the other web host
    for v in viewers:
        v.start()

    def attempt_of(run_id):
        attempts = w2.get(f"/api/runs/{run_id}").json()["attempts"]
        return attempts[-1] if attempts else None
    services.wait_until(lambda: all(attempt_of(r) for r in runs), 120, "every run started")
    victim = runs[0]
    host = attempt_of(victim)["worker"].split("@")[0]
    checkpoint = lab["folders"]["w1"] / "artifacts" / victim / "checkpoint.pt"
    services.wait_until(lambda: checkpoint.exists() and w1.get(f"/api/runs/{victim}").json()["step"] >= 300, 120,
                        "a checkpoint handed to W1")
    os.kill(lab["workers"][host].pid, signal.SIGKILL)  # the whole worker host goes down

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not all(
            w1.get(f"/api/runs/{r}").json()["status"] == "succeeded" for r in runs):
        time.sleep(0.5)
    final = {r: w2.get(f"/api/runs/{r}").json() for r in runs}
    assert all(f["status"] == "succeeded" for f in final.values()), {r: f["status"] for r, f in final.items()}
    resumed = final[victim]["attempts"]
    assert len(resumed) == 2 and resumed[1]["worker"].split("@")[0] != host and resumed[1]["resumed_from_step"] > 0
    for run_id, viewer in zip(runs, viewers):
        viewer.join(timeout=60)
        steps = [f["step"] for f in w2.get(f"/api/runs/{run_id}/frames",
                                            params={"panels": False, "limit": 5000}).json()["frames"]]
        assert steps == sorted(set(steps)) and steps[-1] == RUN["config"]["train"]["steps"]  # stored once, by W1 or W2
        assert viewer.final_status() == "succeeded" and viewer.timeline() == steps
        for web in (w1, w2):  # the files went to W1; W2 serves them from the database, not W1's disk
            weights = web.get(f"/api/runs/{run_id}/weights.npz")
            assert weights.status_code == 200 and weights.content[:2] == b"PK"
            bundle = web.get(f"/api/runs/{run_id}/bundle.zip")
            assert bundle.status_code == 200 and bundle.content[:2] == b"PK"
            assert "weights.npz" in zipfile.ZipFile(io.BytesIO(bundle.content)).namelist()
        assert (lab["folders"]["w2"] / "artifacts" / run_id / "weights.npz").exists()
    # each worker host kept only the runs it ran; the web host holds what they handed over
    for host in ("g1", "g2", "g3"):
        ran = {a["worker"].split("@")[0] == host and r for r, f in final.items() for a in f["attempts"]} - {False}
        held = {p.name for p in (lab["folders"][host] / "artifacts").glob("*")} if (
            lab["folders"][host] / "artifacts").exists() else set()
        assert held <= ran, (host, held, ran)
