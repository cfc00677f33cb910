"""The read hot path: ``GET /v1/secrets/{project}/{env}/{name}`` and ``GET /v1/<mount>/data/…``
served before Starlette's router.

Per request it does what the route does and nothing else: one regex match, the cached
token resolution, one authorised and audited ``Vault.get`` (through the same
:func:`~sealbox.server.routes_native.read_secret` and
:func:`~sealbox.server.routes_kv.read_kv` the routes use), one JSON body sent as raw ASGI
messages. Skipped are the router's linear scan, the ``Request``/``Response`` objects and
Starlette's exception wrappers (about a third of the per-request Python time otherwise).
Errors propagate to :class:`~sealbox.server.middleware.RequestMiddleware`, which maps
them exactly as for any route. ``scope["route"]`` is set to the matching Starlette route
so logs and metrics name the same template.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.routing import Route
from starlette.types import Scope, Send

from sealbox.model import SecretRef
from sealbox.server.auth import bearer_token
from sealbox.server.http import ServerState, flag_param, int_param
from sealbox.server.routes_kv import check_mount, read_kv
from sealbox.server.routes_native import read_secret

SECRET_RE = re.compile(r"/v1/secrets/([^/]+)/([^/]+)/([^/]+)\Z")
KV_DATA_RE = re.compile(r"/v1/([^/]+)/data/(.+)\Z", re.DOTALL)
_JSON_HEADERS = [(b"content-type", b"application/json")]


def _find_route(routes: list[Any], path: str, method: str) -> Route:
    for route in routes:
        if isinstance(route, Route) and route.path == path and method in (route.methods or ()):
            return route
    raise LookupError(f"no {method} route {path}")  # pragma: no cover - wiring error


class HotPath:
    def __init__(self, state: ServerState, routes: list[Any]) -> None:
        self._state = state
        self._secret_route = _find_route(routes, "/v1/secrets/{project}/{env}/{name}", "GET")
        self._kv_route = _find_route(routes, "/v1/{mount}/data/{path:path}", "GET")

    async def handle(self, scope: Scope, send: Send) -> bool:
        """Serve a hot GET; False when the request is not one (the router takes it)."""
        path: str = scope["path"]
        m = SECRET_RE.match(path)
        if m is not None:
            project, env, name = m.groups()
            scope["route"] = self._secret_route
            scope["path_params"] = {"project": project, "env": env, "name": name}
            params = self._params(scope)
            who = self._caller(scope)
            ref = SecretRef(project, env, name)
            body = read_secret(
                who,
                ref,
                int_param(params, "version"),
                flag_param(params, "reveal"),
                params.get("stage"),
            )
            await self._send(
                send, 200, json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
            )
            return True
        m = KV_DATA_RE.match(path)
        if m is not None and not path.startswith("/v1/sys/"):
            mount, rest = m.groups()
            scope["route"] = self._kv_route
            scope["path_params"] = {"mount": mount, "path": rest}
            params = self._params(scope)
            who = self._caller(scope)
            check_mount(self._state.settings.kv_mounts, mount)
            status, data = read_kv(who, rest, int_param(params, "version"))
            await self._send(send, status, data)
            return True
        return False

    @staticmethod
    def _params(scope: Scope) -> dict[str, str]:
        qs: bytes = scope["query_string"]
        return dict(parse_qsl(qs.decode("latin-1"))) if qs else {}

    def _caller(self, scope: Scope) -> Any:
        who = self._state.tokens.resolve(bearer_token(scope["headers"]), scope)
        scope["sealbox.caller"] = who
        return who

    @staticmethod
    async def _send(send: Send, status: int, data: bytes) -> None:
        headers = [*_JSON_HEADERS, (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": data})
