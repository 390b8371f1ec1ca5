"""Exports of a run (a self-contained HTML page; a .zip bundle) and import of a bundle.

A bundle holds only data formats, never pickles:
    record.json        the run's record (name, tags, notes, status, times, launcher, provenance)
    config.json        the full resolved config
    environment.json   the worker's environment record (torch, CUDA, device, code version)
    metrics.csv        step, wall_time, time and every scalar metric, one row per frame
    frames.json        the frames index (step, wall_time, time)
    final_frame.json   the last frame's panel payloads (what the run page shows at the end)
    filters.png        the final filters (the filter_grid atlas)
    weights.npz        the final weights (numpy, no object arrays)
    checkpoint.safetensors  the model state (written by the worker next to checkpoint.pt)
Import (bundle_import.py) checks the upload's size, every entry's name (no folders, no traversal,
only the names above), the uncompressed sizes (zip bombs), every entry's CRC, and reads .npz and
.safetensors by their headers only (no pickle, no load); memory stays bounded whatever the bundle.
"""
from __future__ import annotations

import base64
import csv
import datetime as dt
import html
import io
import json
import re
import uuid
import zipfile
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy import select

from .. import bundle_import
from ..bundle_import import BUNDLE_FORMAT
from ..deps import SessionDep, SettingsDep, TicketReaderRunDep, WriterDep
from ..errors import errors
from ..store import Frame, Run
from ..run_files import keep, local_folder
from .runs import RunOut

router = APIRouter(prefix="/api", tags=["bundles"], responses=errors(401, 403, 404, 422))
PLOTLY_JS = Path(__import__("plotly").__file__).parent / "package_data" / "plotly.min.js"
HTML_EXPORT_FRAMES = 24  # frames with images in the static page (sized: ~50 KB each)


def _run_dir(settings, run_id: str) -> Path:
    if not re.fullmatch(r"[0-9a-f]{32}", run_id):
        raise HTTPException(404, detail="run_id: malformed")
    return settings.artifacts_dir / run_id


def _bad(msg: str, status: int = 422) -> HTTPException:
    return HTTPException(status, detail=f"bundle: {msg}")


def _iso(when: dt.datetime | None) -> str | None:
    return when.isoformat() if when else None


def _record(run: Run) -> dict:
    return {"format": BUNDLE_FORMAT, "id": run.id, "title": run.title, "preset": run.preset, "status": run.status,
            "error": run.error, "step": run.step, "total_steps": run.total_steps, "wall_time": run.wall_time,
            "metrics": run.metrics or {}, "tags": run.tags or [], "notes": run.notes or "",
            "launched_by": run.launched_by, "provenance": run.provenance or {},
            "created_at": _iso(run.created_at), "started_at": _iso(run.started_at),
            "finished_at": _iso(run.finished_at)}


def _metric_rows(session, run: Run) -> list:
    return session.execute(select(Frame.step, Frame.wall_time, Frame.time, Frame.metrics)
                           .where(Frame.run_id == run.id).order_by(Frame.step, Frame.id)).all()


def _final_panels(session, run: Run) -> dict:
    panels = session.scalar(select(Frame.panels).where(Frame.run_id == run.id)
                            .order_by(Frame.step.desc(), Frame.id.desc()).limit(1))
    return json.loads(panels) if panels else {}


# --- export ----------------------------------------------------------------------------------------
@router.get("/runs/{run_id}/bundle.zip")
def export_bundle(run: TicketReaderRunDep, session: SessionDep, settings: SettingsDep, request: Request) -> Response:
    rows = _metric_rows(session, run)
    names = sorted({k for r in rows for k in (r.metrics or {})})
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["step", "wall_time", "time", *names])
    for r in rows:
        writer.writerow([r.step, r.wall_time, r.time, *[(r.metrics or {}).get(n, "") for n in names]])
    final = _final_panels(session, run)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("record.json", json.dumps(_record(run), indent=2))
        z.writestr("config.json", json.dumps(run.config, indent=2))
        z.writestr("environment.json", json.dumps(run.environment or {}, indent=2))
        z.writestr("metrics.csv", text.getvalue())
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


def _script_json(data) -> str:
    """JSON safe inside <script>: no '<', '>' or '&' can end the element."""
    return json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


