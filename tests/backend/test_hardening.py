"""Issue 11: every bad input gets a clear 4xx fast, nothing stored changes, members keep to their runs
(in process against a real Redis; raw-socket checks against the real `stack`)."""
from __future__ import annotations

import io
import json
import logging
import socket
import time
import zipfile
from urllib.parse import urlparse

import pytest
import redis
from fastapi.testclient import TestClient

from backend.app.limits import RedactSecrets, redact
from backend.app.main import create_app
from backend.app.settings import Settings
from backend.app.store import Run
from tests.services import ADMIN_TOKEN, auth_headers

from .test_organise_bundles import finished_run

TREE_BOMB = {"config": {"model": {"kind": "group_sparse", "units": 63, "form": "sparse_coding",
                                  "groups": {"kind": "tree", "branching": 3, "depth": 20_000_000}}}}


def make(tmp_path, redis_url, **extra) -> TestClient:
    # run_reaper: off where issue 10's reaper exists (Settings ignores unknown names): no worker here
    settings = Settings(redis_url=redis_url.rsplit("/", 1)[0] + "/15", database_url=f"sqlite:///{tmp_path / 'h.db'}",
                        artifacts_dir=tmp_path / "artifacts", data_root=tmp_path / "data", persist_frames=False,
                        run_reaper=False, admin_token=ADMIN_TOKEN, **extra)
    return TestClient(create_app(settings), headers=auth_headers())


@pytest.fixture
def client(tmp_path, redis_url):
    (tmp_path / "data" / "mine").mkdir(parents=True)
    with make(tmp_path, redis_url) as c:
        yield c


def _run_count(c) -> int:
    with c.app.state.sessions() as s:
        return s.query(Run).count()


def _field(res) -> str:
    assert res.status_code == 422, res.text
    return res.json()["detail"][0]["field"]


# --- configs: 422 naming the field, fast -----------------------------------------------------------
def test_bad_configs_are_422_naming_the_field_the_user_wrote(client):
    start = time.perf_counter()
    res = client.post("/api/runs", json=TREE_BOMB)
    assert time.perf_counter() - start < 2  # was 11 s of a frozen server; the property test times it closely
    assert _field(res) == "model.groups.depth" and res.json()["detail"][0]["loc"][-3:] == ["model", "groups", "depth"]
    deep = {"config": {**TREE_BOMB["config"], "model": {**TREE_BOMB["config"]["model"],
                                                        "groups": {"kind": "tree", "branching": 3, "depth": 60}}}}
    assert _field(client.post("/api/runs", json=deep)) == "model.groups.depth"  # in bounds, too many nodes
    assert _field(client.post("/api/runs", json={"preset": "topographic-natural",
                                                 "config": {"train": {"seed": 2**70}}})) == "train.seed"
    digits = {"kind": "mnist", "train_size": 10**12}
    assert _field(client.post("/api/runs", json={"preset": "drsae-mnist", "config": {"data": digits}})) \
        == "data.train_size"
    for folder in ("../../../../etc", "/etc", "a/../../b", ".hidden"):
        res = client.post("/api/runs", json={"preset": "drsae-mnist", "config": {"data": {"idx_folder": folder}}})
        assert _field(res) == "data.idx_folder", folder
    res = client.post("/api/runs", json={"preset": "topographic-natural",
                                         "config": {"data": {"image_folder": "../../../../etc"}}})
    assert _field(res) == "data.image_folder"
    res = client.post("/api/runs", json={"preset": "topographic-natural", "config": {"data": {"image_folder": "nope"}}})
    assert _field(res) == "data.image_folder" and "not a folder" in res.json()["detail"][0]["msg"]
    res = client.post("/api/runs", json={"preset": "conv-stack", "config": {"model": {"steps_per_layer": 2**70}}})
    assert _field(res) == "model.steps_per_layer"
    for body in (b'{"preset": "groups-tree", "config": {"train": {"seed": ' + b"9" * 5000 + b"}}}",
                 b'{"preset": "groups-tree", "config": {"train": {"lr": NaN}}}'):
        res = client.post("/api/runs", content=body, headers={"Content-Type": "application/json"})
        assert res.status_code == 422 and res.json()["detail"][0]["msg"], res.text
    assert _run_count(client) == 0  # nothing stored for any refusal
    ok = client.post("/api/runs", json={"preset": "topographic-natural", "config": {"data": {"image_folder": "mine"}}})
    assert ok.status_code == 201, ok.text


