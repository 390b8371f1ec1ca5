"""Read-only share links (one run each; optional expiry; revocable) and read tickets."""
from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request
from sqlalchemy import select

from ..auth import SHARE_PREFIX, aware, hash_token, make_ticket, new_token, ticket_secret
from ..deps import OwnRunDep, PrincipalDep, ReaderRunDep, RunDep, SessionDep, SettingsDep, WriterDep
from ..errors import errors
from ..schemas import ShareCreate, ShareCreated, ShareOut
from ..store import Share, utcnow

router = APIRouter(prefix="/api/runs", tags=["shares"], responses=errors(401, 403, 404, 413, 422))


def _out(share: Share) -> ShareOut:
    expires = aware(share.expires_at)
    active = share.revoked_at is None and (expires is None or expires > dt.datetime.now(dt.timezone.utc))
    return ShareOut(id=share.id, run_id=share.run_id, label=share.label, created_by=share.created_by,
                    created_at=share.created_at, expires_at=share.expires_at, revoked_at=share.revoked_at,
                    active=active)


@router.post("/{run_id}/shares", status_code=201, response_model=ShareCreated)
def create_share(run: OwnRunDep, body: ShareCreate, session: SessionDep, who: WriterDep) -> ShareCreated:
    token = new_token(SHARE_PREFIX)
    expires = utcnow() + dt.timedelta(seconds=body.expires_in_seconds) if body.expires_in_seconds else None
    share = Share(run_id=run.id, token_hash=hash_token(token), label=body.label, created_by=who.name,
                  expires_at=expires)
    session.add(share)
    session.commit()
    return ShareCreated(**_out(share).model_dump(), token=token, path=f"/#/share/{token}")


@router.get("/{run_id}/shares", response_model=list[ShareOut])
def list_shares(who: WriterDep, run: RunDep, session: SessionDep) -> list[ShareOut]:
    return [_out(s) for s in session.scalars(select(Share).where(Share.run_id == run.id).order_by(Share.id))]


@router.delete("/{run_id}/shares/{share_id}", response_model=ShareOut)
def revoke_share(run: OwnRunDep, share_id: Annotated[int, Path(ge=1, le=2**63 - 1)], session: SessionDep) -> ShareOut:
    share = session.get(Share, share_id)
    if share is None or share.run_id != run.id:
        raise HTTPException(404, detail=f"share_id: no share {share_id} on this run")
    if share.revoked_at is None:
        share.revoked_at = utcnow()
        session.commit()
    return _out(share)


@router.get("/{run_id}/ticket")
def read_ticket(run: ReaderRunDep, principal: PrincipalDep, request: Request, settings: SettingsDep) -> dict:
    """A short-lived signed ticket for `?ticket=` on this run's event stream and downloads."""
    secret = ticket_secret(settings.admin_token, request.app.state.ticket_fallback)
    ticket, expires = make_ticket(secret, run.id, principal.subject, settings.ticket_ttl_seconds)
    return {"ticket": ticket, "expires_at": expires}
