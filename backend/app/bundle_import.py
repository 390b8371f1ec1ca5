"""Import of a run bundle (.zip, see routers/bundles.py) in bounded memory, all or nothing.

- The upload is on disk (the route streams it there); entries are read from the zip file one at a
  time: small ones (JSON, PNG) under their own caps, metrics.csv line by line straight into the
  database in batches, weights and checkpoint copied to disk and checked by their headers only.
  A 9 KB bundle of 1 M rows `0,0,0` used to cost ~490 MB before its 422.
- Any damaged entry (CRC, truncated deflate stream) is a 422 naming the entry, never a 500.
- record.json's name, tags and notes go through RunEdit, the model PATCH uses.
- Nothing is stored unless everything passed: one transaction, files moved into place last.
"""
from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import math
import re
import shutil
import struct
import uuid
import zipfile
import zlib
from pathlib import Path
from typing import Literal

import numpy as np
from fastapi import HTTPException
from PIL import Image
from pydantic import Field, ValidationError
from sqlalchemy import insert, update

from pinwheel.configs import RunConfig
from pinwheel.protocol import TERMINAL_STATUSES

from .markdown import render_markdown
from .schemas import RunEdit
from .store import Frame, Run
from .validation import field_errors

BUNDLE_FORMAT = "pinwheel-bundle/1"
ENTRIES = {"record.json", "config.json", "environment.json", "metrics.csv", "frames.json", "final_frame.json",
           "filters.png", "weights.npz", "checkpoint.safetensors"}
REQUIRED = {"record.json", "config.json", "metrics.csv", "frames.json"}
KIB, MIB = 1024, 1024 * 1024
# entries read into memory have caps of their own (a real one is a few KB; final_frame ~50 KB)
IN_MEMORY = {"record.json": MIB, "config.json": 256 * KIB, "environment.json": 256 * KIB,
             "final_frame.json": 4 * MIB, "filters.png": 4 * MIB}
MAX_IMPORTED_FRAMES = 50_000  # a run keeps ≤ 2 × frames_keep (2,000 by default) frames
MAX_METRICS = 64  # metric columns in metrics.csv (a run reports ~10-20)
MAX_LINE = 64 * KIB  # one metrics.csv line
BATCH = 2_000  # frames inserted per statement
METRIC = re.compile(r"[A-Za-z_][A-Za-z0-9_.:/+-]{0,63}")
MAX_STEP = 2**31 - 1
DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError)


def bad(msg: str, status: int = 422) -> HTTPException:
    return HTTPException(status, detail=f"bundle: {msg}")


class BundleRecord(RunEdit):
    """record.json: the run's name, tags and notes exactly as PATCH takes them, and its history."""

    format: Literal["pinwheel-bundle/1"]
    id: str | None = Field(None, max_length=64)
    preset: str | None = Field(None, max_length=64)
    status: str | None = Field(None, max_length=16)
    error: str | None = Field(None, max_length=10_000)
    launched_by: str | None = Field(None, max_length=100)
    provenance: dict = {}
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None


def _infos(z: zipfile.ZipFile, max_total: int) -> dict[str, zipfile.ZipInfo]:
    infos: dict[str, zipfile.ZipInfo] = {}
    for info in z.infolist():
        name = info.filename
        if "/" in name or "\\" in name or ".." in name or name.startswith(("~", ".")) or ":" in name:
            raise bad(f"entry {name[:100]!r}: folders and path traversal are refused")
        if name not in ENTRIES:
            raise bad(f"entry {name[:100]!r}: only the bundle's .json/.csv/.png/.npz/.safetensors files "
                      "are accepted (no pickles)")
        if name in infos:
            raise bad(f"entry {name!r} appears twice")
        infos[name] = info
    if sum(i.file_size for i in infos.values()) > max_total:
        raise bad(f"uncompressed size over the limit of {max_total} bytes", 413)
    for name, cap in IN_MEMORY.items():
        if name in infos and infos[name].file_size > cap:
            raise bad(f"entry {name!r}: {infos[name].file_size} bytes uncompressed, the limit is {cap}", 413)
    missing = REQUIRED - infos.keys()
    if missing:
        raise bad(f"missing {', '.join(sorted(missing))}")
    return infos


def _read(z: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """A small entry, whole; reading to its end checks its CRC."""
    try:
        with z.open(info) as f:
            content = f.read(info.file_size + 1)
    except DAMAGE as exc:
        raise bad(f"entry {info.filename!r} is damaged ({type(exc).__name__}: {str(exc)[:120]})") from None
    if len(content) != info.file_size:
        raise bad(f"entry {info.filename!r}: its real size differs from its header (zip bomb?)", 413)
    return content


def _copy(z: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path) -> None:
    """A large entry to disk in 1 MiB pieces (CRC checked at its end)."""
    try:
        with z.open(info) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out, MIB)
    except DAMAGE as exc:
        raise bad(f"entry {info.filename!r} is damaged ({type(exc).__name__}: {str(exc)[:120]})") from None