EXPORT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} — Pinwheel export</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; padding: 0 1em; }}
.cols {{ display: flex; gap: 1.5em; flex-wrap: wrap; }} .cols > div {{ flex: 1 1 480px; }}
img#filters {{ image-rendering: pixelated; width: 100%; max-width: 560px; border: 1px solid #ddd; }}
table {{ border-collapse: collapse; }} td, th {{ border-bottom: 1px solid #eee; padding: 2px 8px; text-align: left; vertical-align: top; }}
pre {{ background: #f6f6f6; padding: .6em; overflow: auto; max-height: 420px; }} .muted {{ color: #777; }}
.tag {{ background: #e7ecff; border-radius: 3px; padding: 0 6px; margin-right: 4px; }}
</style>
<script>{plotly}</script></head>
<body>
<h1 id="title"></h1><div id="meta" class="muted"></div><div id="tags"></div>
<div class="cols">
 <div><h2>Filters</h2><img id="filters" alt="filters"><br>
  <input type="range" id="timeline" min="0" max="0" value="0" style="width:100%"><div id="cursor" class="muted"></div></div>
 <div><h2>Curves</h2><div id="curves" style="height:360px"></div></div>
</div>
<h2>Notes</h2><div id="notes">{notes_html}</div>
<h2>Record</h2><table id="record"></table>
<h2>Config</h2><pre id="config"></pre>
<script type="application/json" id="data">{data}</script>
<script>
const D = JSON.parse(document.getElementById("data").textContent);
const $ = (id) => document.getElementById(id);
$("title").textContent = D.record.title;
$("meta").textContent = `${{D.record.status}} · step ${{D.record.step}} / ${{D.record.total_steps}} · exported ${{D.exported_at}}`;
for (const t of D.record.tags) {{ const s = document.createElement("span"); s.className = "tag"; s.textContent = t; $("tags").append(s); }}
$("config").textContent = JSON.stringify(D.config, null, 2);
const rec = {{ "launched by": D.record.launched_by, seed: D.record.provenance.seed, code: JSON.stringify(D.record.provenance.code),
  torch: D.environment.torch, cuda: D.environment.cuda, device: D.environment.device, started: D.record.started_at,
  finished: D.record.finished_at, preset: D.record.preset, "run id": D.record.id }};
for (const [k, v] of Object.entries(rec)) {{
  const tr = document.createElement("tr"); const a = document.createElement("th"); const b = document.createElement("td");
  a.textContent = k; b.textContent = v ?? "–"; tr.append(a, b); $("record").append(tr);
}}
const slider = $("timeline");
function show(i) {{ const f = D.images[i]; if (!f) return; $("filters").src = "data:image/png;base64," + f.png;
  $("cursor").textContent = `step ${{f.step}}`; slider.value = i; }}
slider.max = Math.max(D.images.length - 1, 0); slider.addEventListener("input", () => show(+slider.value));
show(D.images.length - 1);
const names = Object.keys(D.metrics).filter((n) => n !== "step");
Plotly.newPlot("curves", names.map((n) => ({{ x: D.metrics.step, y: D.metrics[n], name: n, mode: "lines",
  visible: n === "loss" || n === "reconstruction" ? true : "legendonly" }})),
  {{ margin: {{ t: 10, r: 20, b: 40, l: 55 }}, xaxis: {{ title: {{ text: "step" }} }}, yaxis: {{ type: "log" }},
     legend: {{ orientation: "h", y: -0.2 }} }}, {{ displaylogo: false, responsive: true }});
document.body.dataset.ready = "1";
</script></body></html>
"""


@router.get("/runs/{run_id}/export.html")
def export_html(run: TicketReaderRunDep, session: SessionDep) -> Response:
    """One file that opens offline: Plotly inline, filter images inline (at most 24 frames)."""
    rows = _metric_rows(session, run)
    names = sorted({k for r in rows for k in (r.metrics or {})})
    metrics = {"step": [r.step for r in rows], **{n: [(r.metrics or {}).get(n) for r in rows] for n in names}}
    steps = session.scalars(select(Frame.step).where(Frame.run_id == run.id).order_by(Frame.step)).all()
    n = min(HTML_EXPORT_FRAMES, len(steps))  # evenly spaced, first and last included
    picks = sorted({steps[round(i * (len(steps) - 1) / max(n - 1, 1))] for i in range(n)})
    images = []
    for step in picks:
        panels = session.scalar(select(Frame.panels).where(Frame.run_id == run.id, Frame.step == step).limit(1))
        png = json.loads(panels).get("filter_grid", {}).get("atlas_png") if panels else None
        if png:
            images.append({"step": step, "png": png})
    data = {"record": _record(run), "config": run.config, "environment": run.environment or {},
            "metrics": metrics, "images": images, "exported_at": dt.datetime.now(dt.timezone.utc).isoformat()}
    page = EXPORT_PAGE.format(title=html.escape(run.title), plotly=PLOTLY_JS.read_text().replace("</script", "<\\/script"),
                              notes_html=run.notes_html or "", data=_script_json(data))
    return Response(page, media_type="text/html; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="pinwheel-{run.id}.html"'})


# --- import (backend/app/bundle_import.py) --------------------------------------------------------
BUNDLE_BODY = {"requestBody": {"required": True, "description": "the bundle .zip that GET …/bundle.zip gives",
                               "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}}}


@router.post("/bundles", status_code=201, response_model=RunOut, responses=errors(413), openapi_extra=BUNDLE_BODY)
async def import_bundle(request: Request, session: SessionDep, settings: SettingsDep, who: WriterDep) -> RunOut:
    """Body: the bundle .zip itself (Content-Type: application/zip). Recreates the run's page.
    The upload goes to disk as it arrives (never whole in memory) and is read from there."""
    limit = settings.max_bundle_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _bad(f"upload over the limit of {limit} bytes", 413)
    incoming = settings.artifacts_dir / ".incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    path = incoming / f"{uuid.uuid4().hex}.zip"
    try:
        size = 0
        with open(path, "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _bad(f"upload over the limit of {limit} bytes", 413)
                out.write(chunk)
        run = await run_in_threadpool(bundle_import.import_bundle, path, settings.artifacts_dir,
                                      settings.max_bundle_uncompressed_bytes, session, who)
        for name in ("weights.npz", "checkpoint.safetensors"):  # for the other web hosts too
            if (settings.artifacts_dir / run.id / name).is_file():
                await run_in_threadpool(keep, request.app.state.sessions, run.id, name, settings.artifacts_dir / run.id / name)
    finally:
        path.unlink(missing_ok=True)
    return RunOut.of(run)