def test_launch_answer_estimates_and_refuses_a_run_past_the_time_limit(client):
    res = client.post("/api/runs", json={"preset": "groups-tree", "config": {"train": {"steps": 500}}})
    assert res.status_code == 201, res.text
    first = res.json()
    assert first["estimated_seconds"] is None and first["time_limit_seconds"] == 24 * 3600
    assert 100 * 2**20 < first["estimated_memory_bytes"] < 2 * 2**30
    with client.app.state.sessions() as s:  # it ran 100 steps in 10 s
        run = s.get(Run, first["id"])
        run.status, run.step, run.wall_time = "cancelled", 100, 10.0
        s.commit()
    again = client.post("/api/runs", json={"preset": "groups-tree", "config": {"train": {"steps": 2000, "seed": 3}}})
    assert again.status_code == 201 and again.json()["estimated_seconds"] == pytest.approx(200.0)
    other = client.post("/api/runs", json={"preset": "groups-tree", "config": {"train": {"batch_size": 64}}})
    assert other.json()["estimated_seconds"] is None  # another shape: no history
    huge = client.post("/api/runs", json={"preset": "groups-tree", "config": {"train": {"steps": 10_000_000}}})
    assert _field(huge) == "train.steps" and "limit" in huge.json()["detail"][0]["msg"]


def test_the_time_limit_travels_with_the_task(client, redis_url):
    run = client.post("/api/runs", json={"preset": "groups-tree"}).json()
    broker = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/15")
    headers = [json.loads(m)["headers"] for m in broker.lrange("celery", 0, -1)]
    mine = [h for h in headers if h.get("id") == run["id"] or h.get("argsrepr", "").startswith(f"['{run['id']}'")]
    assert mine and mine[0]["timelimit"] == [24 * 3600 + 60, 24 * 3600]


def test_per_member_limit_on_active_runs(tmp_path, redis_url):
    with make(tmp_path, redis_url, max_active_runs_per_member=2) as c:
        alice = auth_headers(c.post("/api/users", json={"name": "alice"}).json()["token"])
        for _ in range(2):
            assert c.post("/api/runs", json={"preset": "groups-tree"}, headers=alice).status_code == 201
        res = c.post("/api/runs", json={"preset": "groups-tree"}, headers=alice)
        assert res.status_code == 429 and "limit is 2" in res.json()["detail"]
        assert _run_count(c) == 2
        assert c.post("/api/runs", json={"preset": "groups-tree"}).status_code == 201  # the admin has its own count
        with c.app.state.sessions() as s:  # one of alice's ends: she may launch again
            run = s.query(Run).filter(Run.launched_by == "alice").first()
            run.status = "succeeded"
            s.commit()
        assert c.post("/api/runs", json={"preset": "groups-tree"}, headers=alice).status_code == 201


# --- who may do what -------------------------------------------------------------------------------
def test_outsiders_learn_nothing_about_which_runs_exist(client):
    known = client.post("/api/runs", json={"preset": "groups-tree"}).json()["id"]
    for run_id in (known, "0" * 32, "x" * 40):
        for suffix in ("", "/frames", "/ticket", "/bundle.zip", "/weights.npz", "/exports/curves.csv"):
            res = client.get(f"/api/runs/{run_id}{suffix}", headers={"Authorization": ""})
            assert res.status_code == 401, (run_id, suffix, res.status_code)
    share = client.post(f"/api/runs/{known}/shares", json={}).json()["token"]
    for run_id in ("0" * 32, "f" * 32):  # a share link learns nothing about other ids either
        assert client.get(f"/api/runs/{run_id}", headers=auth_headers(share)).status_code == 403


def test_members_change_only_their_own_runs(client):
    admin_run = finished_run(client)["id"]
    alice = auth_headers(client.post("/api/users", json={"name": "alice"}).json()["token"])
    admin_share = client.post(f"/api/runs/{admin_run}/shares", json={}).json()
    queued_admin = client.post("/api/runs", json={"preset": "groups-tree"}).json()["id"]
    refused = [("PATCH", f"/api/runs/{admin_run}", {"title": "mine now"}),
               ("DELETE", f"/api/runs/{admin_run}/shares/{admin_share['id']}", None),
               ("POST", f"/api/runs/{admin_run}/shares", {}),
               ("POST", f"/api/runs/{queued_admin}/cancel", None),
               ("DELETE", f"/api/runs/{admin_run}", None)]
    for method, url, body in refused:
        res = client.request(method, url, json=body, headers=alice)
        assert res.status_code == 403 and "launched" in res.json()["detail"], (method, url, res.text)
    after = client.get(f"/api/runs/{admin_run}").json()
    assert after["title"] == "topo run" and client.get(f"/api/runs/{admin_run}/shares").json()[0]["active"]
    assert client.get(f"/api/runs/{queued_admin}").json()["status"] == "queued"
    assert client.get(f"/api/runs/{admin_run}", headers=alice).status_code == 200  # reading stays open
    own = client.post("/api/runs", json={"preset": "groups-tree"}, headers=alice).json()["id"]
    assert client.patch(f"/api/runs/{own}", json={"tags": ["a"]}, headers=alice).json()["tags"] == ["a"]
    share = client.post(f"/api/runs/{own}/shares", json={}, headers=alice).json()
    assert client.delete(f"/api/runs/{own}/shares/{share['id']}", headers=alice).json()["active"] is False
    assert client.patch(f"/api/runs/{own}", json={"title": "admin was here"}).status_code == 200  # admins may


