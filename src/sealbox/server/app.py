"""``create_app(vault, settings)``: the Starlette application, and nothing global.

NOTE: handlers are ``async def`` and call the (synchronous) core directly on the event
loop. A server process therefore runs one vault operation at a time: that is what the
storage backends' single connection wants (no thread hops, no connection pool), and a
read costs tens of microseconds of Python. Scale out with ``--workers`` (processes) or
more servers on one PostgreSQL database; Argon2 logins (~0.15 s) are rate limited.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from sealbox import errors
from sealbox.server import (
    events,
    routes_admin,
    routes_audit,
    routes_auth,
    routes_creds,
    routes_incident,
    routes_kms,
    routes_kv,
    routes_native,
    routes_rotation,
    routes_sys,
    routes_vault_auth,
    routes_vault_sys,
)
from sealbox.server.errors import MethodNotAllowed, compat_body, headers_for, native_body
from sealbox.server.fastpath import AuditBarrier, HotPath
from sealbox.server.http import ServerState
from sealbox.server.metrics import Metrics
from sealbox.server.middleware import RequestMiddleware, request_id_of
from sealbox.server.openapi import JSON, allowed_methods
from sealbox.server.routes_kv import is_compat_path
from sealbox.server.seal_flag import SealFlag
from sealbox.server.sealed import AutoUnseal, sealed_start
from sealbox.server.settings import ServerSettings
from sealbox.vault import Vault


def server_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sealbox")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0.0.0"


def all_routes() -> list[BaseRoute]:
    # Order matters: native and sys routes before the KV catch-alls (/v1/{mount}/…).
    return [
        *routes_sys.ROUTES,
        *routes_vault_sys.ROUTES,
        *routes_auth.ROUTES,
        *routes_vault_auth.ROUTES,
        *routes_native.ROUTES,
        *routes_admin.ROUTES,
        *routes_audit.ROUTES,
        *routes_rotation.ROUTES,
        *routes_creds.ROUTES,
        *routes_incident.ROUTES,
        *routes_kms.ROUTES,
        *routes_kv.ROUTES,
    ]


async def _http_exception(request: Request, exc: Exception) -> Response:
    """Router-level 404/405 in the same error shapes as everything else."""
    assert isinstance(exc, HTTPException)
    err: errors.SealboxError
    if exc.status_code == 405:
        err = MethodNotAllowed(f"method {request.method} is not allowed here")
    else:
        err = errors.NotFound("no such route")
    if is_compat_path(request.url.path):
        body = compat_body(err.message)
    else:
        body = native_body(err.code, err.message, request_id_of(request.scope))
    headers = {**headers_for(err), **(exc.headers or {})}
    if exc.status_code == 405:
        # Starlette names only the first route that matched the path; the path may have
        # more (one per method): Allow names them all, as the OpenAPI document does.
        headers["Allow"] = ", ".join(
            allowed_methods(request.app.router.routes, request.scope["path"])
        )
    return Response(body, status_code=exc.status_code, headers=headers, media_type=JSON)


def create_app(
    vault: Vault,
    settings: ServerSettings,
    *,
    reopen: Callable[[], Vault] | None = None,
    seal_flag: SealFlag | None = None,
) -> Starlette:
    """The ASGI app serving ``vault``. The vault must be open; its keys are obtained now.

    A vault whose keys cannot be opened unattended (unseal shares; a KMS that is down)
    is served sealed (:mod:`sealbox.server.sealed`) when it can be unsealed: by its shares
    over ``sys/unseal``, or, given ``reopen`` (a fresh vault for a background thread), by
    retrying its unattended providers with backoff. Otherwise the error is raised."""
    sealed = sealed_start(vault)
    # Audit events are spooled or group-committed before every response (fastpath/);
    # a sealed start has no keys for the spool: group commit.
    vault.serve(spool=settings.audit_spool and not sealed)
    retry = None
    if sealed and reopen is not None and vault.unseal.retryable():
        retry = AutoUnseal(vault, reopen)
        retry.start()
    commit = vault.audit_commit
    barrier = AuditBarrier(commit)
    server_state = ServerState(vault, settings, server_version(), seal_flag)
    stop_watch = threading.Event()
    if seal_flag is not None:
        # An idle worker drops its keys too when another one seals the server.
        seal_flag.watch(vault.unseal.follow_seal, stop_watch)
    metrics = Metrics(
        scope_labels=settings.metrics_scope_labels,
        cache_counts=server_state.tokens.counts,
        audit_counts=barrier.counts,
        rotation_counts=vault.rotations.counts,
        lease_counts=vault.leases.counts,
    )
    routes = all_routes()
    hot = HotPath(server_state, routes)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        stop_watch.set()
        # A worker stopping: what it spooled goes to the database now, not at the next start.
        with contextlib.suppress(errors.SealboxError):
            commit.store()

    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(
                RequestMiddleware,
                metrics=metrics,
                barrier=barrier,
                hot=hot,
                sealed=server_state.sealed,
            )
        ],
        exception_handlers={HTTPException: _http_exception},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False
    app.state.sealbox = server_state
    app.state.metrics = metrics
    app.state.auto_unseal = retry
    events.install(app)  # change notifications: /v1/events/… (owned by the SDK's author)
    return app
