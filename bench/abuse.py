"""What abuse costs the web server (issue #11), printed and written to bench/results/abuse.json.

A real uvicorn process of the app (fresh SQLite file, embedded Redis, default limits) is sampled by
psutil every 5 ms; each number is its peak RSS above the idle RSS measured just before.

1. importing the worst bundle the limits allow: metrics.csv at the row and column caps, every
   in-memory entry (record, config, environment, final frame, filters.png) at its own cap, and
   weights.npz + checkpoint.safetensors filling the rest of the uncompressed allowance (zeros,
   so the upload stays under the 200 MB limit). It is accepted (201): the most work an import does.
2. refusing a bundle whose metrics.csv has 1 M rows `0,0,0` (9 KB zipped; 490 MB before the fix).
3. refusing the largest body: 100 MB of JSON to POST /api/runs, sent whole by the client, without a
   token (401), with a token (413, Content-Length), and chunked with a token (413 while counting).
4. validation time of the tree whose node count froze the server for 11 s, and of a random valid
   launch body (median of 50, through HTTP).

    PYTHONPATH=. python bench/abuse.py [--uncompressed-mb 800]

Target (issue #11): every peak under 300 MB above idle.
"""
from __future__ import annotations

import argparse
import io
import json
import socket
import statistics
import struct
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import httpx
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.app import bundle_import as bi  # noqa: E402
from tests import services  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "abuse.json"
MIB = 1024 * 1024


class PeakRSS:
    """Peak RSS of one process while the block runs (sampled every 5 ms on a thread)."""

    def __init__(self, pid: int):
        self.proc, self.peak, self._stop = psutil.Process(pid), 0, threading.Event()

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.005)

    def __enter__(self):
        self.peak = self.proc.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        time.sleep(0.2)  # let the tail of the work show
        self._stop.set()
        self._thread.join()


