"""Who may do what: bearer tokens (admin, lab members, share links) and signed read tickets.

- The admin token comes from Settings.admin_token (PINWHEEL_ADMIN_TOKEN). Lab members' tokens and
  share-link tokens are random 32-byte values; only their SHA-256 is stored.
- Every comparison of a secret is constant-time (hmac.compare_digest).
- Tokens travel only in the Authorization header. EventSource and <a download> cannot send headers,
  so a reader exchanges its token for a short-lived *ticket* (HMAC-signed run id, expiry and
  subject) that may appear in a query string: it grants reading one run, nothing else, and dies
  with the token or share it was issued for.
- Nothing here logs a token.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from .store import Share, User

USER_PREFIX = "pwu_"
SHARE_PREFIX = "pws_"


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def aware(when: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes; the store writes UTC."""
    if when is not None and when.tzinfo is None:
        return when.replace(tzinfo=dt.timezone.utc)
    return when


@dataclass(frozen=True)
class Principal:
    kind: str  # "admin" | "user" | "share" | "ticket"
    name: str  # who, for launched_by and audit; a share's "share:<id>"
    is_admin: bool = False
    run_id: str | None = None  # share links and tickets reach only this run
    subject: str = ""  # what a ticket derived from this principal is tied to

    @property
    def can_write(self) -> bool:
        return self.kind in ("admin", "user")


def _share_active(share: Share | None) -> bool:
    if share is None or share.revoked_at is not None:
        return False
    expires = aware(share.expires_at)
    return expires is None or expires > dt.datetime.now(dt.timezone.utc)


def principal_for_token(token: str, admin_token: str | None, session: Session) -> Principal | None:
    """The principal a bearer token names, or None (unknown, revoked or expired)."""
    if not token or len(token) > 200:
        return None
    digest = hash_token(token)
    if admin_token and hmac.compare_digest(digest, hash_token(admin_token)):
        return Principal("admin", "admin", is_admin=True, subject="a")
    if token.startswith(SHARE_PREFIX):
        share = session.scalar(select(Share).where(Share.token_hash == digest))
        if share is not None and hmac.compare_digest(share.token_hash, digest) and _share_active(share):
            return Principal("share", f"share:{share.id}", run_id=share.run_id, subject=f"s{share.id}")
        return None
    user = session.scalar(select(User).where(User.token_hash == digest))
    if user is not None and hmac.compare_digest(user.token_hash, digest) and user.revoked_at is None:
        return Principal("user", user.name, is_admin=user.is_admin, subject=f"u{user.id}")
    return None


def _sign(secret: bytes, payload: str) -> str:
    mac = hmac.new(secret, payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def ticket_secret(admin_token: str | None, fallback: bytes) -> bytes:
    """Derived from the admin token (so every backend process agrees), else per-process random."""
    if admin_token:
        return hmac.new(admin_token.encode(), b"pinwheel read ticket v1", hashlib.sha256).digest()
    return fallback


def make_ticket(secret: bytes, run_id: str, subject: str, ttl_seconds: int) -> tuple[str, int]:
    expires = int(time.time()) + ttl_seconds
    payload = f"{run_id}.{expires}.{subject}"
    return f"{payload}.{_sign(secret, payload)}", expires


def principal_for_ticket(ticket: str, run_id: str, secret: bytes, session: Session) -> Principal | None:
    """A ticket is valid for its own run, before its expiry, while its subject is still valid."""
    parts = ticket.split(".")
    if len(parts) != 4 or len(ticket) > 200:
        return None
    t_run, t_exp, subject, sig = parts
    if not hmac.compare_digest(_sign(secret, f"{t_run}.{t_exp}.{subject}"), sig):
        return None
    if t_run != run_id or not t_exp.isdigit() or int(t_exp) < time.time():
        return None
    if subject.startswith("s") and subject[1:].isdigit():
        if not _share_active(session.get(Share, int(subject[1:]))):
            return None
    elif subject.startswith("u") and subject[1:].isdigit():
        user = session.get(User, int(subject[1:]))
        if user is None or user.revoked_at is not None:
            return None
    elif subject != "a":
        return None
    return Principal("ticket", f"ticket:{subject}", run_id=t_run, subject=subject)
