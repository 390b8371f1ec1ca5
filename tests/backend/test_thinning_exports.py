"""Frame thinning for long runs, and the GIF / MP4 / CSV exports, on a real store (in process)."""
from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from backend.app.main import create_app
from backend.app.settings import Settings
from backend.app.store import Frame, Run
from backend.app.thinning import frames_to_drop, thin_run
from tests.services import ADMIN_TOKEN, auth_headers


def test_short_runs_keep_every_frame():
    assert frames_to_drop(list(range(0, 2000, 10)), keep=100, recent=10) == []  # 200 = 2 × keep


@pytest.mark.parametrize("n,keep,recent", [(201, 100, 10), (2000, 300, 50), (777, 50, 20), (5000, 1000, 100)])
def test_long_runs_thin_older_frames_evenly_to_exactly_keep(n, keep, recent):
    steps = [25 * i for i in range(n)]
    drop = set(frames_to_drop(steps, keep, recent))
    kept = [s for i, s in enumerate(steps) if i not in drop]
    assert len(kept) == keep  # never below the configured count
    assert kept[0] == steps[0] and kept[-recent:] == steps[-recent:]  # covers the whole run
    older = np.diff(kept[: keep - recent])
    assert older.max() <= 2.2 * older.mean()  # evenly spread, not clumped


def test_repeated_thinning_stays_between_keep_and_twice_keep():
    steps, kept = [], []
    for s in range(0, 30_000, 10):
        kept.append(s)
        drop = set(frames_to_drop(kept, 200, 20))
        kept = [k for i, k in enumerate(kept) if i not in drop]
        assert len(kept) <= 400
    assert 200 <= len(kept) <= 400 and kept[0] == 0 and kept[-1] == 29_990
    gaps = np.diff(kept[:180])
    assert gaps.max() <= 3 * np.median(gaps)


def atlas_b64(value: int) -> str:
    buf = io.BytesIO()
    Image.fromarray(np.full((27, 27), value, dtype=np.uint8)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


@pytest.fixture
def app_and_run(tmp_path, redis_url):
    settings = Settings(redis_url=redis_url.rsplit("/", 1)[0] + "/15", database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
                        artifacts_dir=tmp_path / "artifacts", persist_frames=False, admin_token=ADMIN_TOKEN)
    app = create_app(settings)
    with app.state.sessions() as s:
        s.add(Run(id="a" * 32, status="succeeded", title="t", config={}, step=0, total_steps=100, metrics={},
                  environment={}, frame_count=0))
        s.flush()
        for i in range(30):
            s.add(Frame(run_id="a" * 32, event_id=f"{i}-0", step=10 * i, wall_time=i * 0.5, time=1e9 + i,
                        metrics={"loss": 1.0 / (i + 1), "active_fraction": 0.1},
                        panels=json.dumps({"filter_grid": {"atlas_png": atlas_b64(8 * i)}})))
        s.commit()
    with TestClient(app, headers=auth_headers()) as client:
        yield app, client


def test_thin_run_deletes_from_the_store(app_and_run):
    app, _ = app_and_run
    with app.state.sessions() as s:
        assert thin_run(s, "a" * 32, keep=20, recent=5) == 0  # 30 ≤ 2 × 20: untouched
        assert thin_run(s, "a" * 32, keep=10, recent=3) == 20
        s.commit()
        steps = list(s.scalars(select(Frame.step).where(Frame.run_id == "a" * 32).order_by(Frame.step)))
    assert len(steps) == 10 and steps[0] == 0 and steps[-3:] == [270, 280, 290]


def test_filter_grid_gif_has_one_frame_per_chosen_stored_frame(app_and_run):
    _, client = app_and_run
    res = client.get(f"/api/runs/{'a' * 32}/exports/filter_grid.gif", params={"max_frames": 12, "scale": 1})
    assert res.status_code == 200 and res.headers["content-type"] == "image/gif"
    gif = Image.open(io.BytesIO(res.content))
    assert gif.n_frames == 12 == int(res.headers["x-frame-count"])
    gif.seek(11)  # the last frame is the run's last stored frame (grey 8 × 29)
    assert abs(int(np.asarray(gif.convert("L"))[20, 13]) - 232) <= 2
    every = Image.open(io.BytesIO(client.get(f"/api/runs/{'a' * 32}/exports/filter_grid.gif").content))
    assert every.n_frames == 30
    assert client.get(f"/api/runs/{'a' * 32}/exports/filter_grid.gif", params={"view": "encoder"}).status_code == 404


def test_filter_grid_mp4_has_one_frame_per_chosen_stored_frame(app_and_run, tmp_path):
    import imageio.v2 as imageio

    _, client = app_and_run
    res = client.get(f"/api/runs/{'a' * 32}/exports/filter_grid.mp4", params={"max_frames": 12, "scale": 2, "fps": 5})
    assert res.status_code == 200 and res.headers["content-type"] == "video/mp4"
    assert int(res.headers["x-frame-count"]) == 12
    path = tmp_path / "filters.mp4"
    path.write_bytes(res.content)
    with imageio.get_reader(str(path), format="FFMPEG") as reader:
        frames = [np.asarray(f) for f in reader]
        assert reader.get_meta_data()["fps"] == 5
    assert len(frames) == 12
    h, w = frames[0].shape[:2]
    assert h % 16 == 0 and w % 16 == 0 and h >= 2 * 27 + 14 and w >= 2 * 27  # scaled 2×, padded to macro blocks
    grey = [int(np.median(f[14 + 27, 27, :3])) for f in (frames[0], frames[-1])]  # the middle of each atlas
    assert abs(grey[0] - 0) <= 6 and abs(grey[1] - 232) <= 6  # the first and the last stored frame, in order
    every = client.get(f"/api/runs/{'a' * 32}/exports/filter_grid.mp4")
    assert every.status_code == 200 and int(every.headers["x-frame-count"]) == 30
    assert client.get(f"/api/runs/{'a' * 32}/exports/filter_grid.mp4", params={"view": "encoder"}).status_code == 404


def test_curves_csv(app_and_run):
    _, client = app_and_run
    lines = client.get(f"/api/runs/{'a' * 32}/exports/curves.csv").text.strip().splitlines()
    assert lines[0] == "step,wall_time,active_fraction,loss" and len(lines) == 31
    assert lines[2].split(",")[:2] == ["10", "0.5"] and float(lines[2].split(",")[3]) == 0.5
