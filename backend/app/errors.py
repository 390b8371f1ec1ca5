"""The API's error answers as documented in OpenAPI, and timestamps that always carry their zone.

Every 4xx/5xx body is `{"detail": <str or [{loc, msg, type, field}]>}`: a string names the field first
("run_id: no run …"), a list is a validation failure with one item per field.
"""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str
    field: str | None = None


class ErrorOut(BaseModel):
    detail: str | list[FieldError]


WHY = {401: "no, an invalid, expired or revoked bearer token (checked before the body is read)",
       403: "the token may not do this (read-only share link, another member's run, admins only)",
       404: "no such run, preset, share or user", 409: "conflicts with the run's status or an existing name",
       413: "the body is over the route's size limit (checked before it is parsed)",
       422: "a field is invalid: the answer names it and says why",
       429: "too many queued or running runs for this member (the limit is in the message)",
       503: "the queue (Redis) is unreachable"}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route or router: these status codes with the error body."""
    return {code: {"model": ErrorOut, "description": WHY[code]} for code in codes}


def utc(when: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes; the store writes UTC."""
    if when is not None and when.tzinfo is None:
        return when.replace(tzinfo=dt.timezone.utc)
    return when


UTCDatetime = Annotated[dt.datetime, AfterValidator(utc)]  # every timestamp the API gives has its zone
