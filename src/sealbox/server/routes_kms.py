"""``GET /v1/sys/kms``: ``sealbox kms status`` over HTTP, a thin call to the caller's
``vault.kms.status`` (admin on ``sys/kms``; the service authorises).

Probing calls each unattended key provider (an HSM, Transit, a cloud KMS): that runs in a
worker thread, bounded by the providers' timeouts, so a hanging KMS never holds the event
loop. ``?probe=false`` compares the stored wrappings only and calls no provider.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sealbox.errors import InvalidInput
from sealbox.server.http import caller, json_response
from sealbox.wire import kms as wire

KMS = "/v1/sys/kms"


async def kms_status(request: Request) -> Response:
    who = caller(request)
    raw = request.query_params.get("probe", "true")
    if raw not in ("true", "false"):
        raise InvalidInput("query parameter 'probe' is true or false")
    found = await run_in_threadpool(who.vault.kms.status, probe=raw == "true")
    return json_response(wire.encode_status(found))


ROUTES = [Route(KMS, kms_status, methods=["GET"])]
