"""Request helpers shared by the route modules: body parsing, JSON answers, the caller.

Every request body goes through :func:`json_body`, so its rules hold for every route:

* at most ``body_limit`` bytes (413 beyond it); a body that carries a secret value may
  be :data:`VALUE_BODY_LIMIT` bytes if that is more, so that a value of
  :data:`~sealbox.model.MAX_VALUE_BYTES` is accepted however it is encoded;
* ``Content-Type`` ``application/json`` (any parameters), ``application/*+json``, or
  none at all (the ``bao`` CLI sends none); anything else is a 415;
* UTF-8 JSON (a UTF-16/32 body is a 400), nested at most :data:`MAX_JSON_DEPTH` deep
  (checked before parsing, so a deep body cannot exhaust the parser's stack), with no
  duplicate keys and no lone UTF-16 surrogate escapes (``"\\ud800"``): each a 400;
* a JSON object holding only the fields a route names: an unknown field is a 400
  naming it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from sealbox.auth.methods import registry as login_registry
from sealbox.errors import InvalidInput
from sealbox.model import MAX_VALUE_BYTES
from sealbox.server.auth import Caller, RateLimiter, TokenCache, bearer_token
from sealbox.server.errors import PayloadTooLarge, UnsupportedMediaType
from sealbox.server.seal_flag import SealFlag
from sealbox.server.settings import ServerSettings
from sealbox.vault import Vault


class ServerState:
    """What every route needs, built once per app (no module-level globals)."""

    def __init__(
        self,
        vault: Vault,
        settings: ServerSettings,
        version: str,
        seal_flag: SealFlag | None = None,
    ) -> None:
        self.vault = vault
        #: The seal shared by this server's worker processes (None: a single process).
        self.seal_flag = seal_flag
        self.settings = settings
        self.version = version
        self.tokens = TokenCache(vault, settings.token_cache_ttl)
        self.authenticator = vault.authenticator()
        self.login_limits = RateLimiter(settings.login_rate, settings.login_burst)
        #: Login methods by name, found once (a request never triggers a discovery).
        self.login_methods = login_registry.available()
        #: Vault's ``storage_type`` in ``sys/seal-status``.
        self.storage_type = vault.storage_type

    def sealed(self) -> bool:
        """True while this process holds no KEKs. Keys an unattended provider opened in
        the background (auto-unseal) are taken up here, on the event loop."""
        vault = self.vault
        flag = self.seal_flag
        if flag is not None and flag.is_set():
            if not vault.sealed:
                vault.unseal.follow_seal()  # another worker sealed the server
            return True
        if not vault.sealed:
            return False
        return not vault.unseal.adopt_pending()


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


#: Room for the other fields of a body that carries a value (names, versions, a reason).
VALUE_BODY_SLACK = 64 * 1024
#: The body a value of :data:`MAX_VALUE_BYTES` needs at worst: JSON escapes a control
#: character as ``\u00XX``, six bytes for one (base64, for values that are not UTF-8
#: text, needs four for three).
VALUE_BODY_LIMIT = 6 * MAX_VALUE_BYTES + VALUE_BODY_SLACK


def _too_large(limit: int, carries_value: bool) -> PayloadTooLarge:
    if carries_value:
        return PayloadTooLarge(
            f"the request body is larger than {limit} bytes (a secret value may be at most"
            f" {MAX_VALUE_BYTES} bytes)"
        )
    return PayloadTooLarge(f"the request body is larger than {limit} bytes")


async def read_body(request: Request, *, carries_value: bool = False) -> bytes:
    """The raw body, at most ``body_limit`` bytes (``carries_value``: or
    :data:`VALUE_BODY_LIMIT` if that is more); 413 beyond."""
    limit = state(request).settings.body_limit
    if carries_value:
        limit = max(limit, VALUE_BODY_LIMIT)
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidInput("invalid Content-Length header")
        if int(declared) > limit:
            raise _too_large(limit, carries_value)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit, carries_value)
            chunks.append(chunk)
    except ClientDisconnect:
        # Gone, or cut off by the body deadline (server/protocol.py): nobody reads this.
        raise InvalidInput("the connection closed before the whole body arrived") from None
    return b"".join(chunks)


#: Deepest nesting of arrays and objects a request body may have (documented in
#: docs/server.md); sealbox's own bodies are at most 3 deep.
MAX_JSON_DEPTH = 64
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_INNERMOST = re.compile(rb"\[\]|\{\}")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
EXPECTED_TYPE = "application/json"


def check_content_type(request: Request) -> None:
    """415 unless the body is declared JSON (or not declared: see the module doc)."""
    declared = request.headers.get("content-type")
    if declared is None:
        return
    kind = declared.split(";", 1)[0].strip().lower()
    if kind == EXPECTED_TYPE or (kind.startswith("application/") and kind.endswith("+json")):
        return
    raise UnsupportedMediaType(
        f"the request body must be JSON (Content-Type: {EXPECTED_TYPE}), "
        f"not {kind[:64] or 'an empty type'!r}"
    )


def check_json_depth(raw: bytes, limit: int = MAX_JSON_DEPTH) -> None:
    """400 when arrays/objects nest deeper than ``limit``, decided without parsing.

    Strings are cut out (a bracket in a string does not count), every other byte but
    brackets is dropped, then each pass removes the innermost ``[]``/``{}`` pairs: a body
    nested ``d`` deep is empty after ``d`` passes. All of it runs in C; a body with few
    brackets is decided by two counts.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    for _ in range(limit):
        reduced = _INNERMOST.sub(b"", brackets)
        if not reduced or reduced == brackets:
            return  # balanced within the limit, or malformed (the parser says so)
        brackets = reduced
    raise InvalidInput(f"the JSON body is nested deeper than {limit} levels")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InvalidInput(f"duplicate key {key[:64]!r} in the JSON body")
            seen.add(key)
    return data


