"""Who may do what: tokens, members, share links and read tickets (in process, real Redis)."""
from __future__ import annotations

import hashlib
import re

import pytest
from fastapi.testclient import TestClient

from backend.app.main import create_app
from backend.app.settings import Settings
from tests.services import ADMIN_TOKEN, auth_headers

PUBLIC_GETS = {"/api/presets", "/api/schema", "/api/health", "/api/me"}
WRITE_METHODS = {"post", "put", "patch", "delete"}


@pytest.fixture
def app_client(tmp_path, redis_url):
    settings = Settings(redis_url=redis_url.rsplit("/", 1)[0] + "/15", database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
                        artifacts_dir=tmp_path / "artifacts", persist_frames=False, admin_token=ADMIN_TOKEN)
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def world(app_client):
    """Two runs, a member, a revoked member, and a share link of the first run."""
    admin = auth_headers()
    runs = [app_client.post("/api/runs", json={"preset": "topographic-natural"}, headers=admin).json()
            for _ in range(2)]
    alice = app_client.post("/api/users", json={"name": "alice"}, headers=admin).json()
    bob = app_client.post("/api/users", json={"name": "bob"}, headers=admin).json()
    assert app_client.delete(f"/api/users/{bob['id']}", headers=admin).status_code == 200
    share = app_client.post(f"/api/runs/{runs[0]['id']}/shares", json={"label": "lab"}, headers=admin).json()
    return {"runs": runs, "alice": alice, "bob": bob, "share": share, "c": app_client}


def _routes(client):
    for path, ops in client.app.openapi()["paths"].items():
        for method in ops:
            yield path, method


def _fill(path: str, world) -> str:
    return (path.replace("{run_id}", world["runs"][0]["id"]).replace("{share_id}", str(world["share"]["id"]))
            .replace("{user_id}", str(world["alice"]["id"])))


def test_every_write_route_refuses_missing_invalid_revoked_and_share_tokens(world):
    c = world["c"]
    writes = [(p, m) for p, m in _routes(c) if m in WRITE_METHODS]
    assert len(writes) >= 8  # launch, cancel, edit, delete, shares ×2, users ×2, import
    bad = {"missing": {}, "invalid": auth_headers("pwu_not-a-token"), "garbled": {"Authorization": "Basic eA=="},
           "revoked": auth_headers(world["bob"]["token"]), "share": auth_headers(world["share"]["token"])}
    for path, method in writes:
        url = _fill(path, world)
        for why, headers in bad.items():
            res = c.request(method.upper(), url, json={}, headers=headers)
            assert res.status_code in (401, 403), (method, path, why, res.status_code, res.text)
    assert c.get(f"/api/runs/{world['runs'][0]['id']}", headers=auth_headers()).json()["status"] == "queued"


def test_every_read_route_needs_a_token(world):
    c = world["c"]
    for path, method in _routes(c):
        if method == "get" and path not in PUBLIC_GETS:
            for headers in ({}, auth_headers("nope"), auth_headers(world["bob"]["token"])):
                res = c.get(_fill(path, world), headers=headers)
                assert res.status_code == 401, (path, res.status_code)
    assert c.get("/api/presets").status_code == 200 and c.get("/api/me").json()["kind"] == "anonymous"


def test_member_launches_and_admin_sees_who_launched_what(world):
    c = world["c"]
    alice = auth_headers(world["alice"]["token"])
    assert world["alice"]["token"].startswith("pwu_") and len(world["alice"]["token"]) > 40
    run = c.post("/api/runs", json={"preset": "topographic-natural"}, headers=alice).json()
    assert run["launched_by"] == "alice" and run["provenance"]["seed"] == run["config"]["train"]["seed"]
    assert "git_commit" in run["provenance"]["code"] and run["provenance"]["code"]["package_version"]
    assert c.get("/api/me", headers=alice).json() == {"kind": "user", "name": "alice", "is_admin": False,
                                                      "can_write": True, "run_id": None}
    assert c.get("/api/users", headers=alice).status_code == 403  # members manage no users
    assert c.post("/api/users", json={"name": "eve"}, headers=alice).status_code == 403
    launches = c.get("/api/launches", headers=auth_headers()).json()
    assert {(x["run_id"], x["launched_by"]) for x in launches} >= {(run["id"], "alice"),
                                                                   (world["runs"][0]["id"], "admin")}
    users = {u["name"]: u for u in c.get("/api/users", headers=auth_headers()).json()}
    assert users["alice"]["runs_launched"] == 1 and users["bob"]["revoked_at"] is not None
    assert "token" not in users["alice"]  # shown once, stored hashed
    assert c.post("/api/users", json={"name": "alice"}, headers=auth_headers()).status_code == 409


