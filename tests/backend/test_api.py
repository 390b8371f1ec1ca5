"""API behaviour on bad input and faults, in process (TestClient) against a real Redis."""
from __future__ import annotations

import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from backend.app.main import create_app
from backend.app.settings import Settings
from backend.app.store import Run
from tests.services import ADMIN_TOKEN, ROOT, auth_headers, free_port


def make_client(tmp_path, redis_url: str) -> TestClient:
    settings = Settings(redis_url=redis_url, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
                        artifacts_dir=tmp_path / "artifacts", persist_frames=False, admin_token=ADMIN_TOKEN)
    return TestClient(create_app(settings), headers=auth_headers())


@pytest.fixture
def client(tmp_path, redis_url):
    # a Redis database no worker listens on: tasks launched here are queued, never trained
    with make_client(tmp_path, redis_url.rsplit("/", 1)[0] + "/15") as c:
        yield c


def test_presets_resolve_to_valid_configs(client):
    presets = client.get("/api/presets").json()
    ids = [p["id"] for p in presets]
    assert "topographic-natural" in ids and len(ids) == len(set(ids))
    topo = presets[ids.index("topographic-natural")]
    assert topo["config"]["model"]["units"] == 1024 and topo["config"]["model"]["groups"]["kind"] == "torus_2d"


def test_invalid_config_is_422_naming_the_field(client):
    res = client.post("/api/runs", json={"preset": "topographic-natural", "config": {"train": {"steps": -5}}})
    assert res.status_code == 422
    detail = res.json()["detail"]
    assert detail[0]["loc"][-2:] == ["train", "steps"] and "greater than" in detail[0]["msg"]

    res = client.post("/api/runs", json={"config": {"model": {"kind": "group_sparse", "units": 16,
                                                               "groups": {"kind": "torus_2d", "pool": 6}}}})
    assert res.status_code == 422 and "groups.pool" in res.json()["detail"][0]["msg"]

    res = client.post("/api/runs", json={"config": {"train": {"stepz": 10}}})
    assert res.status_code == 422 and res.json()["detail"][0]["loc"][-1] == "stepz"
    assert client.get("/api/runs").json() == []  # nothing stored for refused launches


def test_unknown_preset_and_run_are_404(client):
    assert client.post("/api/runs", json={"preset": "nope"}).status_code == 404
    assert client.get("/api/runs/" + "0" * 32).status_code == 404


def test_weights_route_refuses_a_traversal_run_id(client, tmp_path):
    """A run id is never turned into a path unchecked. httpx drops literal `..` segments before
    sending, so the dots go percent-encoded (`%2e%2e`): Starlette decodes them into the route's
    `run_id`, and a run row with that id exists, so the request reaches the route's own check.
    Without it, artifacts_dir / ".." / "weights.npz" would be served."""
    (tmp_path / "artifacts").mkdir(exist_ok=True)
    (tmp_path / "weights.npz").write_bytes(b"outside the artifacts folder")  # artifacts_dir/../weights.npz
    with client.app.state.sessions() as s:
        s.add(Run(id="..", status="finished", title="t", config={}, total_steps=1, metrics={}, environment={}))
        s.commit()
    res = client.get("/api/runs/%2e%2e/weights.npz")
    assert res.status_code == 404 and res.json()["detail"] == "run_id: malformed"
    assert b"outside" not in res.content


def test_redis_unreachable_is_503_and_no_half_created_run(tmp_path):
    dead = f"redis://127.0.0.1:{free_port()}/0"
    with make_client(tmp_path, dead) as c:
        res = c.post("/api/runs", json={"preset": "topographic-natural"})
        assert res.status_code == 503 and "Redis" in res.json()["detail"]
        sessions = c.app.state.sessions
        with sessions() as s:
            assert s.scalar(select(func.count()).select_from(Run)) == 0


def test_backend_never_imports_torch():
    code = "import sys, backend.app.asgi; assert 'torch' not in sys.modules, 'backend imported torch'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                   env={"PYTHONPATH": str(ROOT), "PINWHEEL_PERSIST_FRAMES": "false", "PATH": "/usr/bin:/bin",
                        "PINWHEEL_DATABASE_URL": "sqlite:///:memory:"})


def test_frame_pages_with_images_are_bounded(client):
    run = client.post("/api/runs", json={"preset": "topographic-natural"}).json()
    res = client.get(f"/api/runs/{run['id']}/frames", params={"limit": 1000, "panels": True})
    assert res.status_code == 422 and res.json()["detail"][0]["loc"] == ["query", "limit"]
    assert client.get(f"/api/runs/{run['id']}/frames", params={"limit": 1000, "panels": False}).status_code == 200
