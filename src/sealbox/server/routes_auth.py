"""``/v1/auth/…``: log in (with any login method), look up, renew and revoke one's own token.

Login methods are plug-ins (:mod:`sealbox.auth.methods`): one route serves them all,
typing the body from the fields the method declares and throttling by the subject it
names; nothing here is specific to one method.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sealbox.auth.methods.interface import Credentials, LoginMethod
from sealbox.auth.service import Renewal
from sealbox.auth.tokens import NewToken
from sealbox.caller import Actor
from sealbox.errors import AuthenticationFailed, InvalidInput, NotFound
from sealbox.server import vault_shapes
from sealbox.server.bodies import declared, typed_body
from sealbox.server.http import (
    caller,
    json_body,
    json_response,
    no_content,
    remote_address,
    state,
    token_of,
)
from sealbox.server.routes_vault_auth import VAULT_METHODS

#: The route of every login method, and of those that take a path segment (userpass's
#: ``login/<username>``).
LOGIN = "/v1/auth/{method}/login"
LOGIN_NAMED = "/v1/auth/{method}/login/{name}"
PASSWORD = "password"  # noqa: S105 - a login method's name


def _issued(request: Request, token: NewToken) -> Response:
    """The native keys the SDK reads, in Vault's envelope with its ``auth`` block (what
    ``bao login -method=…`` and hvac read)."""
    authn = state(request).authenticator
    info = authn.describe(token.value)
    principal = authn.resolve(token.value)
    # As Vault's approle and userpass answer a login: the role's or the user's name.
    key = "role_name" if principal.kind == "machine" else "username"
    auth = vault_shapes.auth_block(
        info, principal.identity_id, authn.now(), token=token.value, metadata={key: principal.name}
    )
    return json_response(
        {
            **vault_shapes.envelope(auth=auth),
            "token": token.value,
            "accessor": token.accessor,
            "expires_at": info.expires_at,
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
    """Vault's ``auth/token/lookup-self``: the full record, ``id`` included (the caller
    sent it). hvac's ``is_authenticated`` and ``bao login`` read it."""
    who = caller(request)
    await json_body(request, any_fields=True)  # Vault ignores a POST's body here
    token = token_of(request) or ""
    authn = state(request).authenticator
    info = authn.describe(token)
    record = vault_shapes.lookup_record(
        info,
        who.principal.identity_id,
        authn.now(),
        token=token,
        policies=tuple(p.name for p in who.principal.policies),
    )
    return json_response(vault_shapes.envelope(record))


async def token_lookup(request: Request) -> Response:
    """Vault's ``auth/token/lookup`` (``token`` in the body) and ``lookup-accessor``:
    one's own tokens (and their descendants) freely, others' with ``read`` on
    ``sys/tokens``. ``id`` is only given back to whoever sent the token."""
    who = caller(request)
    by_accessor, value = await _named_token(request, "/lookup-accessor")
    found = who.vault.accounts.lookup_token(**{"accessor" if by_accessor else "token": value})
    record = vault_shapes.lookup_record(
        found.info,
        found.identity_id,
        state(request).authenticator.now(),
        token=None if by_accessor else value,
    )
    return json_response(vault_shapes.envelope(record))


