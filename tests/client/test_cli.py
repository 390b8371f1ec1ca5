"""The `pinwheel` command against a real stack: login, launch --watch to the end, download, import,
cancel, and one clear line with a non-zero exit for every kind of bad input."""
from __future__ import annotations

import io
import json
import re
import stat
import time
import zipfile

import numpy as np
import pytest

from ..conftest import wait_for_status
from ..services import ADMIN_TOKEN
from .helpers import SMALL, cli, cli_background

pytestmark = pytest.mark.integration


@pytest.fixture
def config(tmp_path, stack):
    """A config file written by `pinwheel login`, the way a user starts."""
    path = tmp_path / "pinwheel" / "config.json"
    res = cli(["login", stack["url"], "--token", ADMIN_TOKEN], path)
    assert res.returncode == 0, res.stderr
    assert "logged in" in res.stdout and "admin" in res.stdout
    return path


def run_id_of(stdout: str, url: str) -> str:
    match = re.search(re.escape(url) + r"/#/runs/([0-9a-f]{32})", stdout)
    assert match, stdout
    return match.group(1)


def test_login_writes_a_private_config(config, stack):
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert json.loads(config.read_text()) == {"url": stack["url"], "token": ADMIN_TOKEN}


def test_launch_watch_download_import(config, stack, api, tmp_path):
    res = cli(["launch", "topographic-natural", *SMALL, "--set", "train.steps=200", "--set", "model.lam=0.2",
               "--title", "cli run", "--watch"], config)
    assert res.returncode == 0, res.stderr
    run_id = run_id_of(res.stdout, stack["url"])
    record = api.get(f"/api/runs/{run_id}").json()
    assert record["status"] == "succeeded" and record["step"] == 200
    assert record["config"]["model"]["lam"] == 0.2 and record["title"] == "cli run"  # the --set reached the run
    assert "succeeded" in res.stdout.splitlines()[-1]

    shown = cli(["show", run_id, "--json"], config)
    assert shown.returncode == 0 and json.loads(shown.stdout)["metrics"] == record["metrics"]
    listed = cli(["list", "--limit", "5"], config)
    assert run_id in listed.stdout

    weights = cli(["download", run_id, "weights", "-o", str(tmp_path / "w.npz")], config)
    assert weights.returncode == 0, weights.stderr
    with np.load(tmp_path / "w.npz", allow_pickle=False) as arrays:
        assert arrays["W_d"].shape == (144, 64)
    page = cli(["download", run_id, "html", "-o", str(tmp_path)], config)
    assert page.returncode == 0, page.stderr
    assert "cli run" in (tmp_path / f"pinwheel-{run_id}.html").read_text()
    bundle = cli(["download", run_id, "bundle", "-o", str(tmp_path)], config)
    assert bundle.returncode == 0, bundle.stderr
    zipped = tmp_path / f"pinwheel-{run_id}.zip"
    with zipfile.ZipFile(zipped) as z:
        assert json.loads(z.read("record.json"))["id"] == run_id

    imported = cli(["import", str(zipped)], config)
    assert imported.returncode == 0, imported.stderr
    new_id = run_id_of(imported.stdout, stack["url"])
    copy = api.get(f"/api/runs/{new_id}").json()
    assert new_id != run_id and copy["provenance"]["imported"]["from_run"] == run_id
    assert copy["metrics"] == record["metrics"] and copy["frame_count"] == record["frame_count"]


def test_cancel_ends_a_watched_run_with_its_own_exit_code(config, stack, api):
    watcher = cli_background(["launch", "topographic-natural", *SMALL, "--set", "train.steps=100000", "--watch"], config)
    try:
        run_id = wait_for_run_id(api, "topographic-natural")
        wait_for_status(api, run_id, ("running",))
        assert cli(["cancel", run_id], config).returncode == 0
        stdout, stderr = watcher.communicate(timeout=120)
    finally:
        watcher.kill()
    assert watcher.returncode == 4, stderr
    assert run_id in stdout and "cancelled" in stdout.splitlines()[-1]
    again = cli(["cancel", run_id], config)  # a finished run cannot be cancelled twice
    assert again.returncode == 1 and again.stderr.strip() == "error: status: run already cancelled"


def wait_for_run_id(api, preset: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        active = [r for r in api.get("/api/runs", params={"limit": 5}).json()
                  if r["preset"] == preset and r["status"] in ("queued", "running") and r["total_steps"] == 100000]
        if active:
            return active[0]["id"]
        time.sleep(0.2)
    raise TimeoutError("the watched launch did not appear")


@pytest.mark.parametrize("args, line", [
    (["launch", "no-such-preset"], "error: preset: no preset 'no-such-preset'"),
    (["launch", "topographic-natural", "--set", "model.bogus=1"], "error: config.model.group_sparse.bogus: unknown field"),
    (["launch", "topographic-natural", "--set", "model.lam=lots"], "error: config.model.group_sparse.lam: Input should be a valid number, unable to parse string as a number"),
    (["launch", "topographic-natural", "--set", "model.lam"], "error: --set 'model.lam': expected FIELD=VALUE, e.g. model.lam=0.2"),
    (["download", "0" * 32, "weights"], "error: run_id: no run '00000000000000000000000000000000'"),
    (["download", "0" * 32, "pictures"], "error: what: expected one of weights, bundle, html, got 'pictures'"),
    (["sweep", "topographic-natural"], "error: grid: give a grid or random fields to sweep over"),
    (["sweep", "topographic-natural", "--grid", "model.lam"], "error: --grid 'model.lam': expected FIELD=VALUE, e.g. model.lam=0.2"),
    (["sweep", "topographic-natural", "--random", "model.lam=a:b", "--samples", "2"],
     "error: --random model.lam: LOW and HIGH must be numbers, got 'a' and 'b'"),
    (["sweep", "topographic-natural", "--random", "model.lam=0.1:1"], "error: --samples: a random sweep needs --samples N (N ≥ 1)"),
])
def test_bad_input_is_one_line_and_exit_1(config, args, line):
    res = cli(args, config)
    assert res.returncode == 1
    # the server names a field as written (model.lam) or by its location (config.model.group_sparse.lam)
    def plain(text: str) -> str:
        return text.replace("model.group_sparse.", "model.").replace("error: config.", "error: ")
    assert plain(res.stderr.strip()) == plain(line)


def test_refused_token_and_unreachable_server(tmp_path, stack):
    path = tmp_path / "config.json"
    bad = cli(["--url", stack["url"], "--token", "pwu_not-a-token", "list"], path)
    assert bad.returncode == 1 and bad.stderr.strip() == "error: authorization: invalid, expired or revoked token"
    login = cli(["login", stack["url"], "--token", "pwu_not-a-token"], path)
    assert login.returncode == 1 and not path.exists()
    down = cli(["list"], path, env={"PINWHEEL_URL": "http://127.0.0.1:9", "PINWHEEL_TOKEN": ADMIN_TOKEN})
    assert down.returncode == 1
    assert down.stderr.startswith("error: server: cannot reach http://127.0.0.1:9") and down.stderr.count("\n") == 1
    missing = cli(["list"], path)
    assert missing.returncode == 1 and "url: no server given" in missing.stderr


def test_completion_lists_the_servers_presets(config):
    env = {"_PINWHEEL_COMPLETE": "complete_bash", "COMP_WORDS": "pinwheel launch topo", "COMP_CWORD": "2"}
    res = cli([], config, env=env)
    assert "topographic-natural" in res.stdout.split()