def _json(z, infos, name: str, kind: type):
    try:
        value = json.loads(_read(z, infos[name]))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise bad(f"{name}: not valid JSON") from None
    if not isinstance(value, kind):
        raise bad(f"{name}: expected a JSON {kind.__name__}")
    return value


def check_npz(path: Path, max_total: int) -> None:
    """Every array of a .npz is a plain numeric .npy: read from its header alone (no pickle, no load);
    the arrays together no larger than the bundle's allowance (whoever loads the file later is spared)."""
    try:
        with zipfile.ZipFile(path) as inner:
            if sum(i.file_size for i in inner.infolist()) > max_total:
                raise bad("weights.npz: uncompressed arrays over the limit", 413)
            for info in inner.infolist():
                with inner.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read_header(f, max_header_size=10_000)
                    if dtype.hasobject:
                        raise ValueError(f"{info.filename}: object array (a pickle)")
                    header = f.tell()
                    if header + math.prod(shape) * dtype.itemsize != info.file_size:
                        raise ValueError(f"{info.filename}: size does not match its shape")
    except ValueError as exc:
        raise bad(f"weights.npz: not a plain numpy archive ({str(exc)[:200]})") from None
    except DAMAGE as exc:
        raise bad(f"weights.npz: not a plain numpy archive ({type(exc).__name__})") from None


SAFETENSOR_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                    "BOOL": 1, "U16": 2, "U32": 4, "U64": 8}


def check_safetensors(path: Path) -> None:
    """The header names tensors whose byte ranges tile the file exactly (read: the header only)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > min(size - 8, 100 * MIB):
                raise ValueError("header length")
            header = json.loads(f.read(n))
        spans = []
        for key, t in header.items():
            if key == "__metadata__":
                continue
            start, end = t["data_offsets"]
            if end - start != math.prod(t["shape"]) * SAFETENSOR_BYTES[t["dtype"]]:
                raise ValueError(key)
            spans.append((start, end))
        spans.sort()
        if any(a[1] != b[0] for a, b in zip(spans, spans[1:])) or (spans and (spans[0][0] != 0
                                                                          or spans[-1][1] != size - 8 - n)):
            raise ValueError("offsets")
    except Exception:
        raise bad("checkpoint.safetensors: unreadable") from None


def check_png(content: bytes) -> None:
    try:
        with Image.open(io.BytesIO(content)) as img:
            if img.format != "PNG" or img.width * img.height > 50_000_000:
                raise ValueError("not a PNG of sensible size")
            img.verify()
    except Exception:
        raise bad("filters.png: not a valid PNG") from None


def _lines(f):
    """metrics.csv as text lines, none longer than MAX_LINE (a file without newlines is not read whole)."""
    while True:
        line = f.readline(MAX_LINE + 1)
        if not line:
            return
        if len(line) > MAX_LINE:
            raise bad(f"metrics.csv: a line is over {MAX_LINE} bytes")
        yield line.decode("utf-8")


def _number(text: str, where: str) -> float | None:
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise bad(f"metrics.csv: {where}: {text[:40]!r} is not a number") from None
    return value if math.isfinite(value) else None  # NaN/inf cannot travel in JSON: stored as missing


def _frames(z, info, session, run_id: str) -> tuple[int, dict | None]:
    """Insert metrics.csv's rows as frames (batches), return their count and the last one."""
    count, last, batch = 0, None, []
    try:
        with z.open(info) as f:
            rows = csv.reader(_lines(f))
            header = next(rows, None)
            if not header or header[:3] != ["step", "wall_time", "time"]:
                raise bad("metrics.csv: expected step, wall_time, time and numeric metric columns")
            names = header[3:]
            if len(names) > MAX_METRICS:
                raise bad(f"metrics.csv: {len(names)} metric columns, at most {MAX_METRICS}")
            for name in names:
                if not METRIC.fullmatch(name):
                    raise bad(f"metrics.csv: metric name {name[:70]!r}: letters, digits, '_.:/+-', at most 64")
            if len(set(names)) != len(names):
                raise bad("metrics.csv: a metric column appears twice")
            for row in rows:
                if not row:
                    continue
                count += 1
                if count > MAX_IMPORTED_FRAMES:
                    raise bad(f"metrics.csv: more than {MAX_IMPORTED_FRAMES} frames")
                if len(row) < 3 or len(row) > len(header):
                    raise bad(f"metrics.csv: row {count}: {len(row)} values for {len(header)} columns")
                try:
                    step = int(row[0])
                except ValueError:
                    raise bad(f"metrics.csv: row {count}: step {row[0][:40]!r} is not an integer") from None
                if not 0 <= step <= MAX_STEP:
                    raise bad(f"metrics.csv: row {count}: step {step} outside 0..{MAX_STEP}")
                wall, when = (_number(row[i], f"row {count} {header[i]}") or 0.0 for i in (1, 2))
                metrics = {}
                for name, text in zip(names, row[3:]):
                    value = _number(text, f"row {count} {name}")
                    if value is not None:
                        metrics[name] = value
                last = {"step": step, "wall_time": wall, "time": when, "metrics": metrics}
                batch.append({"run_id": run_id, "event_id": f"{count}-0", **last, "panels": "{}"})
                if len(batch) >= BATCH:
                    session.execute(insert(Frame), batch)
                    batch = []
    except UnicodeDecodeError:
        raise bad("metrics.csv: not UTF-8 text") from None
    except csv.Error as exc:
        raise bad(f"metrics.csv: {exc}") from None
    except DAMAGE as exc:
        raise bad(f"entry 'metrics.csv' is damaged ({type(exc).__name__}: {str(exc)[:120]})") from None
    if batch:
        session.execute(insert(Frame), batch)
    return count, last