# --- bodies: refused before they are read ----------------------------------------------------------
def test_oversized_and_unauthenticated_bodies_are_refused_before_parsing(client):
    big = b'{"config": {"x": [' + b"0," * 600_000 + b"0]}}"
    assert len(big) > 1024 * 1024
    res = client.post("/api/runs", content=big, headers={"Authorization": "", "Content-Type": "application/json"})
    assert res.status_code == 401
    res = client.post("/api/runs", content=big, headers={"Content-Type": "application/json"})
    assert res.status_code == 413 and "limit" in res.json()["detail"]
    res = client.patch("/api/runs/" + "0" * 32, content=big, headers={"Content-Type": "application/json"})
    assert res.status_code == 413
    weights = client.put("/api/external/runs/" + "0" * 32 + "/weights.npz", content=b"\0" * (2 * 1024 * 1024))
    assert weights.status_code != 413  # a route with a larger limit of its own keeps it
    share_run = client.post("/api/runs", json={"preset": "groups-tree"}).json()["id"]
    share = client.post(f"/api/runs/{share_run}/shares", json={}).json()["token"]
    res = client.post("/api/runs", json={"preset": "groups-tree"}, headers=auth_headers(share))
    assert res.status_code == 403 and "read" in res.json()["detail"]
    assert _run_count(client) == 1


def _raw_request(url: str, head: str, body: bytes = b"", wait: float = 30) -> bytes:
    """Send a request's head and the start of its body, then read the answer (the rest never comes)."""
    u = urlparse(url)
    with socket.create_connection((u.hostname, u.port), timeout=wait) as s:
        try:
            s.sendall(head.encode() + b"\r\n" + body)
        except OSError:  # the server answered and closed while the body was still going: what we test
            pass
        return s.recv(4096)


def test_a_100_mb_body_is_answered_without_being_sent(stack):
    """Against the real server: the answer comes while 99.99 MB of the declared body are still unsent."""
    head = ("POST /api/runs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 100000000\r\n{auth}")
    start = time.monotonic()
    assert _raw_request(stack["url"], head.format(auth=""), b'{"config": {"x": [0,').startswith(b"HTTP/1.1 401")
    bearer = f"Authorization: Bearer {ADMIN_TOKEN}\r\n"
    assert _raw_request(stack["url"], head.format(auth=bearer), b'{"config":').startswith(b"HTTP/1.1 413")
    chunked = ("POST /api/runs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               f"Transfer-Encoding: chunked\r\n{bearer}")
    piece = b"0," * 32_768
    body = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(20))  # 1.3 MB and still going
    assert _raw_request(stack["url"], chunked, body).startswith(b"HTTP/1.1 413")
    assert time.monotonic() - start < 30


# --- bundle import ----------------------------------------------------------------------------------
def _bundle(c, run_id: str) -> dict[str, bytes]:
    z = zipfile.ZipFile(io.BytesIO(c.get(f"/api/runs/{run_id}/bundle.zip").content))
    return {n: z.read(n) for n in z.namelist()}


def _zip(entries: dict) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return out.getvalue()


def _import(c, data: bytes):
    return c.post("/api/bundles", content=data, headers={"Content-Type": "application/zip"})


