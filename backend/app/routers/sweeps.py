"""Sweeps: one request queues a grid (or random sample) of config variants as ordinary runs.

Each run goes through the launch route itself (runs.launch: validation, user folders, time
estimate, queue), so a sweep run is a run like any other. What ties them together: the tag
`sweep:<id>` and `provenance.sweep` = {id, index, params: {field: value}} — no new table. Every
variant is validated before the first is queued (a bad value in the last one launches nothing),
and the member's active-run limit is checked for the whole sweep up front.
"""
from __future__ import annotations

import copy
import itertools
import math
import uuid
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, HTTPException, Path
from sqlalchemy import String, cast, func, select

from pinwheel._client_overrides import FIELD, OverrideError, set_path
from pinwheel.protocol import ACTIVE_STATUSES, TERMINAL_STATUSES

from ..deps import MemberDep, QueueDep, SessionDep, SettingsDep, WriterDep
from ..queue import QueueUnavailable
from ..schemas import RandomAxis, SweepOut, SweepRequest, SweepRun
from ..schemas.sweeps import MAX_RUNS
from ..store import Run
from . import runs

router = APIRouter(prefix="/api/sweeps", tags=["sweeps"])
SweepId = Annotated[str, Path(pattern=r"^[0-9a-f]{12}$")]


def _field_422(field: str, msg: str) -> HTTPException:
    """`field` is "<section>.<name>": the name (a config path, maybe malformed) stays one loc item."""
    return HTTPException(422, detail=[{"loc": ["body", *field.split(".", 1)], "msg": msg, "type": "value_error",
                                       "field": field}])


def _draw(axis: RandomAxis | list, rng: np.random.Generator, field: str) -> Any:
    if isinstance(axis, list):
        if not axis:
            raise _field_422(f"random.{field}", "give one or more choices")
        return axis[int(rng.integers(len(axis)))]
    if axis.high < axis.low or (axis.log and axis.low <= 0):
        raise _field_422(f"random.{field}", "needs low ≤ high (and low > 0 for a log range)")
    value = math.exp(rng.uniform(math.log(axis.low), math.log(axis.high))) if axis.log else rng.uniform(axis.low, axis.high)
    return int(round(value)) if axis.integer else float(f"{value:.6g}")


def variants(body: SweepRequest) -> list[dict[str, Any]]:
    """Every run's params ({field: value}): the grid's product, times `samples` random draws."""
    for section, names in (("grid", body.grid), ("random", body.random)):
        for name in names:
            if not FIELD.fullmatch(name):
                raise _field_422(f"{section}.{name}", "a field is dotted names, e.g. model.lam")
    for name, values in body.grid.items():
        if not values:
            raise _field_422(f"grid.{name}", "give one or more values")
    if body.random and body.samples < 1:
        raise _field_422("samples", "a random sweep needs samples ≥ 1")
    grid = [dict(zip(body.grid, combo)) for combo in itertools.product(*body.grid.values())]
    if body.random:
        rng = np.random.default_rng(body.seed)
        draws = [{name: _draw(axis, rng, name) for name, axis in body.random.items()} for _ in range(body.samples)]
        grid = [{**g, **d} for g in grid for d in draws]
    if len(grid) < 2 and not body.grid and not body.random:
        raise _field_422("grid", "give a grid or random fields to sweep over")
    if len(grid) > MAX_RUNS:
        raise _field_422("grid", f"{len(grid)} runs; a sweep holds at most {MAX_RUNS}")
    return grid


def _label(params: dict) -> str:
    return ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in params.items())


def sweep_runs(session, sweep_id: str) -> list[Run]:
    tag = f'%"sweep:{sweep_id}"%'  # the tag inside the JSON list's text: portable across SQLite and PostgreSQL
    rows = session.scalars(select(Run).where(cast(Run.tags, String).like(tag)).order_by(Run.created_at))
    return [r for r in rows if f"sweep:{sweep_id}" in (r.tags or [])]


