"""worker/files.py: a run's files written atomically, loaded without pickle, and handed to the web
server over HTTP (a real HTTP server in a thread: no mocked client)."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import torch

from worker.files import FILES, RunFiles, Superseded


def state_at(step: int) -> dict:
    return {"step": step, "model": {"W": torch.arange(6, dtype=torch.float32).reshape(2, 3) * step},
            "optimizer": {"lr": 0.1}}


def test_save_writes_the_three_files_and_loads_them_back_without_pickle(tmp_path):
    files = RunFiles("r" * 32, tmp_path / "run", None, None, retry_seconds=1)
    files.save(state_at(3), {"W_d": np.ones((4, 2), np.float32)}, attempt=1)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == sorted(FILES)  # no .tmp left behind
    back = files.load_checkpoint()
    assert back["step"] == 3 and torch.equal(back["model"]["W"], state_at(3)["model"]["W"])
    with np.load(tmp_path / "run" / "weights.npz", allow_pickle=False) as npz:
        assert npz["W_d"].shape == (4, 2)
    from safetensors.torch import load_file
    assert torch.equal(load_file(tmp_path / "run" / "checkpoint.safetensors")["W"], state_at(3)["model"]["W"])


def test_a_failed_write_leaves_the_previous_checkpoint_whole(tmp_path):
    files = RunFiles("r" * 32, tmp_path / "run", None, None, retry_seconds=1)
    files.save(state_at(1), {"W_d": np.ones(2)}, attempt=1)
    broken = {**state_at(2), "optimizer": {"hook": lambda: None}}  # torch.save cannot write a lambda
    with pytest.raises(Exception):
        files.save(broken, {"W_d": np.ones(2)}, attempt=1)
    assert files.load_checkpoint()["step"] == 1


def test_load_refuses_a_pickled_object(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    torch.save({"step": 1, "evil": object()}, folder / "checkpoint.pt")
    with pytest.raises(Exception):
        RunFiles("r" * 32, folder, None, None, retry_seconds=1).load_checkpoint()


class Server:
    """Answers every PUT with `status`; records (path, attempt header, body)."""

    def __init__(self, status: int, detail: str = ""):
        self.status, self.detail, self.puts = status, detail, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self):
                outer.puts.append((self.path, self.headers.get("X-Pinwheel-Attempt"), self._body()))
                body = json.dumps({"detail": outer.detail}).encode() if outer.status != 204 else b""
                self.send_response(outer.status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes:
                if "chunked" in self.headers.get("Transfer-Encoding", ""):
                    out = b""
                    while (size := int(self.rfile.readline().strip(), 16)):
                        out += self.rfile.read(size)
                        self.rfile.readline()
                    self.rfile.readline()
                    return out
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_with_a_server_every_file_is_uploaded_with_the_attempt(tmp_path):
    run_id = "a" * 32
    with Server(204) as server:
        RunFiles(run_id, tmp_path / "run", server.url, "tok", retry_seconds=1).save(state_at(2), {"W_d": np.ones(2)}, 7)
    assert [(p, a) for p, a, _ in server.puts] == [(f"/api/worker/runs/{run_id}/files/{n}", "7") for n in FILES]
    for (_, _, body), name in zip(server.puts, FILES):
        assert body == (tmp_path / "run" / name).read_bytes()


def test_an_upload_answered_409_raises_superseded(tmp_path):
    with Server(409, "attempt 3 holds the run") as server:
        files = RunFiles("b" * 32, tmp_path / "run", server.url, "tok", retry_seconds=5)
        with pytest.raises(Superseded, match="attempt 3 holds the run"):
            files.save(state_at(2), {"W_d": np.ones(2)}, attempt=2)
    assert len(server.puts) == 1  # refused at once: no retry, no further files
