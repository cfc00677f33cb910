"""Operational routes: liveness, readiness, the OpenAPI document, metrics (no token), and
the seal in Vault's shapes (``sys/seal-status``, ``sys/unseal``: no token, the share is the
credential; ``sys/seal``: admin), so ``bao status`` / ``bao operator unseal`` work."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sealbox.errors import InvalidInput
from sealbox.server.http import (
    caller,
    json_body,
    json_response,
    no_content,
    query_int,
    state,
)
from sealbox.server.metrics import CONTENT_TYPE
from sealbox.server.openapi import document


def _status_param(request: Request, name: str, default: int, highest: int = 599) -> int:
    status = query_int(request, name)
    if status is None:
        return default
    if not 200 <= status <= highest or status in NO_BODY:
        raise InvalidInput(
            f"query parameter {name!r} must be an HTTP status (200-{highest}) that may carry"
            " the health answer (not 204, 205 or 304)"
        )
    return status


#: Statuses an HTTP answer may not carry a body with: health always has one.
NO_BODY = frozenset({204, 205, 304})


CLUSTER_NAME = "sealbox"
#: Vault's ``build_date`` and OpenBao's ``commit_date`` (RFC 3339); sealbox builds carry
#: none, so a fixed epoch.
BUILD_DATE = "1970-01-01T00:00:00Z"


async def health(request: Request) -> Response:
    """Liveness in the shape of OpenBao's ``sys/health`` (its fields, and its
    ``sealedcode``/``activecode``/``standbycode`` query parameters; sealbox has no
    standbys), plus sealbox's own ``status``: 503 with ``"sealed": true`` while sealed
    (Vault's semantics), 200 once unsealed."""
    st = state(request)
    sealed = st.sealed()
    _status_param(request, "standbycode", 429)  # checked; there is no standby
    # Vault's ?sealedcode=: a liveness probe must not restart a server that waits
    # for its shares (each restart would start sealed again).
    status = (
        _status_param(request, "sealedcode", 503)
        if sealed
        # a success: an active server that answers an error would be restarted in a loop
        else _status_param(request, "activecode", 200, highest=299)
    )
    body: dict[str, Any] = {
        "status": "sealed" if sealed else "ok",
        "initialized": True,
        "sealed": sealed,
        "standby": False,
        "replication_performance_mode": "disabled",
        "replication_dr_mode": "disabled",
        "server_time_utc": int(time.time()),
        "version": st.version,
    }
    if not sealed:
        body["cluster_name"] = CLUSTER_NAME
        body["cluster_id"] = st.vault.vault_id
    return json_response(body, status=status)


async def ready(request: Request) -> Response:
    """Readiness: storage and key provider checked separately (an orchestrator can tell
    "sealbox is down" from "its database is briefly away"); while sealed, 503 with each key
    provider's reachability as last probed (never a KMS call on the request path)."""
    st = state(request)
    if st.sealed():
        body: dict[str, Any] = {
            "storage": "ok",
            "keys": "sealed",
            "sealed": True,
            "providers": st.vault.unseal.probes(),
        }
        return json_response(
            body, status=503, headers={"retry-after": "1", "x-sealbox-down": "keys"}
        )
    checks = st.vault.health()
    down = sorted(k for k, v in checks.items() if v != "ok")
    if down:
        return json_response(
            checks, status=503, headers={"retry-after": "1", "x-sealbox-down": ",".join(down)}
        )
    return json_response(checks)


def seal_status_body(request: Request, status: Any) -> dict[str, Any]:
    """Vault's ``SealStatusResponse`` (what ``bao status`` and hvac parse)."""
    st = state(request)
    body: dict[str, Any] = {
        "type": "shamir",
        "initialized": True,
        "sealed": status.sealed,
        "t": status.threshold,
        "n": status.shares,
        "progress": status.progress,
        "nonce": status.nonce,
        "version": st.version,
        "build_date": BUILD_DATE,
        "commit_date": BUILD_DATE,
        "migration": False,
        "recovery_seal": status.recovery,
        "storage_type": st.storage_type,
    }
    if not status.sealed:
        body["cluster_name"] = CLUSTER_NAME
        body["cluster_id"] = st.vault.vault_id
    return body


async def seal_status(request: Request) -> Response:
    st = state(request)
    st.sealed()  # takes up keys an unattended provider opened meanwhile
    return json_response(seal_status_body(request, st.vault.unseal.status()))


async def unseal(request: Request) -> Response:
    """One share (``{"key": …}``) or ``{"reset": true}``; answers the seal status. A bad
    share is 400 naming which one it is (never echoing it)."""
    data = await json_body(request, optional=("key", "reset", "migrate"))
    st = state(request)
    if st.seal_flag is not None and st.seal_flag.is_set():
        raise InvalidInput(
            "this server was sealed while it ran several worker processes: shares sent to one"
            " could not reach the others; restart it (its unattended key providers unseal it,"
            " or it starts as one process that takes the shares)"
        )
    ops = st.vault.unseal
    if data.get("reset") is True:
        status = ops.reset()
    else:
        key = data.get("key")
        if not isinstance(key, str) or not key.strip():
            raise InvalidInput("give a share as 'key', or 'reset': true")
        if len(key) > 4096:
            raise InvalidInput("field 'key' is too long for a share")
        status = ops.submit(key)
    return json_response(seal_status_body(request, status))


async def seal(request: Request) -> Response:
    """Drop the keys from memory (admin on sys/seal), audited; sealed until unsealed."""
    who = caller(request)
    st = state(request)
    if not st.sealed():
        who.vault.unseal.seal()
    if st.seal_flag is not None:
        st.seal_flag.set()  # every worker process of this server, within a second
    return no_content()


async def leader(request: Request) -> Response:
    """Vault's HA leader answer (``bao status`` asks it): sealbox has no standbys."""
    return json_response(
        {
            "ha_enabled": False,
            "is_self": False,
            "active_time": "0001-01-01T00:00:00Z",
            "leader_address": "",
            "leader_cluster_address": "",
            "performance_standby_last_remote_wal": 0,
        }
    )


async def openapi(request: Request) -> Response:
    """The document of THIS app: its routes, its KV mounts (see openapi.py)."""
    st = state(request)
    return json_response(
        document(st.version, request.app.router.routes, st.settings.kv_mounts, st.login_methods)
    )


async def metrics(request: Request) -> Response:
    body = request.app.state.metrics.render()
    return Response(body, media_type=CONTENT_TYPE)


ROUTES = [
    Route("/v1/sys/health", health, methods=["GET"]),
    Route("/v1/sys/ready", ready, methods=["GET"]),
    Route("/v1/sys/seal-status", seal_status, methods=["GET"]),
    Route("/v1/sys/unseal", unseal, methods=["PUT", "POST"]),
    Route("/v1/sys/seal", seal, methods=["PUT", "POST"]),
    Route("/v1/sys/leader", leader, methods=["GET"]),
    Route("/v1/openapi.json", openapi, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
