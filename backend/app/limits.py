"""Cheap refusals before any expensive work, and no secrets in logs.

GuardWrites (ASGI middleware) answers every write under /api/ (POST, PUT, PATCH, DELETE) *before a
byte of its body is read*: 401/403 for a missing, invalid or read-only token, then 413 for a body
over the route's limit (Content-Length, or counted while a chunked body arrives). A 100 MB JSON
body without a token used to be parsed (≈800 MB, 3.5 s) before its 401.

RedactSecrets (logging filter) rewrites `ticket=`/`token=` values in access-log lines: read tickets
travel in query strings (EventSource and downloads cannot send headers) and must not land in web.log.
"""
from __future__ import annotations

import logging
import re

from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import JSONResponse

from .auth import principal_for_token

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# routes that read their (large) body as a stream and enforce their own limit (≤ the one here)
BUNDLES = "/api/bundles"
EXTERNAL_WEIGHTS = re.compile(r"/api/external/runs/[^/]+/weights\.npz")
WORKER_FILES = "/api/worker/"  # a worker's uploads: the worker token, not a member's (routers/worker_files.py)


class GuardWrites:
    def __init__(self, app, settings, sessions):
        self.app, self.settings, self.sessions = app, settings, sessions

    def streamed(self, path: str) -> bool:
        return path == BUNDLES or bool(EXTERNAL_WEIGHTS.fullmatch(path)) or path.startswith(WORKER_FILES)

    def limit_for(self, path: str) -> int:
        if path == BUNDLES:
            return self.settings.max_bundle_bytes
        if path.startswith(WORKER_FILES):
            from .routers.worker_files import MAX_ARTIFACT_BYTES  # noqa: PLC0415 — that router owns its limit

            return MAX_ARTIFACT_BYTES
        if EXTERNAL_WEIGHTS.fullmatch(path):
            from .routers.external import MAX_WEIGHTS_BYTES  # noqa: PLC0415 — that router owns its limit

            return MAX_WEIGHTS_BYTES
        return self.settings.max_json_body_bytes

    def _who(self, header: str | None) -> JSONResponse | None:
        """The refusal for this Authorization header, or None when it names a writer."""
        def refuse(status: int, detail: str) -> JSONResponse:
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            return JSONResponse({"detail": detail}, status_code=status, headers=headers)

        if not header:
            return refuse(401, "authorization: a bearer token is required")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return refuse(401, "authorization: expected 'Bearer <token>'")
        with self.sessions() as session:
            principal = principal_for_token(token.strip(), self.settings.admin_token, session)
        if principal is None:
            return refuse(401, "authorization: invalid, expired or revoked token")
        if not principal.can_write:
            return refuse(403, "authorization: this token may only read")
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS or not scope["path"].startswith("/api/"):
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        if scope["path"].startswith(WORKER_FILES):
            from .routers.worker_files import worker_token_ok  # noqa: PLC0415

            refusal = None if worker_token_ok(self.settings, headers.get("authorization")) else JSONResponse(
                {"detail": "authorization: a worker token is required"}, status_code=401,
                headers={"WWW-Authenticate": "Bearer"})
        else:
            refusal = await run_in_threadpool(self._who, headers.get("authorization"))
        if refusal is not None:
            return await refusal(scope, receive, send)
        limit = self.limit_for(scope["path"])
        too_big = JSONResponse({"detail": f"body: over this route's limit of {limit} bytes"}, status_code=413)
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit() or int(length) > limit:
                return await too_big(scope, receive, send)
            return await self.app(scope, receive, send)  # the server delivers no more than Content-Length
        if self.streamed(scope["path"]):
            return await self.app(scope, receive, send)
        # chunked and small by rule: take it in, up to the limit, then hand it on
        messages, size = [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > limit:
                return await too_big(scope, receive, send)
            if not message.get("more_body", False):
                break

        async def replay():
            return messages.pop(0) if messages else await receive()

        return await self.app(scope, replay, send)


SECRET_QUERY = re.compile(r"((?:^|[?&;])(?:ticket|token|access_token)=)[^&;\s\"]*", re.IGNORECASE)


def redact(text: str) -> str:
    return SECRET_QUERY.sub(r"\1[redacted]", text)


class RedactSecrets(logging.Filter):
    """uvicorn's access record carries the path with its query in args; any other record, its message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str) and not record.args:
            record.msg = redact(record.msg)
        return True


def install_log_redaction() -> None:
    """On the loggers that print request lines (idempotent: uvicorn configures them before the app loads)."""
    for name in ("uvicorn.access", "uvicorn.error", "uvicorn", "gunicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())


UNPARSABLE = "There was an error parsing the body"  # FastAPI's 400 for a body json.loads raised on


async def unparsable_body(request, exc):
    """FastAPI answers 400 with no reason when json.loads fails other than by a syntax error (e.g. an
    integer of more than 4,300 digits): answer as for any invalid body, a 422 that says why."""
    from fastapi.exception_handlers import http_exception_handler  # noqa: PLC0415

    if exc.status_code == 400 and exc.detail == UNPARSABLE:
        cause = exc.__cause__
        why = f"{type(cause).__name__}: {str(cause)[:200]}" if cause else "unreadable"
        return JSONResponse({"detail": [{"loc": ["body"], "msg": f"not valid JSON ({why})", "type": "json_invalid",
                                         "field": "(body)"}]}, status_code=422)
    return await http_exception_handler(request, exc)