async def _vault_body(
    request: Request, *, required: tuple[str, ...] = (), optional: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A Vault route's body: only its fields, and none of them null (a null is never
    read as "absent", as :mod:`sealbox.server.bodies` says; hvac and ``bao`` leave unset
    fields out)."""
    data = await json_body(request, required=required, optional=optional)
    nulls = sorted(k for k, v in data.items() if v is None)
    if nulls:
        raise InvalidInput(f"field {nulls[0]!r} must not be null (leave it out instead)")
    return data


async def _named_token(request: Request, accessor_suffix: str) -> tuple[bool, str]:
    """(named by accessor?, the token or accessor) from a body with ``token`` or, on a
    route ending with ``accessor_suffix``, ``accessor``."""
    by_accessor = request.url.path.endswith(accessor_suffix)
    field = "accessor" if by_accessor else "token"
    value = (await _vault_body(request, required=(field,)))[field]
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"field {field!r} must be a non-empty string")
    return by_accessor, value


def _renewal_answer(request: Request, token: str, renewal: Renewal) -> dict[str, Any]:
    authn = state(request).authenticator
    info = authn.describe(token)
    entity = authn.resolve(token).identity_id
    auth = vault_shapes.auth_block(info, entity, authn.now(), token=token)
    return vault_shapes.envelope(auth=auth, warnings=list(renewal.warnings))


async def token_renew(request: Request) -> Response:
    """Renew one's own token (or the one in ``token``, which whoever holds it may renew
    anyway); past its max TTL (or its parent's expiry) the new expiry is capped and
    ``warnings`` says so, as Vault answers a renewal. The native keys (``expires_at``,
    ``warnings`` as a list) sit beside Vault's envelope."""
    caller(request)
    data = await _vault_body(request, optional=("increment", "token"))
    token = data.get("token")
    if token is not None and (not isinstance(token, str) or not token):
        raise InvalidInput("field 'token' must be a non-empty string")
    token = token or token_of(request) or ""
    increment = vault_shapes.duration(data.get("increment"), "increment")
    renewal = state(request).authenticator.renew(token, increment)
    return json_response(
        {
            **_renewal_answer(request, token, renewal),
            "expires_at": renewal.expires_at,
            "warnings": list(renewal.warnings),
        }
    )


async def token_renew_self(request: Request) -> Response:
    """Vault's ``auth/token/renew-self``: the ``auth`` block of the renewed token."""
    caller(request)
    data = await _vault_body(request, optional=("increment",))
    token = token_of(request) or ""
    increment = vault_shapes.duration(data.get("increment"), "increment")
    renewal = state(request).authenticator.renew(token, increment)
    return json_response(_renewal_answer(request, token, renewal))


#: Vault's ``auth/token/create`` options sealbox has no equivalent for: refused unless
#: at their "nothing asked" value, never silently ignored.
UNSUPPORTED_CREATE = {
    "id": "sealbox mints every token itself",
    "role_name": "sealbox has no token roles",
    "period": "sealbox has no periodic tokens",
    "entity_alias": "sealbox has no entity aliases",
    "meta": "sealbox tokens carry no metadata",
    "lease": "use 'ttl'",
}
CREATE_FIELDS = (
    "policies",
    "ttl",
    "explicit_max_ttl",
    "display_name",
    "no_parent",
    "no_default_policy",
    "renewable",
    "num_uses",
    "type",
    *UNSUPPORTED_CREATE,
)


def _unasked(value: Any) -> bool:
    return value is None or value in ("", 0, "0", "0s") or value in ({}, [])


async def token_create(request: Request) -> Response:
    """Vault's ``auth/token/create`` (``create-orphan``: a root of a new tree, admin on
    ``sys/tokens``): a child token for oneself with a subset of one's policies (the core
    refuses any policy the caller lacks, 403). Answers Vault's ``auth`` block."""
    who = caller(request)
    data = await _vault_body(request, optional=CREATE_FIELDS)
    for key, why in UNSUPPORTED_CREATE.items():
        if not _unasked(data.get(key)):
            raise InvalidInput(f"field {key!r} is not supported: {why}")
    if not _unasked(data.get("num_uses")):
        raise InvalidInput("field 'num_uses' is not supported: sealbox tokens have no use limit")
    if data.get("renewable", True) is not True:
        raise InvalidInput("field 'renewable' is not supported: sealbox tokens are renewable")
    if data.get("type") not in (None, "", "service", "default"):
        raise InvalidInput("field 'type' is not supported: sealbox tokens are service tokens")
    for flag in ("no_parent", "no_default_policy"):
        if not isinstance(data.get(flag, False), bool):
            raise InvalidInput(f"field {flag!r} must be true or false")
    policies = data.get("policies")
    if policies is not None:
        if not isinstance(policies, list) or not all(isinstance(p, str) for p in policies):
            raise InvalidInput("field 'policies' must be a list of policy names")
        # Vault's "default" policy: every sealbox token may already do what it grants.
        policies = [p for p in policies if p != "default"]
    display = data.get("display_name") or ""
    if not isinstance(display, str) or len(display) > 128:
        raise InvalidInput("field 'display_name' must be a string of at most 128 characters")
    orphan = request.url.path.endswith("/create-orphan") or data.get("no_parent") is True
    new = who.vault.accounts.create_token(
        ttl=vault_shapes.duration(data.get("ttl"), "ttl"),
        max_ttl=vault_shapes.duration(data.get("explicit_max_ttl"), "explicit_max_ttl"),
        policies=policies,
        display=display,
        orphan=orphan,
    )
    authn = state(request).authenticator
    info = authn.describe(new.value)
    auth = vault_shapes.auth_block(info, who.principal.identity_id, authn.now(), token=new.value)
    return json_response(vault_shapes.envelope(auth=auth))


async def token_revoke(request: Request) -> Response:
    """Vault's ``auth/token/revoke`` (``token``) and ``revoke-accessor``: one's own
    tokens and their descendants freely, others' with admin on ``sys/tokens``; 204."""
    who = caller(request)
    by_accessor, value = await _named_token(request, "/revoke-accessor")
    accounts = who.vault.accounts
    if by_accessor:
        accounts.revoke_token(value)
        accessor = value
    else:
        accessor = accounts.revoke_token_value(value)
    state(request).tokens.forget_accessor(accessor)
    return no_content()


async def token_revoke_self(request: Request) -> Response:
    """Revoke one's own token and every token below it in the tree."""
    who = caller(request)
    await typed_body(request)
    accessor = who.principal.token_accessor
    assert accessor is not None
    who.vault.accounts.revoke_token(accessor)
    state(request).tokens.forget_accessor(accessor)
    return no_content()


#: Vault's token routes that answer errors in Vault's shape (a bad token is 403
#: ``permission denied``); ``renew`` and ``revoke-self`` keep the native shape the SDK reads.
VAULT_TOKEN_PATHS = frozenset(
    f"/v1/auth/token/{name}"
    for name in (
        "lookup-self",
        "lookup",
        "lookup-accessor",
        "renew-self",
        "revoke",
        "revoke-accessor",
        "create",
        "create-orphan",
    )
)
WRITE = ["POST", "PUT"]

ROUTES = [
    Route("/v1/auth/login", password_login, methods=["POST"]),
    Route(LOGIN, method_login, methods=["POST", "PUT"]),
    Route(LOGIN_NAMED, method_login, methods=["POST", "PUT"]),
    Route("/v1/auth/token/self", token_self, methods=["GET"]),
    Route("/v1/auth/token/lookup-self", token_lookup_self, methods=["GET", *WRITE]),
    Route("/v1/auth/token/lookup", token_lookup, methods=["GET", *WRITE]),
    Route("/v1/auth/token/lookup-accessor", token_lookup, methods=WRITE),
    Route("/v1/auth/token/renew", token_renew, methods=WRITE),
    Route("/v1/auth/token/renew-self", token_renew_self, methods=WRITE),
    Route("/v1/auth/token/revoke-self", token_revoke_self, methods=WRITE),
    Route("/v1/auth/token/revoke", token_revoke, methods=WRITE),
    Route("/v1/auth/token/revoke-accessor", token_revoke, methods=WRITE),
    Route("/v1/auth/token/create", token_create, methods=WRITE),
    Route("/v1/auth/token/create-orphan", token_create, methods=WRITE),
]