def npz_of_zeros(nbytes: int) -> bytes:
    """A real .npz (zip of .npy) of float32 zeros, built without holding the array twice."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:  # as np.savez writes it: the outer zip compresses
        n = nbytes // 4
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (n,)})
        with z.open("W_d.npy", "w", force_zip64=True) as f:
            f.write(header.getvalue())  # magic string and header
            chunk = bytes(8 * MIB)
            left = n * 4
            while left:
                f.write(chunk[:min(left, len(chunk))])
                left -= min(left, len(chunk))
    return out.getvalue()


def safetensors_of_zeros(nbytes: int) -> bytes:
    n = nbytes // 4
    header = json.dumps({"W_e": {"dtype": "F32", "shape": [n], "data_offsets": [0, n * 4]}}).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + bytes(n * 4)


def worst_bundle(uncompressed: int, path: Path) -> dict:
    """At every cap at once; written to `path` entry by entry (the zip is a few MB)."""
    names = [f"metric_{i}" for i in range(bi.MAX_METRICS)]
    row = ",".join(["1234567", "123456.789", "1767225600.123"] + ["0.123456789"] * bi.MAX_METRICS) + "\n"
    csv_bytes = ("step,wall_time,time," + ",".join(names) + "\n").encode() + row.encode() * bi.MAX_IMPORTED_FRAMES
    record = {"format": bi.BUNDLE_FORMAT, "title": "worst", "tags": [f"t{i}" for i in range(20)],
              "notes": "n" * 20_000, "status": "succeeded",
              "provenance": {"pad": "p" * (bi.IN_MEMORY["record.json"] - 25_000)}}
    config = {"model": {"kind": "group_sparse", "units": 256}}
    env = {"pad": ["e" * 60] * ((bi.IN_MEMORY["environment.json"] - 100) // 65)}
    final = {"pad": [{}] * ((bi.IN_MEMORY["final_frame.json"] - 100) // 4)}  # the most objects per byte
    png = io.BytesIO()
    from PIL import Image

    Image.fromarray(np.random.default_rng(0).integers(0, 255, (1000, 1000), dtype=np.uint8)).save(png, "PNG")
    small = {"record.json": json.dumps(record).encode(), "config.json": json.dumps(config).encode(),
             "environment.json": json.dumps(env).encode(), "final_frame.json": json.dumps(final).encode(),
             "filters.png": png.getvalue()[:bi.IN_MEMORY["filters.png"]], "metrics.csv": csv_bytes,
             "frames.json": b"[]"}
    rest = uncompressed - sum(len(v) for v in small.values()) - 4 * MIB
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in small.items():
            z.writestr(name, data)
        z.writestr("weights.npz", npz_of_zeros(rest // 2))
        z.writestr("checkpoint.safetensors", safetensors_of_zeros(rest // 2))
    with zipfile.ZipFile(path) as z:
        total = sum(i.file_size for i in z.infolist())
    return {"zip_bytes": path.stat().st_size, "uncompressed_bytes": total, "metrics_rows": bi.MAX_IMPORTED_FRAMES,
            "metric_columns": bi.MAX_METRICS}


def raw_post(url: str, path: str, headers: dict, body: bytes, chunked: bool = False) -> str:
    """Send the whole body (as an abusive client would), return the status line of the answer."""
    host, port = url.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(port)), timeout=120)
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    head += "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {len(body)}\r\n"
    answer = []

    def read():
        try:
            answer.append(s.recv(200).split(b"\r\n")[0].decode())
        except OSError as exc:
            answer.append(f"no answer ({exc})")

    reader = threading.Thread(target=read)
    reader.start()
    try:
        s.sendall(head.encode() + b"\r\n")
        piece = 1 * MIB
        for i in range(0, len(body), piece):
            part = body[i:i + piece]
            s.sendall(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
        if chunked:
            s.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the server answered and closed: the rest of the body was never wanted
    reader.join(timeout=120)
    s.close()
    return answer[0] if answer else "no answer"


class Server:
    """A fresh web server (its own SQLite file) for one case, warmed up, with its idle RSS."""

    def __init__(self, work: Path, redis_url: str, uncompressed: int, name: str):
        env = services.service_env(redis_url, work / name)
        env["PINWHEEL_MAX_BUNDLE_UNCOMPRESSED_BYTES"] = str(uncompressed)
        self.proc, self.url = services.start_app(env, work / f"{name}.log")
        self.client = httpx.Client(base_url=self.url, headers=services.auth_headers(), timeout=600)
        self.client.get("/api/presets")
        self.client.post("/api/runs", json={"preset": "groups-tree"})  # warm every import path once
        bad = io.BytesIO()
        with zipfile.ZipFile(bad, "w") as z:
            z.writestr("record.json", "{}")
        self.client.post("/api/bundles", content=bad.getvalue(), headers={"Content-Type": "application/zip"})
        time.sleep(0.5)
        self.idle = psutil.Process(self.proc.pid).memory_info().rss

    def peak(self) -> PeakRSS:
        return PeakRSS(self.proc.pid)

    def above_idle(self, peak: PeakRSS) -> float:
        return round((peak.peak - self.idle) / MIB, 1)

    def close(self):
        self.client.close()
        services.stop(self.proc)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--uncompressed-mb", type=int, default=800, help="the bundle's uncompressed allowance")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pinwheel-abuse-"))
    redis_proc, redis_url = services.start_redis(work / "redis")
    uncompressed = args.uncompressed_mb * MIB
    out: dict = {"machine": {"cpus": psutil.cpu_count(), "load_1m": round(psutil.getloadavg()[0], 2)}}
    admin = services.auth_headers()
    try:
        bundle = work / "worst.zip"
        out["worst_bundle"] = worst_bundle(uncompressed, bundle)
        srv = Server(work, redis_url, uncompressed, "worst")
        with srv.peak() as peak, open(bundle, "rb") as f:
            start = time.perf_counter()
            res = srv.client.post("/api/bundles", content=f, headers={"Content-Type": "application/zip"})
            seconds = time.perf_counter() - start
        assert res.status_code == 201, res.text[:300]
        out["worst_bundle"].update(status=res.status_code, seconds=round(seconds, 2), idle_rss_mb=round(srv.idle / MIB, 1),
                                   peak_above_idle_mb=srv.above_idle(peak))
        srv.close()

        rows = io.BytesIO()
        with zipfile.ZipFile(rows, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("record.json", json.dumps({"format": bi.BUNDLE_FORMAT, "title": "rows"}))
            z.writestr("config.json", "{}")
            z.writestr("frames.json", "[]")
            z.writestr("metrics.csv", b"step,wall_time,time\n" + b"0,0,0\n" * 1_000_000)
        srv = Server(work, redis_url, uncompressed, "rows")
        with srv.peak() as peak:
            start = time.perf_counter()
            res = srv.client.post("/api/bundles", content=rows.getvalue(), headers={"Content-Type": "application/zip"})
            seconds = time.perf_counter() - start
        out["million_row_bundle"] = {"zip_bytes": len(rows.getvalue()), "status": res.status_code,
                                     "detail": res.json()["detail"], "seconds": round(seconds, 3),
                                     "idle_rss_mb": round(srv.idle / MIB, 1), "peak_above_idle_mb": srv.above_idle(peak)}
        srv.close()

        body = b'{"config": {"x": [' + b"0," * (50 * MIB - 1) + b"0]}}"  # 100 MB
        out["largest_body"] = {"bytes": len(body)}
        for name, headers, chunked in (("no_token", {}, False),
                                       ("token_content_length", {"Authorization": admin["Authorization"]}, False),
                                       ("token_chunked", {"Authorization": admin["Authorization"]}, True)):
            srv = Server(work, redis_url, uncompressed, name)
            with srv.peak() as peak:
                start = time.perf_counter()
                status = raw_post(srv.url, "/api/runs", headers, body, chunked)
                seconds = time.perf_counter() - start
            out["largest_body"][name] = {"status": status, "seconds_to_send_and_answer": round(seconds, 3),
                                         "peak_above_idle_mb": srv.above_idle(peak)}
            if name == "token_chunked":
                bomb = {"config": {"model": {"kind": "group_sparse", "units": 63, "form": "sparse_coding",
                                             "groups": {"kind": "tree", "branching": 3, "depth": 20_000_000}}}}
                times = []
                for _ in range(50):
                    start = time.perf_counter()
                    res = srv.client.post("/api/runs", json=bomb)
                    times.append(time.perf_counter() - start)
                out["tree_bomb"] = {"status": res.status_code, "field": res.json()["detail"][0]["field"],
                                    "median_ms": round(statistics.median(times) * 1000, 2),
                                    "max_ms": round(max(times) * 1000, 2)}
            srv.close()
    finally:
        services.stop(redis_proc)
    peaks = [out["worst_bundle"]["peak_above_idle_mb"], out["million_row_bundle"]["peak_above_idle_mb"],
             *(v["peak_above_idle_mb"] for v in out["largest_body"].values() if isinstance(v, dict))]
    out["target_mb"] = 300
    out["all_under_target"] = max(peaks) < 300

    print(f"{out['machine']['cpus']} cores, load {out['machine']['load_1m']}; each case on a fresh server (idle ≈ "
          f"{out['worst_bundle']['idle_rss_mb']} MB RSS)")
    wb = out["worst_bundle"]
    print(f"worst bundle ({wb['zip_bytes'] / MIB:.1f} MB zip, {wb['uncompressed_bytes'] / MIB:.0f} MB uncompressed, "
          f"{wb['metrics_rows']} rows × {wb['metric_columns']} metrics): {wb['status']} in {wb['seconds']} s, "
          f"peak +{wb['peak_above_idle_mb']} MB")
    mr = out["million_row_bundle"]
    print(f"1 M-row bundle ({mr['zip_bytes'] / 1024:.0f} KB): {mr['status']} in {mr['seconds']} s, "
          f"peak +{mr['peak_above_idle_mb']} MB")
    for name, v in out["largest_body"].items():
        if isinstance(v, dict):
            print(f"100 MB body, {name}: {v['status']} ({v['seconds_to_send_and_answer']} s), "
                  f"peak +{v['peak_above_idle_mb']} MB")
    tb = out["tree_bomb"]
    print(f"tree depth 2e7: {tb['status']} naming {tb['field']}, median {tb['median_ms']} ms over HTTP "
          f"(max {tb['max_ms']} ms)")
    print(f"every peak under {out['target_mb']} MB above idle: {out['all_under_target']}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
