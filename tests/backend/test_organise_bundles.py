"""Organising (name, tags, notes, search, delete) and exports/imports of bundles (in process)."""
from __future__ import annotations

import base64
import io
import json
import zipfile
from html.parser import HTMLParser

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient
from PIL import Image
from safetensors.numpy import save as save_safetensors

from backend.app.main import create_app
from backend.app.settings import Settings
from backend.app.store import Frame, Run
from tests.services import ADMIN_TOKEN, auth_headers

ALLOWED_TAGS = {"p", "ul", "li", "strong", "em", "code", "pre", "a", "h3", "h4", "h5"}


def make(tmp_path, redis_url, name="a", **extra) -> TestClient:
    settings = Settings(redis_url=redis_url.rsplit("/", 1)[0] + "/15", database_url=f"sqlite:///{tmp_path / (name + '.db')}",
                        artifacts_dir=tmp_path / f"artifacts-{name}", persist_frames=False, admin_token=ADMIN_TOKEN,
                        **extra)
    return TestClient(create_app(settings), headers=auth_headers())


@pytest.fixture
def client(tmp_path, redis_url):
    with make(tmp_path, redis_url) as c:
        yield c


def finished_run(c, title="topo run", frames=5) -> dict:
    """A launched run, finished by hand: frames with metrics and a filter atlas, weights, checkpoint."""
    run = c.post("/api/runs", json={"preset": "topographic-natural", "title": title}).json()
    png = io.BytesIO()
    Image.fromarray((np.arange(64 * 64) % 251).astype(np.uint8).reshape(64, 64)).save(png, format="PNG")
    atlas = base64.b64encode(png.getvalue()).decode()
    with c.app.state.sessions() as s:
        r = s.get(Run, run["id"])
        for i in range(frames):
            s.add(Frame(run_id=r.id, event_id=f"{i + 1}-0", step=i * 10, wall_time=i * 0.5, time=1e9 + i,
                        metrics={"loss": 1.0 / (i + 1), "sparsity": 0.1 * i},
                        panels=json.dumps({"filter_grid": {"atlas_png": atlas, "count": 64, "cols": 8}})))
        r.status, r.step, r.frame_count, r.last_event_id = "succeeded", (frames - 1) * 10, frames, f"{frames}-0"
        r.environment = {"torch": "2.x", "device": "cpu", "code": {"git_commit": "abc"}}
        s.commit()
    folder = c.app.state.settings.artifacts_dir / run["id"]
    folder.mkdir(parents=True)
    with open(folder / "weights.npz", "wb") as f:
        np.savez(f, W_e=np.ones((4, 9), np.float32), grid_shape=np.array([2, 2]))
    (folder / "checkpoint.safetensors").write_bytes(save_safetensors({"W_e": np.ones((4, 9), np.float32)}))
    return run


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)


def test_rename_tag_and_sanitised_notes(client):
    run = finished_run(client)
    evil = ("# Result\n<script>alert(1)</script> **good** [ok](https://example.org/x?a=1&b=2)\n"
            "[bad](javascript:alert(1)) <img src=x onerror=alert(1)> <a href=\"javascript:x\">y</a>\n"
            "- one\n- `<b>`\n\"><svg onload=alert(1)>")
    res = client.patch(f"/api/runs/{run['id']}", json={"title": "Renamed", "tags": ["topo", "v2", "topo"],
                                                       "notes": evil})
    assert res.status_code == 200, res.text
    out = res.json()
    assert out["title"] == "Renamed" and out["tags"] == ["topo", "v2"] and out["notes"] == evil
    parsed = Tags()
    parsed.feed(out["notes_html"])
    assert set(parsed.tags) <= ALLOWED_TAGS and {"strong", "a", "li", "h3"} <= set(parsed.tags)
    assert {k for k, _ in parsed.attrs} <= {"href", "rel"}
    assert [v for k, v in parsed.attrs if k == "href"] == ["https://example.org/x?a=1&b=2"]
    assert "&lt;script&gt;" in out["notes_html"]
    assert client.patch(f"/api/runs/{run['id']}", json={"tags": ["<b>"]}).status_code == 422


