"""Workers hand a run's files to the web side over HTTP: no disk is shared between machines.

A worker on another host (PINWHEEL_SERVER_URL, PINWHEEL_WORKER_TOKEN) uploads its checkpoint,
weights.npz and safetensors checkpoint after each checkpoint, and a worker resuming a run — on any
host — downloads the checkpoint from here. Uploads are fenced like every other write of an attempt
(pinwheel/leases.py): only the attempt that holds the run may replace its files, so a worker that
stalled past its lease cannot overwrite its successor's newer checkpoint.
"""
from __future__ import annotations

import hmac
import os
import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from pinwheel.leases import exec_state

from ..deps import QueueDep, SessionDep, SettingsDep
from ..errors import errors
from ..run_files import keep, local_copy
from ..settings import Settings
from ..store import Run

router = APIRouter(prefix="/api/worker/runs", tags=["workers"])
ArtifactName = Literal["checkpoint.pt", "weights.npz", "checkpoint.safetensors"]
RunId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="a run id")]
MAX_ARTIFACT_BYTES = 4 * 1024**3  # a checkpoint of the largest model the configs allow, with room


def worker_token_ok(settings: Settings, authorization: str | None) -> bool:
    scheme, _, token = (authorization or "").partition(" ")
    return bool(settings.worker_token) and scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode(), settings.worker_token.encode())


def require_worker(settings: SettingsDep, authorization: Annotated[str | None, Header()] = None) -> None:
    if not worker_token_ok(settings, authorization):
        raise HTTPException(401, detail="authorization: a worker token is required",
                            headers={"WWW-Authenticate": "Bearer"})


WorkerDep = Annotated[None, Depends(require_worker)]


def _run_dir(settings: Settings, session, run_id: str):
    if session.get(Run, run_id) is None:
        raise HTTPException(404, detail=f"run_id: no run {run_id!r}")
    return settings.artifacts_dir / run_id


@router.put("/{run_id}/files/{name}", status_code=204, responses=errors(401, 404, 409, 413))
async def put_file(run_id: RunId, name: ArtifactName, request: Request, settings: SettingsDep, session: SessionDep,
                   queue: QueueDep, _: WorkerDep,
                   x_pinwheel_attempt: Annotated[int, Header(description="the attempt that writes")]) -> None:
    """Replace one of the run's files (streamed to disk, then renamed into place)."""
    folder = _run_dir(settings, session, run_id)
    session.close()  # no database connection held while a large body arrives
    held = exec_state(queue.redis, run_id)
    if held.get("attempt") != str(x_pinwheel_attempt) or held.get("state") != "running":
        raise HTTPException(409, detail=f"x-pinwheel-attempt: attempt {x_pinwheel_attempt} no longer holds "
                                        f"this run (now {held.get('attempt')}, {held.get('state')})")
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.{uuid.uuid4().hex}.part"
    size = 0
    try:
        with open(tmp, "wb") as f:
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_ARTIFACT_BYTES:
                    raise HTTPException(413, detail=f"body: over {MAX_ARTIFACT_BYTES} bytes")
                f.write(chunk)
        os.replace(tmp, folder / name)
        await run_in_threadpool(keep, request.app.state.sessions, run_id, name, folder / name)  # for other web hosts
    finally:
        tmp.unlink(missing_ok=True)


@router.get("/{run_id}/files/{name}", responses=errors(401, 404))
def get_file(run_id: RunId, name: ArtifactName, request: Request, settings: SettingsDep, session: SessionDep,
             _: WorkerDep) -> FileResponse:
    path = local_copy(request.app.state.sessions, _run_dir(settings, session, run_id), run_id, name)
    if path is None:
        raise HTTPException(404, detail=f"{name}: none stored for this run yet")
    return FileResponse(path, media_type="application/octet-stream")
