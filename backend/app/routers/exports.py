"""Exports of a run: the filter grid's evolution as an animated GIF (Pillow) or an H.264 MP4 (the
ffmpeg binary that imageio-ffmpeg ships; no torch here), the curves as CSV."""
from __future__ import annotations

import base64
import csv
import io
import json
import os
import tempfile
from typing import Annotated

import numpy as np
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response
from PIL import Image, ImageDraw
from sqlalchemy import select

from ..deps import SessionDep, TicketReaderRunDep
from ..errors import errors
from ..store import Frame

router = APIRouter(prefix="/api/runs", tags=["exports"], responses=errors(401, 403, 404, 422))


def evenly(n: int, k: int) -> list[int]:
    """k indices spread evenly over range(n), first and last included."""
    if n <= k:
        return list(range(n))
    return sorted({int(round(i)) for i in np.linspace(0, n - 1, k)})


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
    names = sorted({k for r in rows for k in (r.metrics or {})})
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["step", "wall_time", *names])
    for r in rows:
        w.writerow([r.step, r.wall_time, *[(r.metrics or {}).get(n, "") for n in names]])
    return Response(buf.getvalue(), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{run.id}-curves.csv"'})
