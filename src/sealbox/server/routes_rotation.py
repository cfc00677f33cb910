"""``/v1/rotation/…``: rotations over HTTP, each route a thin call to the caller's
``vault.rotations`` (which authorises with ``rotate`` / ``list`` and audits every step).

A rotation runs its steps inside the request (create, set, test, finish against the
upstream system); the answer is the rotation's record, whatever state it ended in (a
``failed`` or ``pending`` rotation is a 200 with that state: it was recorded, and waits
to be resumed or cancelled). Requests that start nothing (a secret with no method, a
second rotation of a secret) are errors as everywhere else.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sealbox.errors import InvalidInput
from sealbox.model import SecretRef, seconds_span
from sealbox.server.http import (
    caller,
    json_body,
    json_response,
    no_content,
    opt_int,
    opt_str,
    query_flag,
    want_str,
)
from sealbox.wire import rotations as wire

ONE = "/v1/rotation/secrets/{project}/{env}/{name}"
RUN = "/v1/rotation/runs/{rotation_id}"


def _ref(request: Request) -> SecretRef:
    p = request.path_params
    return SecretRef(p["project"], p["env"], p["name"])


def _seconds(body: dict[str, Any], key: str, default: int) -> timedelta:
    value = opt_int(body, key)
    if value is None:
        return timedelta(seconds=default)
    return seconds_span(value, f"field {key!r}")


def _options(body: dict[str, Any]) -> dict[str, str]:
    options = body.get("options", {})
    if not isinstance(options, dict) or not all(isinstance(v, str) for v in options.values()):
        raise InvalidInput("field 'options' must be an object of text values")
    return {str(k): v for k, v in options.items()}


async def configure(request: Request) -> Response:
    from sealbox.stages import DEFAULT_GRACE_SECONDS

    who = caller(request)
    body = await json_body(
        request,
        required=("method",),
        optional=("options", "grace_seconds", "window", "start_offset_seconds", "notify_url"),
    )
    cfg = who.vault.rotations.configure(
        _ref(request),
        want_str(body, "method"),
        options=_options(body),
        grace=_seconds(body, "grace_seconds", DEFAULT_GRACE_SECONDS),
        window=opt_str(body, "window") or "",
        start_offset=_seconds(body, "start_offset_seconds", 0),
        notify_url=opt_str(body, "notify_url") or "",
    )
    return json_response(wire.encode_config(cfg))


async def get_config(request: Request) -> Response:
    ref = _ref(request)
    cfg = caller(request).vault.rotations.config(ref)
    if cfg is None:
        from sealbox.errors import NotFound

        raise NotFound(f"{ref} has no rotation settings")
    return json_response(wire.encode_config(cfg))


async def rotate(request: Request) -> Response:
    who = caller(request)
    body = await json_body(request, optional=("dry_run", "rotation_id"))
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise InvalidInput("field 'dry_run' must be a boolean")
    info = who.vault.rotations.start(
        _ref(request), dry_run=dry_run, rotation_id=opt_str(body, "rotation_id")
    )
    return json_response(wire.encode_rotation(info))


async def resume_secret(request: Request) -> Response:
    who = caller(request)
    await json_body(request)
    return json_response(wire.encode_rotation(who.vault.rotations.resume(_ref(request))))


async def cancel_secret(request: Request) -> Response:
    who = caller(request)
    await json_body(request)
    return json_response(wire.encode_rotation(who.vault.rotations.cancel(_ref(request))))


async def history(request: Request) -> Response:
    found = caller(request).vault.rotations.history(_ref(request))
    return json_response(wire.encode_rotations(found))


async def revoke(request: Request) -> Response:
    who = caller(request)
    body = await json_body(request, required=("version",))
    version = opt_int(body, "version")
    if version is None:
        raise InvalidInput("field 'version' must be a version number")
    who.vault.rotations.revoke(_ref(request), version)
    return no_content()


async def status(request: Request) -> Response:
    found = caller(request).vault.rotations.status(failed_only=query_flag(request, "failed"))
    return json_response(wire.encode_rotations(found))


async def due(request: Request) -> Response:
    who = caller(request)
    body = await json_body(request, optional=("limit",))
    limit = opt_int(body, "limit")
    if limit is not None and limit < 1:
        raise InvalidInput("field 'limit' must be at least 1")
    return json_response(wire.encode_outcomes(who.vault.rotations.rotate_due(limit=limit)))


async def list_due(request: Request) -> Response:
    return json_response(wire.encode_due(caller(request).vault.rotations.due()))


async def get_run(request: Request) -> Response:
    info = caller(request).vault.rotations.get(request.path_params["rotation_id"])
    return json_response(wire.encode_rotation(info))


async def resume_run(request: Request) -> Response:
    who = caller(request)
    await json_body(request)
    info = who.vault.rotations.resume(request.path_params["rotation_id"])
    return json_response(wire.encode_rotation(info))


async def cancel_run(request: Request) -> Response:
    who = caller(request)
    await json_body(request)
    info = who.vault.rotations.cancel(request.path_params["rotation_id"])
    return json_response(wire.encode_rotation(info))


ROUTES = [
    Route("/v1/rotation/status", status, methods=["GET"]),
    Route("/v1/rotation/due", list_due, methods=["GET"]),
    Route("/v1/rotation/due", due, methods=["POST"]),
    Route(ONE, get_config, methods=["GET"]),
    Route(ONE, configure, methods=["PUT"]),
    Route(ONE + "/rotate", rotate, methods=["POST"]),
    Route(ONE + "/resume", resume_secret, methods=["POST"]),
    Route(ONE + "/cancel", cancel_secret, methods=["POST"]),
    Route(ONE + "/history", history, methods=["GET"]),
    Route(ONE + "/revoke", revoke, methods=["POST"]),
    Route(RUN, get_run, methods=["GET"]),
    Route(RUN + "/resume", resume_run, methods=["POST"]),
    Route(RUN + "/cancel", cancel_run, methods=["POST"]),
]