def test_share_link_reads_only_its_run_and_dies_when_revoked(world):
    c = world["c"]
    own, other = (r["id"] for r in world["runs"])
    share = auth_headers(world["share"]["token"])
    assert world["share"]["path"] == f"/#/share/{world['share']['token']}"
    me = c.get("/api/me", headers=share).json()
    assert me["kind"] == "share" and me["run_id"] == own and not me["can_write"]
    assert c.get(f"/api/runs/{own}", headers=share).status_code == 200
    assert c.get(f"/api/runs/{own}/frames", headers=share).status_code == 200
    for url in (f"/api/runs/{other}", f"/api/runs/{other}/frames", f"/api/runs/{other}/ticket", "/api/runs"):
        assert c.get(url, headers=share).status_code == 403, url
    assert c.post(f"/api/runs/{own}/cancel", headers=share).status_code == 403
    listed = c.get(f"/api/runs/{own}/shares", headers=auth_headers()).json()
    assert [s["active"] for s in listed] == [True] and "token" not in listed[0]
    assert c.delete(f"/api/runs/{own}/shares/{listed[0]['id']}", headers=auth_headers()).json()["active"] is False
    assert c.get(f"/api/runs/{own}", headers=share).status_code == 401


def test_expired_share_link_is_refused(world):
    c = world["c"]
    run = world["runs"][1]["id"]
    created = c.post(f"/api/runs/{run}/shares", json={"expires_in_seconds": 60}, headers=auth_headers()).json()
    assert created["expires_at"] and created["active"]
    with c.app.state.sessions() as s:
        from backend.app.store import Share
        import datetime as dt
        s.get(Share, created["id"]).expires_at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
        s.commit()
    assert c.get(f"/api/runs/{run}", headers=auth_headers(created["token"])).status_code == 401


def test_read_tickets_reach_one_run_and_die_with_their_share(world):
    c = world["c"]
    own, other = (r["id"] for r in world["runs"])
    ticket = c.get(f"/api/runs/{own}/ticket", headers=auth_headers(world["share"]["token"])).json()["ticket"]
    assert world["share"]["token"] not in ticket and ADMIN_TOKEN not in ticket
    assert c.get(f"/api/runs/{own}/bundle.zip", params={"ticket": ticket}).status_code == 200
    assert c.get(f"/api/runs/{other}/bundle.zip", params={"ticket": ticket}).status_code == 401
    tampered = re.sub(r"\.s(\d+)\.", ".a.", ticket)  # claim to be the admin
    assert c.get(f"/api/runs/{own}/bundle.zip", params={"ticket": tampered}).status_code == 401
    assert c.get(f"/api/runs/{own}", params={"ticket": ticket}).status_code == 401  # JSON API: header only
    c.delete(f"/api/runs/{own}/shares/{world['share']['id']}", headers=auth_headers())
    assert c.get(f"/api/runs/{own}/bundle.zip", params={"ticket": ticket}).status_code == 401
    # a bearer token is never accepted in a query string
    assert c.get(f"/api/runs/{own}/bundle.zip", params={"ticket": ADMIN_TOKEN}).status_code == 401


def test_token_decisions_rest_on_compare_digest_of_the_sha256(world, monkeypatch):
    """What is guaranteed: a token is hashed (SHA-256) before any comparison, the raw token never
    meets a stored secret, and the accept/refuse decision *is* hmac.compare_digest's answer for
    admin, member and share tokens (with compare_digest saying "no", every one is refused). The
    stored-row lookup is by the digest, so its timing says nothing about the token itself."""
    from backend.app import auth

    tokens = (ADMIN_TOKEN, world["alice"]["token"], world["share"]["token"])
    calls, verdict = [], {"answer": None}
    real = auth.hmac.compare_digest

    def recording(a, b):
        calls.append((a, b))
        return real(a, b) if verdict["answer"] is None else verdict["answer"]

    monkeypatch.setattr(auth.hmac, "compare_digest", recording)
    with world["c"].app.state.sessions() as s:
        for token in tokens:
            before = len(calls)
            assert auth.principal_for_token(token, ADMIN_TOKEN, s) is not None
            digest = auth.hash_token(token)
            assert digest == hashlib.sha256(token.encode()).hexdigest()
            assert any(a == b == digest for a, b in calls[before:]), "the accepting comparison is digest vs digest"
            assert all(token not in (a, b) for a, b in calls), "a raw token was compared"
        verdict["answer"] = False  # compare_digest refuses: the token must be refused, whatever else matched
        for token in tokens:
            assert auth.principal_for_token(token, ADMIN_TOKEN, s) is None, token[:6]
