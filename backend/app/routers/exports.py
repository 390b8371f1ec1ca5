"""Every download a run offers: a self-contained HTML page of its run page (html_export.py), a .zip
bundle that another server can import (routers/bundles.py, bundle_import.py), the filter grid's
evolution as an animated GIF (Pillow) or an H.264 MP4 (the ffmpeg binary that imageio-ffmpeg ships;
no torch here), the curves as CSV.

A bundle holds only data formats, never pickles:
    record.json        the run's record (name, tags, notes, status, times, launcher, provenance,
                       and its latest metrics: with final_frame.json, what the Results card shows)
    config.json        the full resolved config
    environment.json   the worker's environment record (torch, CUDA, device, code version)
    metrics.csv        step, wall_time, time and every scalar metric, one row per frame
    frames.json        the frames index (step, wall_time, time)
    final_frame.json   the last frame's panel payloads (what the run page shows at the end)
    filters.png        the final filters (the filter_grid atlas)
    weights.npz        the final weights (numpy, no object arrays)
    checkpoint.safetensors  the model state (written by the worker next to checkpoint.pt)
"""
from __future__ import annotations

import base64
import csv
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from PIL import Image, ImageDraw
from sqlalchemy import select

from ..bundle_import import BUNDLE_FORMAT
from ..deps import SessionDep, SettingsDep, TicketReaderRunDep, check_run_id
from ..errors import errors
from ..html_export import evenly, export_page, record
from ..run_files import local_folder
from ..store import Frame, Run

router = APIRouter(prefix="/api/runs", tags=["exports"], responses=errors(401, 403, 404, 422))


def _run_dir(settings, run_id: str) -> Path:
    return settings.artifacts_dir / check_run_id(run_id)


def _metrics_csv(rows, extra: tuple[str, ...] = ()) -> str:
    """One row per frame: step, wall_time, `extra` columns, then every metric (blank where absent)."""
    names = sorted({k for r in rows for k in (r.metrics or {})})
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["step", "wall_time", *extra, *names])
    for r in rows:
        w.writerow([r.step, r.wall_time, *[getattr(r, x) for x in extra], *[(r.metrics or {}).get(n, "") for n in names]])
    return buf.getvalue()


def _final_panels(session, run: Run) -> dict:
    panels = session.scalar(select(Frame.panels).where(Frame.run_id == run.id)
                            .order_by(Frame.step.desc(), Frame.id.desc()).limit(1))
    return json.loads(panels) if panels else {}


