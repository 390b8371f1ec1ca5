"""The FastAPI app: API routers, the frame persister, and the static frontend."""
from __future__ import annotations

import secrets
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from .errors import errors
from .html_export import PLOTLY_JS
from .limits import GuardWrites, install_log_redaction, unparsable_body
from .persister import Persister
from .queue import Queue
from .reaper import Reaper
from .routers import bundles, events, exports, presets, runs, shares, users
from .routers import external, sweeps, worker_files, workers
from .settings import Settings, get_settings
from .store import make_sessionmaker


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        persister = None
        if settings.persist_frames:
            persister = Persister(settings.redis_url, app.state.sessions, settings.consumer_name,
                                  frames_keep=settings.frames_keep, frames_keep_recent=settings.frames_keep_recent)
            persister.start()
        reaper = Reaper(settings, app.state.sessions, app.state.queue) if settings.run_reaper else None
        if reaper is not None:
            reaper.start()
        liveness = external.LivenessWatch(settings.redis_url, app.state.sessions,  # silent external runs end failed
                                          settings.external_stale_seconds)
        liveness.start()
        yield
        for thread in (persister, reaper, liveness):
            if thread is not None:
                thread.stop()
                thread.join(timeout=5)

    app = FastAPI(title="Pinwheel", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.sessions = make_sessionmaker(settings.database_url)
    app.state.queue = Queue(settings.redis_url)
    app.dependency_overrides[get_settings] = lambda: settings
    app.state.ticket_fallback = secrets.token_bytes(32)  # signs read tickets when no admin token is set
    for module in (presets, runs, events, shares, users, bundles, exports):
        # the event stream's router documents no error answers of its own: the run deps' are added here
        app.include_router(module.router, responses=errors(401, 403, 404, 422) if module is events else None)
    app.include_router(external.router, responses=errors(401, 403, 404, 409, 413, 422, 503))  # its error answers
    app.include_router(sweeps.router, responses=errors(401, 403, 404, 422, 429, 503))
    app.include_router(worker_files.router)
    app.include_router(workers.router)
    # writes: token checked and body size bounded before the body is read; no ticket in access logs
    app.add_middleware(GuardWrites, settings=settings, sessions=app.state.sessions)
    app.add_exception_handler(StarletteHTTPException, unparsable_body)  # a 422 with the reason, not a bare 400
    install_log_redaction()

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        return FileResponse(PLOTLY_JS, media_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/api/health")
    def health() -> dict:
        return {"ok": True}

    app.mount("/", StaticFiles(directory=settings.frontend_dir, html=True), name="frontend")
    return app
