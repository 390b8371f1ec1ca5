"""Lab members and their tokens (admins only), and "who am I" for any token."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..auth import USER_PREFIX, hash_token, new_token
from ..deps import AdminDep, PrincipalDep, SessionDep
from ..errors import errors, utc
from ..schemas import UserCreate, UserCreated, UserOut
from ..store import Run, User, utcnow

MAX_ID = 2**63 - 1  # the store's integer ids; larger ones are a 422, not an overflow
router = APIRouter(prefix="/api", tags=["users"], responses=errors(401, 403, 422))


@router.get("/me")
def whoami(principal: PrincipalDep) -> dict:
    """Who the bearer token is (no token: anonymous). A share link names its run."""
    if principal is None:
        return {"kind": "anonymous", "name": None, "is_admin": False, "can_write": False, "run_id": None}
    return {"kind": principal.kind, "name": principal.name, "is_admin": principal.is_admin,
            "can_write": principal.can_write, "run_id": principal.run_id}


def _out(session, user: User) -> UserOut:
    count = session.scalar(select(func.count()).select_from(Run).where(Run.launched_by == user.name))
    return UserOut(id=user.id, name=user.name, is_admin=user.is_admin, created_at=user.created_at,
                   revoked_at=user.revoked_at, runs_launched=count or 0)


@router.post("/users", status_code=201, response_model=UserCreated, responses=errors(409, 413))
def create_user(body: UserCreate, session: SessionDep, admin: AdminDep) -> UserCreated:
    if body.name == "admin":
        raise HTTPException(409, detail="name: 'admin' is the local admin's name")
    token = new_token(USER_PREFIX)
    user = User(name=body.name, token_hash=hash_token(token), is_admin=body.is_admin)
    session.add(user)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise HTTPException(409, detail=f"name: a user {body.name!r} exists") from None
    return UserCreated(**_out(session, user).model_dump(), token=token)


@router.get("/users", response_model=list[UserOut])
def list_users(session: SessionDep, admin: AdminDep) -> list[UserOut]:
    return [_out(session, u) for u in session.scalars(select(User).order_by(User.id))]


@router.delete("/users/{user_id}", response_model=UserOut, responses=errors(404))
def revoke_user(user_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: SessionDep, admin: AdminDep) -> UserOut:
    """Revoke a member's token (the user and the runs they launched stay on record)."""
    user = session.get(User, user_id)
    if user is None:
        raise HTTPException(404, detail=f"user_id: no user {user_id}")
    if user.revoked_at is None:
        user.revoked_at = utcnow()
        session.commit()
    return _out(session, user)


@router.get("/launches")
def launches(session: SessionDep, admin: AdminDep) -> list[dict]:
    """Who launched what: every run with its launcher, newest first."""
    rows = session.execute(select(Run.id, Run.title, Run.launched_by, Run.status, Run.created_at)
                           .order_by(Run.created_at.desc()))
    return [{"run_id": r.id, "title": r.title, "launched_by": r.launched_by, "status": r.status,
             "created_at": utc(r.created_at)} for r in rows]
