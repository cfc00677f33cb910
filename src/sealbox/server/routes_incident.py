"""``POST /v1/incident``: ``sealbox incident`` over HTTP, a thin call to the caller's
``vault.incident`` (which authorises — admin on the secret and on sys/audit — and audits
``incident.assess`` / ``incident.respond`` with the reason; the route adds no rule).

The body may carry the suspected-leaked value (to find exactly which versions it is and
who received it, via the audit HMAC). It is wrapped as a ``SecretValue`` at once and only
compared and hashed: the answer is the report, which holds versions and names, never a
value, and the access log line names the route template only.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sealbox.errors import InvalidInput
from sealbox.model import VALUE_BASE64, SecretRef, value_from_json
from sealbox.server.http import caller, json_body, json_response, want_str
from sealbox.wire import incident as wire

INCIDENT = "/v1/incident"
#: The audit event keeps the first 500 characters; a reason longer than a ticket's
#: summary is refused rather than cut silently.
MAX_REASON = 500


async def incident(request: Request) -> Response:
    who = caller(request)
    body = await json_body(
        request,
        required=("path", "reason"),
        optional=("value", VALUE_BASE64, "rotate"),
        carries_value=True,
    )
    ref = SecretRef.parse(want_str(body, "path"))
    reason = want_str(body, "reason")
    if not reason.strip():
        raise InvalidInput("field 'reason' must say why (a ticket, what was seen)")
    if len(reason) > MAX_REASON:
        raise InvalidInput(f"field 'reason' is longer than {MAX_REASON} characters")
    rotate = body.get("rotate", False)
    if not isinstance(rotate, bool):
        raise InvalidInput("field 'rotate' must be a boolean")
    # NOTE: "value": null is no value, as before value_base64 existed.
    value = value_from_json(body) if body.get("value") is not None or VALUE_BASE64 in body else None
    if value is not None and not len(value):
        raise InvalidInput("field 'value' is empty: send the leaked value, or leave it out")
    del body  # the value lives on only as the SecretValue
    report = who.vault.incident(ref, reason=reason, value=value, rotate=rotate)
    return json_response(wire.encode_report(report))


ROUTES = [Route(INCIDENT, incident, methods=["POST"])]
