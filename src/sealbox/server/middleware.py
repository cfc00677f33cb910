"""The one pure-ASGI middleware around every request.

It gives the request an id (``X-Request-Id``, echoed when sane, else generated), refuses
path tricks (encoded ``/`` or ``\\``, NUL, ``.``/``..`` segments) before routing, maps
every :class:`~sealbox.errors.SealboxError` to its status through THE table in
:mod:`sealbox.server.errors`, turns anything unexpected into a detail-free 500, and
writes the access log line and the metrics. (Authentication is per route, through
:func:`sealbox.server.http.caller` and the token cache, so public routes pay nothing.)
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sealbox import errors
from sealbox.server import logs
from sealbox.server.auth import Caller
from sealbox.server.errors import (
    UNEXPECTED,
    compat_body,
    compat_error,
    headers_for,
    native_body,
    public_message,
    status_for,
)
from sealbox.server.fastpath import AuditBarrier, HotPath
from sealbox.server.metrics import Metrics
from sealbox.server.routes_kv import is_compat_path

#: What a sealed server serves; everything else is 503 ``{"errors": ["sealbox is sealed"]}``.
SEALED_OPEN = frozenset(
    {
        "/v1/sys/health",
        "/v1/sys/ready",
        "/v1/sys/seal-status",
        "/v1/sys/unseal",
        "/v1/sys/seal",
        "/v1/sys/leader",
    }
)
SEALED_BODY = b'{"errors":["sealbox is sealed"]}'
REQUEST_ID_RE = re.compile(rb"[A-Za-z0-9._:-]{1,128}\Z")
_BAD_RAW = (b"%2f", b"%5c", b"%00")
UNMATCHED = "<unmatched>"


def request_id_of(scope: Scope) -> str:
    rid: str = scope.get("sealbox.request_id", "")
    return rid


def check_path(scope: Scope) -> None:
    """Refuse paths that could address something else than they appear to."""
    path: str = scope["path"]
    raw_path: bytes = scope.get("raw_path") or path.encode()
    if "/." not in path and "\x00" not in path and b"%" not in raw_path:
        return  # nothing encoded, no dot segment: the common case, decided at once
    raw = raw_path.split(b"?", 1)[0].lower()
    if any(bad in raw for bad in _BAD_RAW):
        raise errors.InvalidInput("the path may not hold encoded '/', '\\' or NUL characters")
    try:
        # uvicorn decodes with errors="replace": %ff and %ef%bf%bd would both be U+FFFD.
        unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise errors.InvalidInput("the path is not valid UTF-8 once %-decoded") from None
    if "\x00" in path:
        raise errors.InvalidInput("the path may not hold NUL characters")
    if any(segment in (".", "..") for segment in path.split("/")):
        raise errors.InvalidInput("the path may not hold '.' or '..' segments")


async def send_error(
    scope: Scope, send: Send, exc: errors.SealboxError, *, status: int | None = None
) -> int:
    rid = request_id_of(scope)
    if is_compat_path(scope["path"]):
        compat_status, message = compat_error(exc)
        status = status if status is not None else compat_status
        body = compat_body(message)
    else:
        status = status if status is not None else status_for(exc)
        body = native_body(exc.code, public_message(exc), rid)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", rid.encode()),
    ]
    headers += [(k.encode(), v.encode()) for k, v in headers_for(exc).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return status


class Unexpected(errors.SealboxError):
    code = UNEXPECTED

    def __init__(self, request_id: str) -> None:
        super().__init__(f"internal error (request id {request_id})")


class RequestMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        barrier: AuditBarrier,
        hot: HotPath | None = None,
        sealed: Callable[[], bool] | None = None,
    ) -> None:
        self.app = app
        #: True while the vault is sealed: only SEALED_OPEN is served (the hot path too
        #: is behind this check).
        self.sealed = sealed
        self.metrics = metrics
        self.barrier = barrier
        self.hot = hot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_at = time.perf_counter()
        rid = ""
        for key, value in scope["headers"]:
            if key == b"x-request-id" and REQUEST_ID_RE.match(value):
                rid = value.decode()
                break
        if not rid:
            rid = os.urandom(8).hex()
        scope["sealbox.request_id"] = rid
        rid_header = (b"x-request-id", rid.encode())
        outcome: dict[str, Any] = {"status": 500, "started": False}

        barrier = self.barrier

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Fail closed: nothing leaves before the audit events it caused are stored.
                await barrier.wait()
                outcome["started"] = True
                outcome["status"] = message["status"]
                message["headers"] = [*message.get("headers", ()), rid_header]
            await send(message)

        error: str | None = None
        try:
            check_path(scope)
            if self.sealed is not None and self.sealed() and scope["path"] not in SEALED_OPEN:
                outcome["status"] = 503
                error = errors.Sealed.code
                await send(
                    {
                        "type": "http.response.start",
                        "status": 503,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(SEALED_BODY)).encode()),
                            (b"retry-after", b"5"),
                            rid_header,
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": SEALED_BODY})
                return
            if not (
                scope["method"] == "GET"
                and self.hot is not None
                and await self.hot.handle(scope, send_with_id)
            ):
                await self.app(scope, receive, send_with_id)
        except errors.SealboxError as exc:
            error = exc.code
            if isinstance(exc, errors.BackendUnavailable):
                self.metrics.storage_error()
            if not outcome["started"]:
                try:
                    await self.barrier.wait()  # a denial's event is stored before it is told
                except errors.SealboxError as audit_exc:
                    exc, error = audit_exc, audit_exc.code
                outcome["status"] = await send_error(scope, send, exc)
        except Exception as exc:
            error = UNEXPECTED
            logs.unexpected(exc, rid)
            if not outcome["started"]:
                outcome["status"] = await send_error(scope, send, Unexpected(rid), status=500)
        finally:
            self._finish(scope, outcome["status"], started_at, error)

    def _finish(self, scope: Scope, status: int, started_at: float, error: str | None) -> None:
        seconds = time.perf_counter() - started_at
        route = scope.get("route")
        template = getattr(route, "path", None) or UNMATCHED
        method = scope["method"]
        key: tuple[str, ...] = (method, template, str(status))
        if self.metrics.scope_labels:
            params = scope.get("path_params") or {}
            key += (str(params.get("project", "")), str(params.get("env", "")))
        self.metrics.observe(key, seconds)
        who: Caller | None = scope.get("sealbox.caller")
        client = scope.get("client")
        fields: dict[str, Any] = {
            "request_id": scope.get("sealbox.request_id"),
            "method": method,
            "route": template,
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            "identity": who.principal.name if who else None,
            "accessor": who.principal.token_accessor if who else None,
            "remote": client[0] if client else None,
        }
        if error:
            fields["error"] = error
        logs.access(fields)
