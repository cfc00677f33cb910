"""Operational routes, no token needed: liveness, readiness, the OpenAPI document, metrics."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sealbox.server.http import json_response, state
from sealbox.server.metrics import CONTENT_TYPE
from sealbox.server.openapi import document


async def health(request: Request) -> Response:
    """Liveness, shaped so Vault tooling that polls ``sys/health`` is satisfied too."""
    return json_response(
        {
            "status": "ok",
            "initialized": True,
            "sealed": False,
            "standby": False,
            "version": state(request).version,
        }
    )


async def ready(request: Request) -> Response:
    """Readiness: storage and key provider checked separately (an orchestrator can tell
    "sealbox is down" from "its database is briefly away")."""
    checks = state(request).vault.health()
    down = sorted(k for k, v in checks.items() if v != "ok")
    if down:
        return json_response(
            checks, status=503, headers={"retry-after": "1", "x-sealbox-down": ",".join(down)}
        )
    return json_response(checks)


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
    Route("/v1/openapi.json", openapi, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
