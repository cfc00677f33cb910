"""``/v1/auth/…``: log in (with any login method), look up, renew and revoke one's own token.

Login methods are plug-ins (:mod:`sealbox.auth.methods`): one route serves them all,
typing the body from the fields the method declares and throttling by the subject it
names; nothing here is specific to one method.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sealbox.auth.methods.interface import Credentials, LoginMethod
from sealbox.auth.tokens import NewToken
from sealbox.caller import Actor
from sealbox.errors import AuthenticationFailed, InvalidInput, NotFound
from sealbox.model import parse_duration
from sealbox.server.bodies import Kind, declared, typed_body
from sealbox.server.http import (
    caller,
    json_response,
    no_content,
    remote_address,
    state,
    token_of,
)
from sealbox.server.routes_vault_auth import VAULT_METHODS, auth_block

#: The route of every login method, and of those that take a path segment (userpass's
#: ``login/<username>``).
LOGIN = "/v1/auth/{method}/login"
LOGIN_NAMED = "/v1/auth/{method}/login/{name}"
PASSWORD = "password"  # noqa: S105 - a login method's name


def _issued(request: Request, token: NewToken) -> Response:
    info = state(request).authenticator.describe(token.value)
    return json_response(
        {
            "token": token.value,
            "accessor": token.accessor,
            "expires_at": info.expires_at,
            "auth": auth_block(request, token),
        }
    )


async def password_login(request: Request) -> Response:
    """``/v1/auth/login``: the ``password`` method at its first address (clients and
    docs use it)."""
    return await _login(request, state(request).login_methods[PASSWORD])


async def method_login(request: Request) -> Response:
    """``/v1/auth/<method>/login[/<segment>]``: any installed login method (POST, or PUT
    as Vault's clients send it)."""
    name: str = request.path_params["method"]
    method = state(request).login_methods.get(name)
    if method is None:
        raise NotFound(f"no login method {name[:64]!r} on this server")
    segment: str | None = request.path_params.get("name")
    if (segment is None) != (method.path_field is None):
        where = f"/v1/auth/{name}/login" + (f"/<{method.path_field}>" if method.path_field else "")
        raise NotFound(f"login method {name!r} is served at {where}")
    return await _login(request, method, segment)


async def _login(request: Request, method: LoginMethod, segment: str | None = None) -> Response:
    """Check the body against the method's fields, then log in within the login limits."""
    fields = [f for f in method.fields if f.name != method.path_field]
    required, optional = declared(fields)
    body = await typed_body(request, required=required, optional=optional)
    values = dict(body.data)
    if method.path_field is not None:
        values[method.path_field] = segment
    credentials = Credentials(values)
    st = state(request)
    address = remote_address(request)
    try:
        with st.login_limits.attempt(method.subject(credentials), address):
            who = Actor(f"remote:{address}", "api")
            token = st.authenticator.login(method, credentials, who)
    except AuthenticationFailed as exc:
        if method.name in VAULT_METHODS:
            raise InvalidInput(exc.message) from None  # Vault answers a bad login 400
        raise
    return _issued(request, token)


async def token_self(request: Request) -> Response:
    who = caller(request)
    info = state(request).authenticator.describe(token_of(request) or "")
    return json_response(
        {
            "identity": who.principal.name,
            "kind": who.principal.kind,
            "policies": list(info.policies),
            "accessor": info.accessor,
            "expires_at": info.expires_at,
        }
    )


async def token_lookup_self(request: Request) -> Response:
    """Vault's ``auth/token/lookup-self`` shape (hvac's ``is_authenticated`` calls it)."""
    who = caller(request)
    info = state(request).authenticator.describe(token_of(request) or "")
    return json_response(
        {
            "request_id": "",
            "lease_id": "",
            "renewable": False,
            "lease_duration": 0,
            "data": {
                "accessor": info.accessor,
                "display_name": info.display,
                "entity_id": who.principal.identity_id,
                "expire_time": info.expires_at,
                "meta": {"identity": who.principal.name, "kind": who.principal.kind},
                "policies": list(info.policies),
                "type": "service",
            },
            "wrap_info": None,
            "warnings": None,
            "auth": None,
        }
    )


async def token_renew(request: Request) -> Response:
    """Renew one's own token; past its max TTL (or its parent's expiry) the new expiry is
    capped and ``warnings`` says so, as Vault answers a renewal."""
    caller(request)
    body = await typed_body(request, optional={"increment": Kind.STR})
    increment = body.opt_text("increment")
    renewal = state(request).authenticator.renew(
        token_of(request) or "", parse_duration(increment) if increment is not None else None
    )
    return json_response({"expires_at": renewal.expires_at, "warnings": list(renewal.warnings)})


async def token_revoke_self(request: Request) -> Response:
    """Revoke one's own token and every token below it in the tree."""
    who = caller(request)
    await typed_body(request)
    accessor = who.principal.token_accessor
    assert accessor is not None
    who.vault.accounts.revoke_token(accessor)
    state(request).tokens.forget_accessor(accessor)
    return no_content()


ROUTES = [
    Route("/v1/auth/login", password_login, methods=["POST"]),
    Route(LOGIN, method_login, methods=["POST", "PUT"]),
    Route(LOGIN_NAMED, method_login, methods=["POST", "PUT"]),
    Route("/v1/auth/token/self", token_self, methods=["GET"]),
    Route("/v1/auth/token/lookup-self", token_lookup_self, methods=["GET"]),
    Route("/v1/auth/token/renew", token_renew, methods=["POST"]),
    Route("/v1/auth/token/revoke-self", token_revoke_self, methods=["POST"]),
]