def test_search_and_filter_the_run_list(client):
    a = finished_run(client, "alpha topo")
    b = client.post("/api/runs", json={"preset": "topographic-natural", "title": "beta 50%"}).json()
    client.patch(f"/api/runs/{a['id']}", json={"tags": ["keep", "topo"], "notes": "the pinwheels are sharp"})
    client.patch(f"/api/runs/{b['id']}", json={"tags": ["topo"]})
    ids = lambda **p: [r["id"] for r in client.get("/api/runs", params=p).json()]  # noqa: E731
    assert ids(q="alpha") == [a["id"]] and ids(q="PINWHEELS") == [a["id"]]  # name and notes, any case
    assert ids(q="50%") == [b["id"]] and ids(q="%") == [b["id"]]  # LIKE wildcards are literal
    assert ids(tag="topo") == [b["id"], a["id"]] and ids(tag=["topo", "keep"]) == [a["id"]]
    assert ids(status="succeeded") == [a["id"]] and ids(status="queued") == [b["id"]]
    assert ids(launched_by="admin", limit=1) == [b["id"]] and ids(launched_by="nobody") == []


def test_delete_removes_frames_stream_and_files(client, redis_url):
    run = finished_run(client)
    client.post(f"/api/runs/{run['id']}/shares", json={})
    folder = client.app.state.settings.artifacts_dir / run["id"]
    r = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/15")
    r.xadd(f"run:{run['id']}", {"type": "status", "data": "{}"})
    active = client.post("/api/runs", json={"preset": "topographic-natural"}).json()
    assert client.delete(f"/api/runs/{active['id']}").status_code == 409  # cancel first
    member = client.post("/api/users", json={"name": "carol"}).json()
    assert client.delete(f"/api/runs/{run['id']}", headers=auth_headers(member["token"])).status_code == 403
    assert client.delete(f"/api/runs/{run['id']}").status_code == 204
    assert client.get(f"/api/runs/{run['id']}").status_code == 404
    with client.app.state.sessions() as s:
        assert s.query(Frame).filter(Frame.run_id == run["id"]).count() == 0
    assert not folder.exists() and not r.exists(f"run:{run['id']}")


def test_bundle_round_trip_recreates_the_run_on_another_server(client, tmp_path, redis_url):
    run = finished_run(client)
    client.patch(f"/api/runs/{run['id']}", json={"tags": ["x"], "notes": "**n**"})
    res = client.get(f"/api/runs/{run['id']}/bundle.zip")
    assert res.status_code == 200 and res.headers["content-type"] == "application/zip"
    z = zipfile.ZipFile(io.BytesIO(res.content))
    assert set(z.namelist()) == {"record.json", "config.json", "environment.json", "metrics.csv", "frames.json",
                                 "final_frame.json", "filters.png", "weights.npz", "checkpoint.safetensors"}
    assert z.read("metrics.csv").decode().splitlines()[0] == "step,wall_time,time,loss,sparsity"
    assert json.loads(z.read("environment.json"))["code"] == {"git_commit": "abc"}
    assert Image.open(io.BytesIO(z.read("filters.png"))).size == (64, 64)
    with make(tmp_path, redis_url, name="b") as other:
        imported = other.post("/api/bundles", content=res.content, headers={"Content-Type": "application/zip"})
        assert imported.status_code == 201, imported.text
        new = imported.json()
        assert new["id"] != run["id"] and new["status"] == "succeeded" and new["tags"] == ["x"]
        assert new["config"] == run["config"] and new["frame_count"] == 5 and "<strong>n</strong>" in new["notes_html"]
        assert new["provenance"]["imported"]["from_run"] == run["id"]
        frames = other.get(f"/api/runs/{new['id']}/frames", params={"panels": False, "limit": 100}).json()["frames"]
        assert [f["step"] for f in frames] == [0, 10, 20, 30, 40] and frames[-1]["metrics"]["loss"] == 0.2
        last = other.get(f"/api/runs/{new['id']}/frames", params={"from_step": 40}).json()["frames"][0]
        assert last["panels"]["filter_grid"]["count"] == 64
        # what the Results card is computed from: the latest metrics and the last frame's panels
        original = client.get(f"/api/runs/{run['id']}/frames", params={"from_step": 40}).json()["frames"][0]
        assert new["metrics"] == original["metrics"] == {"loss": 0.2, "sparsity": 0.4}
        assert last["panels"] == original["panels"]
        weights = np.load(io.BytesIO(other.get(f"/api/runs/{new['id']}/weights.npz").content))
        assert weights["W_e"].shape == (4, 9)