def test_damaged_or_dishonest_bundles_are_422_and_store_nothing(client):
    run = finished_run(client)
    entries = _bundle(client, run["id"])
    before = _run_count(client)
    stored = zipfile.ZipFile(io.BytesIO(_zip(entries)))
    raw = bytearray(_zip({**entries, "metrics.csv": entries["metrics.csv"]}))
    # flip one byte inside metrics.csv's stored data → CRC (or inflate) failure when read
    info = stored.getinfo("metrics.csv")
    offset = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size // 2
    raw[offset] ^= 0xFF
    res = _import(client, bytes(raw))
    assert res.status_code == 422 and "metrics.csv" in res.json()["detail"], res.text

    record = json.loads(entries["record.json"])
    cases = {"tags": {**record, "tags": ["<img src=x onerror=alert(1)>"]},
             "tags.0": {**record, "tags": ["t" * 5000]},
             "title": {**record, "title": "x" * 201},
             "notes": {**record, "notes": "n" * 20_001}}
    for field, bad in cases.items():
        res = _import(client, _zip({**entries, "record.json": json.dumps(bad).encode()}))
        assert res.status_code == 422 and "record.json: tags" in res.json()["detail"] if field.startswith("tags") \
            else f"record.json: {field}" in res.json()["detail"], (field, res.text)
    evil_metric = entries["metrics.csv"].replace(b"loss", b"<script>")
    res = _import(client, _zip({**entries, "metrics.csv": evil_metric}))
    assert res.status_code == 422 and "metric name" in res.json()["detail"]
    rows = b"step,wall_time,time\n" + b"0,0,0\n" * 1_000_000  # 6 MB, 9 KB zipped: refused at the row cap
    res = _import(client, _zip({**entries, "metrics.csv": rows}))
    assert res.status_code == 422 and "frames" in res.json()["detail"]
    one_line = b"step,wall_time,time\n0,0," + b"1" * 200_000  # no newline: not read whole
    assert _import(client, _zip({**entries, "metrics.csv": one_line})).status_code == 422
    tree = json.loads(entries["config.json"])
    tree["model"]["groups"] = {"kind": "tree", "branching": 3, "depth": 20_000_000}
    res = _import(client, _zip({**entries, "config.json": json.dumps(tree).encode()}))
    assert res.status_code == 422 and "config.json: model.groups.depth" in res.json()["detail"]
    assert _run_count(client) == before
    leftovers = [p.name for p in client.app.state.settings.artifacts_dir.iterdir()]
    assert sorted(leftovers) == sorted([run["id"], ".incoming"]) and not any(
        (client.app.state.settings.artifacts_dir / ".incoming").iterdir())
    ok = _import(client, _zip(entries))
    assert ok.status_code == 201 and ok.json()["frame_count"] == 5


# --- responses: documented, timestamps with their zone, no secrets in logs -------------------------
def test_timestamps_carry_their_timezone(client):
    run = client.post("/api/runs", json={"preset": "groups-tree"}).json()
    user = client.post("/api/users", json={"name": "dora"}).json()
    share = client.post(f"/api/runs/{run['id']}/shares", json={"expires_in_seconds": 600}).json()
    stamps = [client.get(f"/api/runs/{run['id']}").json()["created_at"], client.get("/api/users").json()[0]["created_at"],
              client.get(f"/api/runs/{run['id']}/shares").json()[0]["created_at"], share["expires_at"],
              client.get("/api/launches").json()[0]["created_at"], user["created_at"]]
    for stamp in stamps:
        assert stamp.endswith("Z") or stamp[-6] in "+-", stamp


def test_openapi_documents_errors_and_the_bundle_body(client):
    spec = client.get("/openapi.json").json()
    bundle = spec["paths"]["/api/bundles"]["post"]
    assert "application/zip" in bundle["requestBody"]["content"] and "413" in bundle["responses"]
    launch = spec["paths"]["/api/runs"]["post"]["responses"]
    assert {"401", "403", "413", "422", "429", "503"} <= set(launch)
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if path.startswith("/api/runs/{run_id}"):
                assert {"401", "404"} <= set(op["responses"]), (method, path)


def test_read_tickets_never_reach_the_access_log(caplog):
    line = '127.0.0.1:5 - "GET /api/runs/abc/events?ticket=abc.123.s1.SIGNATURE&x=1 HTTP/1.1" 200'
    assert "SIGNATURE" not in redact(line) and "x=1" in redact(line)
    logger = logging.getLogger("uvicorn.access")
    record = logger.makeRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", "/api/runs/a/bundle.zip?ticket=SECRET.1.a.SIG", "1.1", 200),
                               None)
    RedactSecrets().filter(record)
    assert "SECRET" not in record.getMessage() and "ticket=[redacted]" in record.getMessage()


def test_the_real_servers_log_holds_no_ticket(stack, api):
    run = api.post("/api/runs", json={"preset": "groups-tree", "config": {"train": {"steps": 5}}}).json()
    ticket = api.get(f"/api/runs/{run['id']}/ticket").json()["ticket"]
    assert api.get(f"/api/runs/{run['id']}/exports/curves.csv", params={"ticket": ticket}, headers={}).status_code \
        in (200, 404)
    api.post(f"/api/runs/{run['id']}/cancel")
    from tests.conftest import ARTIFACTS

    log = (ARTIFACTS / "app.log").read_text(errors="replace")
    deadline = time.monotonic() + 10
    while "curves.csv" not in log and time.monotonic() < deadline:  # the access line is written after the answer
        time.sleep(0.1)
        log = (ARTIFACTS / "app.log").read_text(errors="replace")
    assert "curves.csv?ticket=[redacted]" in log and ticket.split(".")[-1] not in log
