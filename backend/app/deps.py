"""Dependencies, as Annotated aliases used by every router."""
from __future__ import annotations

import re
from typing import Annotated, Iterator

from fastapi import Depends, HTTPException, Query, Request
from sqlalchemy.orm import Session

from .auth import Principal, principal_for_ticket, principal_for_token, ticket_secret
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


RUN_ID = re.compile(r"[0-9a-f]{32}")  # the ids this server makes (uuid4 hex)


def check_run_id(run_id: str) -> str:
    """A run id safe to build a path from (<artifacts>/<id>/…): the form this server makes; 404 otherwise."""
    if not RUN_ID.fullmatch(run_id):
        raise HTTPException(404, detail="run_id: malformed")
    return run_id


def get_run(run_id: str, session: SessionDep) -> Run:
    """The run, without any check of who asks: only behind a dependency that authenticated first."""
    run = session.get(Run, run_id) if len(run_id) <= 32 else None
    if run is None:
        raise HTTPException(404, detail=f"run_id: no run {run_id!r}")
    return run

RunDep = Annotated[Run, Depends(get_run)]  # only after the caller is known: put WriterDep/MemberDep first


# --- who may do what (backend/app/auth.py) -------------------------------------------------------
def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def get_principal(request: Request, session: SessionDep, settings: SettingsDep) -> Principal | None:
    """The bearer token's principal; None without a token; 401 for an unknown/revoked/expired one."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("authorization: expected 'Bearer <token>'")
    principal = principal_for_token(token.strip(), settings.admin_token, session)
    if principal is None:
        raise _unauthorized("authorization: invalid, expired or revoked token")
    return principal


PrincipalDep = Annotated[Principal | None, Depends(get_principal)]


def require_member(principal: PrincipalDep) -> Principal:
    """A lab member or the admin (not a share link): may read every run."""
    if principal is None:
        raise _unauthorized("authorization: a bearer token is required")
    if principal.kind == "share":
        raise HTTPException(403, detail="authorization: a share link reaches only its own run")
    return principal


def require_writer(principal: PrincipalDep) -> Principal:
    if principal is None:
        raise _unauthorized("authorization: a bearer token is required")
    if not principal.can_write:
        raise HTTPException(403, detail="authorization: this token may only read")
    return principal


def require_admin(principal: Annotated[Principal, Depends(require_writer)]) -> Principal:
    if not principal.is_admin:
        raise HTTPException(403, detail="authorization: admins only")
    return principal


def _check_scope(principal: Principal, run_id: str) -> None:
    if principal.run_id is not None and principal.run_id != run_id:
        raise HTTPException(403, detail="authorization: this link reaches another run only")


# Every run route authenticates *before* looking the run up: without a valid token a known and an
# unknown run id both answer 401, so outsiders learn nothing about which runs exist.
def read_run(run_id: str, session: SessionDep, principal: PrincipalDep) -> Run:
    """A run, for a member, the admin, or a share link of this very run (header only)."""
    if principal is None:
        raise _unauthorized("authorization: a bearer token or share link is required")
    _check_scope(principal, run_id)
    return get_run(run_id, session)


def read_run_ticket(run_id: str, request: Request, session: SessionDep, settings: SettingsDep,
                    principal: PrincipalDep, ticket: Annotated[str | None, Query(max_length=200)] = None) -> Run:
    """As read_run, or a signed ticket in the query (EventSource and downloads cannot send headers)."""
    if principal is None and ticket:
        secret = ticket_secret(settings.admin_token, request.app.state.ticket_fallback)
        principal = principal_for_ticket(ticket, run_id, secret, session)
        if principal is None:
            raise _unauthorized("ticket: invalid or expired; fetch a new one")
    return read_run(run_id, session, principal)


def own_run(run_id: str, session: SessionDep, who: Annotated[Principal, Depends(require_writer)]) -> Run:
    """A run the caller may change (edit, cancel, delete, share links): its launcher's or any, for admins."""
    run = get_run(run_id, session)
    if not who.is_admin and (run.launched_by is None or run.launched_by != who.name):
        raise HTTPException(403, detail="authorization: only the member who launched this run or an admin "
                                        "may change it")
    return run


MemberDep = Annotated[Principal, Depends(require_member)]
WriterDep = Annotated[Principal, Depends(require_writer)]
AdminDep = Annotated[Principal, Depends(require_admin)]
ReaderRunDep = Annotated[Run, Depends(read_run)]
TicketReaderRunDep = Annotated[Run, Depends(read_run_ticket)]
OwnRunDep = Annotated[Run, Depends(own_run)]