def _zip(entries: dict, compression=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return out.getvalue()


def _post(c, data: bytes):
    return c.post("/api/bundles", content=data, headers={"Content-Type": "application/zip"})


def test_bundle_import_rejects_bad_input(tmp_path, redis_url):
    with make(tmp_path, redis_url, max_bundle_bytes=200_000, max_bundle_uncompressed_bytes=1_000_000) as c:
        run = finished_run(c)
        good = zipfile.ZipFile(io.BytesIO(c.get(f"/api/runs/{run['id']}/bundle.zip").content))
        base = {n: good.read(n) for n in good.namelist()}
        assert _post(c, _zip(base)).status_code == 201

        assert _post(c, b"x" * 200_001).status_code == 413  # oversized upload
        assert _post(c, b"not a zip").status_code == 422
        for evil in ("../record.json", "/etc/passwd", "sub/../../x.json", "..\\x.json"):
            res = _post(c, _zip({**base, evil: b"{}"}))
            assert res.status_code == 422 and "traversal" in res.json()["detail"], evil
        for pickle_name in ("checkpoint.pt", "model.pkl", "data.npy"):
            res = _post(c, _zip({**base, pickle_name: b"\x80\x04K\x01."}))
            assert res.status_code == 422 and "no pickles" in res.json()["detail"], pickle_name
        obj = io.BytesIO()
        np.savez(obj, W_e=np.array([{"a": 1}], dtype=object))  # an object array is a pickle inside
        res = _post(c, _zip({**base, "weights.npz": obj.getvalue()}))
        assert res.status_code == 422 and "weights.npz" in res.json()["detail"]
        bomb = _zip({**base, "frames.json": b"[" + b" " * 2_000_000 + b"]"})  # 2 MB of spaces → a few KB
        assert len(bomb) < 200_000
        res = _post(c, bomb)
        assert res.status_code == 413 and "uncompressed" in res.json()["detail"]
        assert _post(c, _zip({**base, "filters.png": b"\x89PNG not really"})).status_code == 422
        assert _post(c, _zip({k: v for k, v in base.items() if k != "config.json"})).status_code == 422
        assert len(c.get("/api/runs").json()) == 2  # only the original and the one good import


def test_html_export_is_self_contained(client):
    run = finished_run(client)
    client.patch(f"/api/runs/{run['id']}", json={"notes": "<script>alert(1)</script>"})
    res = client.get(f"/api/runs/{run['id']}/export.html")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/html")
    page = res.text
    assert "attachment" in res.headers["content-disposition"]
    assert "Plotly" in page and len(page) > 1_000_000  # plotly.min.js inline
    from backend.app.html_export import PLOTLY_JS
    ours = page.replace(PLOTLY_JS.read_text().replace("</script", "<\\/script"), "")
    assert len(ours) < len(page) - 1_000_000  # the whole of plotly.min.js is in the page
    assert "http" not in ours.replace("https://example.org", "") and "<script src" not in ours  # nothing fetched
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)" in ours
    assert ours.count("data:image/png") == 1  # images are set by the page's own script from the JSON
    data = json.loads(page.split('<script type="application/json" id="data">')[1].split("</script>")[0])
    assert [f["step"] for f in data["frames"]] == [0, 10, 20, 30, 40] and data["metrics"]["step"] == [0, 10, 20, 30, 40]
    assert all(f["panels"]["filter_grid"]["count"] == 64 for f in data["frames"])
    # the run page's own renderers, every panel kind, inlined as one script (no module to fetch)
    for kind in ("filter_grid", "topographic_map", "tree_inhibition", "interaction_matrix", "drsae_units",
                 "group_activations", "reconstructions", "sparsity"):
        assert f'__define("panels/{kind}.js"' in ours, kind
    assert '<script type="module"' not in ours and "import(" not in ours

