"""Import of a run bundle (POST /api/bundles): the upload streamed to disk, then handed to the
service module bundle_import.py, which checks every entry and recreates the run all or nothing.
The bundle itself is made by GET /api/runs/{id}/bundle.zip (routers/exports.py, which lists its
entries)."""
from __future__ import annotations

import uuid

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from .. import bundle_import
from ..deps import SessionDep, SettingsDep, WriterDep
from ..errors import errors
from ..run_files import keep
from .runs import RunOut

router = APIRouter(prefix="/api", tags=["bundles"], responses=errors(401, 403, 404, 422))


def _bad(msg: str, status: int = 422) -> HTTPException:
    return HTTPException(status, detail=f"bundle: {msg}")


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
