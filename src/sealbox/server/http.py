"""Request helpers shared by the route modules: body parsing, JSON answers, the caller.

Bodies are read with a size limit (413 beyond it), must be JSON objects, and may hold
only the fields a route names: an unknown field is a 400 naming it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sealbox.errors import InvalidInput
from sealbox.server.auth import Caller, RateLimiter, TokenCache, bearer_token
from sealbox.server.errors import PayloadTooLarge
from sealbox.server.settings import ServerSettings
from sealbox.vault import Vault


class ServerState:
    """What every route needs, built once per app (no module-level globals)."""

    def __init__(self, vault: Vault, settings: ServerSettings, version: str) -> None:
        self.vault = vault
        self.settings = settings
        self.version = version
        self.tokens = TokenCache(vault, settings.token_cache_ttl)
        self.authenticator = vault.authenticator()
        self.login_limits = RateLimiter(settings.login_rate, settings.login_burst)


def state(request: Request) -> ServerState:
    st: ServerState = request.app.state.sealbox
    return st


def token_of(request: Request) -> str | None:
    return bearer_token(request.scope["headers"])


def caller(request: Request) -> Caller:
    """The authenticated caller (401 otherwise); noted in the scope for the access log."""
    who = state(request).tokens.resolve(token_of(request), request.scope)
    request.scope["sealbox.caller"] = who
    return who


def remote_address(request: Request) -> str:
    client = request.scope.get("client")
    return str(client[0]) if client else "unknown"


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def no_content() -> Response:
    return Response(status_code=204)


async def read_body(request: Request) -> bytes:
    limit = state(request).settings.body_limit
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidInput("invalid Content-Length header")
        if int(declared) > limit:
            raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_body(
    request: Request,
    *,
    required: Iterable[str] = (),
    optional: Iterable[str] = (),
    any_fields: bool = False,
) -> dict[str, Any]:
    """The body as a JSON object with only the named fields (an empty body is ``{}``)."""
    raw = await read_body(request)
    required = tuple(required)
    if not raw.strip():
        data: Any = {}
    else:
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"malformed JSON body: {str(exc)[:120]}") from None
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be a JSON object")
    if not any_fields:
        allowed = set(required) | set(optional)
        unknown = sorted(k for k in data if k not in allowed)
        if unknown:
            shown = ", ".join(repr(k[:64]) for k in unknown[:5])
            raise InvalidInput(f"unknown field(s) in the request body: {shown}")
    missing = [k for k in required if k not in data]
    if missing:
        raise InvalidInput(f"missing field(s) in the request body: {', '.join(missing)}")
    return data


def want_str(data: dict[str, Any], key: str, *, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise InvalidInput(f"field {key!r} must be a string")
    return value


def opt_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"field {key!r} must be a string")
    return value


def opt_int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"field {key!r} must be an integer")
    return value


def opt_str_list(data: dict[str, Any], key: str) -> list[str] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"field {key!r} must be a list of strings")
    return list(value)


def flag_param(params: Mapping[str, str], key: str) -> bool:
    value = params.get(key)
    if value is None or value == "":
        return False
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise InvalidInput(f"query parameter {key!r} must be true or false")


def int_param(params: Mapping[str, str], key: str) -> int | None:
    value = params.get(key)
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 18:
        raise InvalidInput(f"query parameter {key!r} must be a non-negative integer")
    return int(value)


def query_flag(request: Request, key: str) -> bool:
    return flag_param(request.query_params, key)


def query_int(request: Request, key: str) -> int | None:
    return int_param(request.query_params, key)
