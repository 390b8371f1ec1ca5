"""Who may read what: lab members and their tokens, share links."""
from __future__ import annotations

from pydantic import BaseModel, Field

from ..errors import UTCDatetime


class UserCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._@-]*$")
    is_admin: bool = False


class UserOut(BaseModel):
    id: int
    name: str
    is_admin: bool
    created_at: UTCDatetime
    revoked_at: UTCDatetime | None
    runs_launched: int = 0


class UserCreated(UserOut):
    token: str = Field(description="shown once; only its SHA-256 is stored")


class ShareCreate(BaseModel):
    label: str = Field("", max_length=200)
    expires_in_seconds: int | None = Field(None, ge=60, le=366 * 24 * 3600)


class ShareOut(BaseModel):
    id: int
    run_id: str
    label: str
    created_by: str | None
    created_at: UTCDatetime
    expires_at: UTCDatetime | None
    revoked_at: UTCDatetime | None
    active: bool


class ShareCreated(ShareOut):
    token: str = Field(description="shown once; only its SHA-256 is stored")
    path: str = Field(description="the page address to hand out: <origin>/#/share/<token>")