@router.get("/{run_id}/bundle.zip")
def export_bundle(run: TicketReaderRunDep, session: SessionDep, settings: SettingsDep, request: Request) -> Response:
    rows = session.execute(select(Frame.step, Frame.wall_time, Frame.time, Frame.metrics)
                           .where(Frame.run_id == run.id).order_by(Frame.step, Frame.id)).all()
    final = _final_panels(session, run)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("record.json", json.dumps(record(run, BUNDLE_FORMAT), indent=2))
        z.writestr("config.json", json.dumps(run.config, indent=2))
        z.writestr("environment.json", json.dumps(run.environment or {}, indent=2))
        z.writestr("metrics.csv", _metrics_csv(rows, ("time",)))
        z.writestr("frames.json", json.dumps([{"step": r.step, "wall_time": r.wall_time, "time": r.time}
                                              for r in rows]))
        z.writestr("final_frame.json", json.dumps(final))
        atlas = final.get("filter_grid", {}).get("atlas_png")
        if atlas:
            z.writestr("filters.png", base64.b64decode(atlas))
        folder = local_folder(request.app.state.sessions, _run_dir(settings, run.id), run.id,
                              ("weights.npz", "checkpoint.safetensors"))
        for name in ("weights.npz", "checkpoint.safetensors"):
            if (folder / name).is_file():
                z.write(folder / name, name)
    return Response(out.getvalue(), media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="pinwheel-{run.id}.zip"'})


@router.get("/{run_id}/export.html")
def export_html(run: TicketReaderRunDep, session: SessionDep, settings: SettingsDep) -> Response:
    """One file that opens offline: the run page's Results card, timeline, every panel and the curves
    (the frontend's own renderers and Plotly inline; panels of up to 24 frames)."""
    page = export_page(run, session, settings.frontend_dir, BUNDLE_FORMAT)
    return Response(page, media_type="text/html; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="pinwheel-{run.id}.html"'})


def gif_frame(atlas_b64: str, step: int, scale: int) -> Image.Image:
    atlas = Image.open(io.BytesIO(base64.b64decode(atlas_b64))).convert("L")
    if scale > 1:
        atlas = atlas.resize((atlas.width * scale, atlas.height * scale), Image.NEAREST)
    canvas = Image.new("L", (atlas.width, atlas.height + 14), 20)
    canvas.paste(atlas, (0, 14))
    ImageDraw.Draw(canvas).text((3, 1), f"step {step}", fill=235)
    return canvas


def atlas_frames(run, session, max_frames: int, scale: int, view: str) -> list[Image.Image]:
    """The decoder (or encoder) atlas of up to `max_frames` stored frames spread evenly over the run,
    each labelled with its step, all of one size."""
    rows = session.execute(select(Frame.id, Frame.step).where(Frame.run_id == run.id)
                           .order_by(Frame.step, Frame.id)).all()
    chosen = [rows[i] for i in evenly(len(rows), max_frames)]
    key = "encoder_png" if view == "encoder" else "atlas_png"
    frames: list[Image.Image] = []
    for chunk in range(0, len(chosen), 50):  # panels are large: load them 50 at a time
        ids = [r.id for r in chosen[chunk:chunk + 50]]
        for frame in session.scalars(select(Frame).where(Frame.id.in_(ids)).order_by(Frame.step, Frame.id)):
            fg = json.loads(frame.panels).get("filter_grid") or {}
            if fg.get(key):
                frames.append(gif_frame(fg[key], frame.step, scale))
    if not frames:
        raise HTTPException(404, detail=f"filter_grid: no stored frame of this run has a {view} atlas")
    size = frames[-1].size  # the layout is fixed within a run; guard anyway
    return [f if f.size == size else f.resize(size) for f in frames]


MaxFrames = Annotated[int, Query(ge=1, le=500)]
Fps = Annotated[float, Query(gt=0, le=50)]
Scale = Annotated[int, Query(ge=1, le=4)]
View = Annotated[str, Query(pattern="^(decoder|encoder)$")]


@router.get("/{run_id}/exports/filter_grid.gif")
def filter_grid_gif(run: TicketReaderRunDep, session: SessionDep, max_frames: MaxFrames = 120, fps: Fps = 8,
                    scale: Scale = 2, view: View = "decoder") -> Response:
    """The decoder (or encoder) atlas of up to `max_frames` stored frames spread evenly over the run."""
    frames = atlas_frames(run, session, max_frames, scale, view)
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=int(1000 / fps), loop=0,
                   optimize=False, disposal=1)
    return Response(buf.getvalue(), media_type="image/gif", headers={
        "Content-Disposition": f'attachment; filename="{run.id}-filters.gif"', "X-Frame-Count": str(len(frames))})


MACRO_BLOCK = 16  # H.264 / yuv420p players want both sides a multiple of this


def encode_mp4(frames: list[Image.Image], fps: float) -> bytes:
    """Grey frames → H.264 MP4 (yuv420p, every frame kept: no frame is dropped or duplicated)."""
    import imageio_ffmpeg  # noqa: PLC0415 — the ffmpeg binary is only needed for this export

    w, h = frames[0].size
    pw, ph = -(-w // MACRO_BLOCK) * MACRO_BLOCK, -(-h // MACRO_BLOCK) * MACRO_BLOCK
    fd, path = tempfile.mkstemp(suffix=".mp4")
    os.close(fd)
    try:
        writer = imageio_ffmpeg.write_frames(path, (pw, ph), pix_fmt_in="gray", pix_fmt_out="yuv420p", fps=fps,
                                             codec="libx264", quality=8, macro_block_size=MACRO_BLOCK,
                                             ffmpeg_log_level="error", output_params=["-movflags", "+faststart"])
        writer.send(None)  # start ffmpeg
        for f in frames:
            canvas = np.full((ph, pw), 20, dtype=np.uint8)  # padded with the frame's background grey
            canvas[:h, :w] = np.asarray(f, dtype=np.uint8)
            writer.send(canvas.tobytes())
        writer.close()
        with open(path, "rb") as fh:
            return fh.read()
    finally:
        os.unlink(path)


@router.get("/{run_id}/exports/filter_grid.mp4")
def filter_grid_mp4(run: TicketReaderRunDep, session: SessionDep, max_frames: MaxFrames = 120, fps: Fps = 8,
                    scale: Scale = 2, view: View = "decoder") -> Response:
    """The same frames as the GIF, as an H.264 MP4 (smaller for long runs, and seekable in any player)."""
    frames = atlas_frames(run, session, max_frames, scale, view)
    return Response(encode_mp4(frames, fps), media_type="video/mp4", headers={
        "Content-Disposition": f'attachment; filename="{run.id}-filters.mp4"', "X-Frame-Count": str(len(frames))})


@router.get("/{run_id}/exports/curves.csv")
def curves_csv(run: TicketReaderRunDep, session: SessionDep) -> Response:
    """Every stored frame's metrics: step, wall_time, then one column per metric."""
    rows = session.execute(select(Frame.step, Frame.wall_time, Frame.metrics).where(Frame.run_id == run.id)
                           .order_by(Frame.step, Frame.id)).all()
    return Response(_metrics_csv(rows), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{run.id}-curves.csv"'})