def sweep_out(session, sweep_id: str) -> SweepOut:
    members = sweep_runs(session, sweep_id)
    if not members:
        raise HTTPException(404, detail=f"sweep_id: no sweep {sweep_id!r}")
    members.sort(key=lambda r: ((r.provenance or {}).get("sweep") or {}).get("index", 0))
    info = (members[0].provenance or {}).get("sweep") or {}
    fields = list(info.get("fields") or [])
    out = [SweepRun(id=r.id, status=r.status, title=r.title, step=r.step, total_steps=r.total_steps,
                    params=((r.provenance or {}).get("sweep") or {}).get("params", {}), metrics=r.metrics or {},
                    error=r.error) for r in members]
    counts: dict[str, int] = {}
    for r in members:
        counts[r.status] = counts.get(r.status, 0) + 1
    return SweepOut(id=sweep_id, title=info.get("title", ""), fields=fields, runs=out, counts=counts)


@router.post("", status_code=201, response_model=SweepOut)
def start_sweep(body: SweepRequest, session: SessionDep, queue: QueueDep, who: WriterDep,
                settings: SettingsDep) -> SweepOut:
    params = variants(body)
    base = body.config or {}
    configs = []
    for p in params:
        config = copy.deepcopy(base)
        try:
            for name, value in p.items():
                set_path(config, name, value)
        except OverrideError as exc:
            raise _field_422("grid", str(exc)) from None
        runs.resolve_config(runs.LaunchRequest(preset=body.preset, config=config))  # 422 naming the field, before any launch
        configs.append(config)
    active = session.scalar(select(func.count()).select_from(Run).where(
        Run.launched_by == who.name, Run.status.in_(ACTIVE_STATUSES)))
    limit = settings.max_active_runs_per_member
    if active + len(configs) > limit:
        raise HTTPException(429, detail=f"runs: a sweep of {len(configs)} with {active} queued or running already "
                                        f"would pass {who.name}'s limit of {limit}")
    sweep_id = uuid.uuid4().hex[:12]
    title = body.title or f"sweep of {body.preset or 'a config'}"
    fields = list(dict.fromkeys([*body.grid, *body.random]))
    for index, (p, config) in enumerate(zip(params, configs)):
        launched = runs.launch(body=runs.LaunchRequest(preset=body.preset, config=config,
                                                       title=f"{title} · {_label(p)}"[:200]),
                               session=session, queue=queue, who=who, settings=settings)
        run = session.get(Run, launched.id)
        run.tags = [*(run.tags or []), f"sweep:{sweep_id}"]
        run.provenance = {**(run.provenance or {}), "sweep": {"id": sweep_id, "index": index, "params": p,
                                                              "fields": fields, "title": title}}
        session.commit()
    return sweep_out(session, sweep_id)


@router.get("/{sweep_id}", response_model=SweepOut)
def get_sweep(sweep_id: SweepId, session: SessionDep, who: MemberDep) -> SweepOut:
    """Every run of the sweep: its params, status and latest metrics (the final ones once it ended)."""
    return sweep_out(session, sweep_id)


@router.post("/{sweep_id}/cancel", response_model=SweepOut)
def cancel_sweep(sweep_id: SweepId, session: SessionDep, queue: QueueDep, who: WriterDep) -> SweepOut:
    """Cancel every queued or running run of the sweep (its launcher or an admin)."""
    members = sweep_runs(session, sweep_id)
    if not members:
        raise HTTPException(404, detail=f"sweep_id: no sweep {sweep_id!r}")
    if not who.is_admin and any(r.launched_by != who.name for r in members):
        raise HTTPException(403, detail="authorization: only the member who started this sweep or an admin may cancel it")
    try:
        for run in members:
            if run.status not in TERMINAL_STATUSES:
                queue.cancel(run.id)
    except QueueUnavailable as exc:
        raise HTTPException(503, detail=str(exc)) from None
    return sweep_out(session, sweep_id)
