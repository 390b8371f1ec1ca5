"""The HTML export of a run: one file that opens offline and shows what the run page shows.

The template is templates/export.html; into it go the frontend's stylesheet, Plotly, the frontend's
own modules for the page (frontend/js/export_page.js and everything it imports, made one classic
script by js_bundle.py: the same renderers, curves and Results card as the live page, no second
copy to keep in step) and the run's data: its record, config, environment, every frame's metrics,
and the panels of up to EXPORT_FRAMES frames spread evenly over the run (first and last included).
"""
from __future__ import annotations

import datetime as dt
import html
import json
import re
from functools import lru_cache
from pathlib import Path

import plotly
from sqlalchemy import select

from .js_bundle import bundle
from .store import Frame, Run

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"  # also served at /vendor/plotly.min.js
TEMPLATE = Path(__file__).parent / "templates" / "export.html"
MARKER = re.compile(r"__(TITLE|STYLE|PLOTLY|NOTES|DATA|APP)__")
EXPORT_FRAMES = 24  # frames with panels in the page (~50-80 KB each)


def script_json(data) -> str:
    """JSON safe inside <script>: no '<', '>' or '&' can end the element."""
    return json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def evenly(n: int, k: int) -> list[int]:
    """k indices spread evenly over range(n), first and last included."""
    k = min(n, k)
    return sorted({round(i * (n - 1) / max(k - 1, 1)) for i in range(k)})


@lru_cache(maxsize=4)
def _static(frontend_dir: Path, mtimes: tuple) -> tuple[str, str, str]:
    """(stylesheet, app script, plotly) — rebuilt only when a frontend file changes (mtimes)."""
    style = (frontend_dir / "css" / "style.css").read_text()
    app = bundle(frontend_dir / "js", "export_page.js")
    return style, app, PLOTLY_JS.read_text().replace("</script", "<\\/script")


def static_parts(frontend_dir: Path) -> tuple[str, str, str]:
    files = sorted(frontend_dir.rglob("*.js")) + [frontend_dir / "css" / "style.css"]
    return _static(frontend_dir, tuple(f.stat().st_mtime_ns for f in files))


def record(run: Run, bundle_format: str) -> dict:
    iso = lambda when: when.isoformat() if when else None  # noqa: E731
    return {"format": bundle_format, "id": run.id, "title": run.title, "preset": run.preset, "status": run.status,
            "error": run.error, "step": run.step, "total_steps": run.total_steps, "wall_time": run.wall_time,
            "metrics": run.metrics or {}, "tags": run.tags or [], "notes": run.notes or "",
            "launched_by": run.launched_by, "provenance": run.provenance or {},
            "created_at": iso(run.created_at), "started_at": iso(run.started_at), "finished_at": iso(run.finished_at)}


def export_page(run: Run, session, frontend_dir: Path, bundle_format: str) -> str:
    rows = session.execute(select(Frame.id, Frame.step, Frame.wall_time, Frame.time, Frame.metrics)
                           .where(Frame.run_id == run.id).order_by(Frame.step, Frame.id)).all()
    names = sorted({k for r in rows for k in (r.metrics or {})})
    metrics = {"step": [r.step for r in rows], **{n: [(r.metrics or {}).get(n) for r in rows] for n in names}}
    frames = []
    for i in evenly(len(rows), EXPORT_FRAMES):  # one frame's panels in memory at a time
        r = rows[i]
        panels = session.scalar(select(Frame.panels).where(Frame.id == r.id))
        frames.append({"step": r.step, "time": r.time, "wall_time": r.wall_time,
                       "panels": json.loads(panels) if panels else {}})
    data = {"record": record(run, bundle_format), "config": run.config, "environment": run.environment or {},
            "metrics": metrics, "frames": frames, "frame_count": len(rows),
            "exported_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    style, app, plotly_js = static_parts(frontend_dir)
    parts = {"__TITLE__": html.escape(run.title), "__STYLE__": style, "__PLOTLY__": plotly_js,
             "__NOTES__": run.notes_html or "", "__DATA__": script_json(data), "__APP__": app}
    # one pass: text put in (a title, notes, Plotly) is never searched for a marker itself
    return MARKER.sub(lambda m: parts[m.group(0)], TEMPLATE.read_text())
