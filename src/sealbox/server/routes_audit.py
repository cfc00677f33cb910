"""``/v1/audit/…``: the audit trail's queries, verification and checkpoints, remotely.

Everything goes through ``Vault`` (authorised as ``admin`` on ``sys/audit``, and itself
audited); filters travel in a JSON body. ``hash`` takes a leaked value and returns only its
HMAC under the vault's audit key, so an auditor can ask who read it.
"""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sealbox.errors import InvalidInput
from sealbox.model import VALUE_BASE64, SecretRef, value_from_json
from sealbox.server.http import (
    caller,
    json_body,
    json_response,
    opt_int,
    opt_str,
    opt_str_list,
)
from sealbox.wire import audit as wire


def _time(value: str | None, field: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"field {field!r} must be an ISO 8601 time") from None


async def audit_log(request: Request) -> Response:
    who = caller(request)
    body = await json_body(
        request,
        optional=(
            "secret", "identity", "since", "until", "operations", "denied", "source", "limit",
        ),
    )  # fmt: skip
    secret = opt_str(body, "secret")
    denied = body.get("denied", False)
    if not isinstance(denied, bool):
        raise InvalidInput("field 'denied' must be a boolean")
    events = who.vault.audit.log(
        secret=SecretRef.parse(secret) if secret else None,
        identity=opt_str(body, "identity"),
        since=_time(opt_str(body, "since"), "since"),
        until=_time(opt_str(body, "until"), "until"),
        operations=opt_str_list(body, "operations"),
        denied=denied,
        source=opt_str(body, "source"),
        limit=opt_int(body, "limit") if "limit" in body else 100,
    )
    return json_response(wire.encode_events(events))


async def who_read(request: Request) -> Response:
    who = caller(request)
    body = await json_body(request, optional=("path", "version", "value_hmac", "since", "until"))
    path = opt_str(body, "path")
    events = who.vault.audit.who_read(
        SecretRef.parse(path) if path else None,
        version=opt_int(body, "version"),
        value_hmac=opt_str(body, "value_hmac"),
        since=_time(opt_str(body, "since"), "since"),
        until=_time(opt_str(body, "until"), "until"),
    )
    return json_response(wire.encode_events(events))


async def audit_hash(request: Request) -> Response:
    who = caller(request)
    body = await json_body(request, optional=("value", VALUE_BASE64), carries_value=True)
    return json_response(wire.encode_hmac(who.vault.audit.value_hmac(value_from_json(body))))


async def verify(request: Request) -> Response:
    who = caller(request)
    await json_body(request)
    result = who.vault.audit.verify()
    return json_response(wire.encode_verification(result))


async def checkpoint(request: Request) -> Response:
    who = caller(request)
    await json_body(request)
    return json_response(wire.encode_checkpoints(who.vault.audit.checkpoint()))


ROUTES = [
    Route("/v1/audit/log", audit_log, methods=["POST"]),
    Route("/v1/audit/who-read", who_read, methods=["POST"]),
    Route("/v1/audit/hash", audit_hash, methods=["POST"]),
    Route("/v1/audit/verify", verify, methods=["POST"]),
    Route("/v1/audit/checkpoint", checkpoint, methods=["POST"]),
]