def _drain(z, info) -> None:
    """Read an entry we do not keep (frames.json) to its end: a damaged one is refused like any other."""
    try:
        with z.open(info) as f:
            while f.read(MIB):
                pass
    except DAMAGE as exc:
        raise bad(f"entry {info.filename!r} is damaged ({type(exc).__name__}: {str(exc)[:120]})") from None


def _record(z, infos) -> BundleRecord:
    raw = _json(z, infos, "record.json", dict)
    if raw.get("format") != BUNDLE_FORMAT:
        raise bad(f"record.json: format is not {BUNDLE_FORMAT!r}")
    try:
        return BundleRecord.model_validate(raw)
    except ValidationError as exc:
        first = field_errors(exc, raw)[0]
        raise bad(f"record.json: {first['field']}: {first['msg']}") from None


def _config(z, infos, external: bool) -> tuple[dict, int, str]:
    """(config as stored, total steps, what to call the run). A run logged by the user's own code
    (pinwheel.log) carries the user's config, not a preset's: kept as the JSON object it is."""
    raw = _json(z, infos, "config.json", dict)
    if external:
        return raw, 0, "external run"
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as exc:
        first = field_errors(exc, raw)[0]
        raise bad(f"config.json: {first['field']}: {first['msg']}") from None
    return config.model_dump(mode="json"), config.train.steps, config.model.kind


def import_bundle(path: Path, artifacts_dir: Path, max_total: int, session, who) -> Run:
    """The run recreated from the bundle at `path`, committed; or an HTTPException and nothing stored."""
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise bad("not a .zip file") from None
    run_id = uuid.uuid4().hex
    staging = artifacts_dir / f".import-{run_id}"
    try:
        with z:
            infos = _infos(z, max_total)
            record = _record(z, infos)
            external = (record.provenance or {}).get("origin") == "external"
            config, total_steps, kind = _config(z, infos, external)
            environment = _json(z, infos, "environment.json", dict) if "environment.json" in infos else {}
            final = _json(z, infos, "final_frame.json", dict) if "final_frame.json" in infos else {}
            if "filters.png" in infos:
                png = _read(z, infos["filters.png"])
                check_png(png)
                final.setdefault("filter_grid", {})
                if not isinstance(final["filter_grid"], dict):
                    raise bad("final_frame.json: filter_grid is not an object")
                final["filter_grid"]["atlas_png"] = base64.b64encode(png).decode()
            _drain(z, infos["frames.json"])
            for name, check in (("weights.npz", lambda p: check_npz(p, max_total)),
                                ("checkpoint.safetensors", check_safetensors)):
                if name in infos:
                    staging.mkdir(parents=True, exist_ok=True)
                    _copy(z, infos[name], staging / name)
                    check(staging / name)
            notes = record.notes or ""
            provenance = dict(record.provenance)
            provenance["imported"] = {"from_run": record.id, "launched_by": record.launched_by,
                                      "imported_by": who.name,
                                      "imported_at": dt.datetime.now(dt.timezone.utc).isoformat()}
            run = Run(id=run_id, status=record.status if record.status in TERMINAL_STATUSES else "cancelled",
                      preset=record.preset, title=(record.title or "").strip() or kind,
                      config=config, step=0, total_steps=total_steps,
                      wall_time=0.0, metrics={}, environment=environment, error=record.error, frame_count=0,
                      last_event_id=None, launched_by=who.name, tags=record.tags or [], notes=notes,
                      notes_html=render_markdown(notes), provenance=provenance,
                      started_at=record.started_at, finished_at=record.finished_at)
            session.add(run)
            session.flush()  # the run row before its frames (foreign key)
            count, last = _frames(z, infos["metrics.csv"], session, run_id)
        if last is not None:
            session.execute(update(Frame).where(Frame.run_id == run_id, Frame.event_id == f"{count}-0")
                            .values(panels=json.dumps(final)))
            run.step, run.wall_time, run.metrics = last["step"], last["wall_time"], last["metrics"]
            run.frame_count, run.last_event_id = count, f"{count}-0"
            run.total_steps = run.total_steps or run.step  # an external run's length is what it logged
        if staging.exists():
            staging.rename(artifacts_dir / run_id)
        session.commit()
    except BaseException:
        session.rollback()
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(artifacts_dir / run_id, ignore_errors=True)
        raise
    return run