def parse_json(raw: bytes) -> Any:
    """A request body's JSON, under the rules of the module doc (400 otherwise)."""
    try:
        # JSON never holds a raw NUL: one is UTF-16/32 text (ASCII in UTF-16 decodes).
        if b"\x00" in raw:
            raise UnicodeDecodeError("utf-8", raw, 0, 1, "NUL byte")
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the request body is not UTF-8 text (JSON must be UTF-8)") from None
    check_json_depth(raw)
    try:
        data = json.loads(text, object_pairs_hook=_object_without_duplicates)
    except ValueError as exc:
        raise InvalidInput(f"malformed JSON body: {str(exc)[:120]}") from None
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(
                "the JSON body holds a lone UTF-16 surrogate (\\ud800-\\udfff), "
                "which is not Unicode text"
            ) from None
    return data


async def json_body(
    request: Request,
    *,
    required: Iterable[str] = (),
    optional: Iterable[str] = (),
    any_fields: bool = False,
    null_is_empty: bool = False,
    carries_value: bool = False,
) -> dict[str, Any]:
    """The body as a JSON object with only the named fields (an empty body is ``{}``; so
    is ``null`` with ``null_is_empty``: what ``bao write -f`` sends); ``carries_value``: a
    body holding a secret value (see :func:`read_body`)."""
    raw = await read_body(request, carries_value=carries_value)
    required = tuple(required)
    if not raw.strip() or (null_is_empty and raw.strip() == b"null"):
        data: Any = {}
    else:
        check_content_type(request)
        data = parse_json(raw)
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


def json_int(value: Any) -> int | None:
    """``value`` as a JSON integer, else None. ``1.0`` is one (JSON Schema says so, and
    JavaScript clients cannot tell it from ``1``); ``true`` and ``1.5`` are not."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
        return int(value)
    return None


def opt_int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    number = json_int(value)
    if number is None:
        raise InvalidInput(f"field {key!r} must be an integer")
    return number


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
