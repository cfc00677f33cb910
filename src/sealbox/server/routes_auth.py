"""``/v1/auth/…``: log in (password, AppRole), look up, renew and revoke one's own token."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sealbox.auth.tokens import NewToken
from sealbox.caller import Actor
from sealbox.model import parse_duration
from sealbox.server.bodies import Kind, typed_body
from sealbox.server.http import (
    caller,
    json_response,
    no_content,
    remote_address,
    state,
    token_of,
)


def _issued(request: Request, token: NewToken) -> Response:
    info = state(request).authenticator.describe(token.value)
    return json_response(
        {"token": token.value, "accessor": token.accessor, "expires_at": info.expires_at}
    )


async def login(request: Request) -> Response:
    body = await typed_body(request, required={"name": Kind.STR, "password": Kind.STR})
    name, password = body.text("name"), body.text("password")
    st = state(request)
    address = remote_address(request)
    with st.login_limits.attempt(f"identity:{name[:64]}", address):
        token = st.authenticator.login_password(name, password, Actor(f"remote:{address}", "api"))
    return _issued(request, token)


async def approle_login(request: Request) -> Response:
    body = await typed_body(request, required={"role_id": Kind.STR, "secret_id": Kind.STR})
    role_id, secret_id = body.text("role_id"), body.text("secret_id")
    st = state(request)
    address = remote_address(request)
    with st.login_limits.attempt(f"role:{role_id[:64]}", address):
        token = st.authenticator.login_approle(
            role_id, secret_id, Actor(f"remote:{address}", "api")
        )
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
    Route("/v1/auth/login", login, methods=["POST"]),
    Route("/v1/auth/approle/login", approle_login, methods=["POST"]),
    Route("/v1/auth/token/self", token_self, methods=["GET"]),
    Route("/v1/auth/token/lookup-self", token_lookup_self, methods=["GET"]),
    Route("/v1/auth/token/renew", token_renew, methods=["POST"]),
    Route("/v1/auth/token/revoke-self", token_revoke_self, methods=["POST"]),
]
