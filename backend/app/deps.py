"""Dependencies, as Annotated aliases used by every router."""
from __future__ import annotations

from typing import Annotated, Iterator

from fastapi import Depends, HTTPException, Request
from sqlalchemy.orm import Session

from .queue import Queue
from .settings import Settings, get_settings
from .store import Run


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


def get_queue(request: Request) -> Queue:
    return request.app.state.queue


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
QueueDep = Annotated[Queue, Depends(get_queue)]


def get_run(run_id: str, session: SessionDep) -> Run:
    run = session.get(Run, run_id) if len(run_id) <= 32 else None
    if run is None:
        raise HTTPException(404, detail=f"run_id: no run {run_id!r}")
    return run


RunDep = Annotated[Run, Depends(get_run)]
