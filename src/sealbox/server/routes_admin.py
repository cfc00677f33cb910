"""``/v1/identities``, ``/v1/tokens``, ``/v1/policies``: administration through ``Vault.accounts``.

The core authorises each call on ``sys/identities``, ``sys/tokens`` or ``sys/policies``
and audits it; a token is shown once, when minted, and named by its accessor after that.
Every body is declared field by field (:mod:`sealbox.server.bodies`): a null, missing or
mistyped field is a 400. A change that would leave no admin needs ``?force=true``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sealbox.auth.policy import parse_policy
from sealbox.errors import InvalidInput
from sealbox.model import parse_duration
from sealbox.server.bodies import Kind, typed_body
from sealbox.server.http import caller, json_body, json_response, no_content, query_flag, state
from sealbox.wire import accounts as wire
from sealbox.wire.policies import encode_decision, encode_policies, encode_policy


# -- identities ----------------------------------------------------------------------------------
async def list_identities(request: Request) -> Response:
    infos = caller(request).vault.accounts.list_identities()
    return json_response(wire.encode_identities(infos))


async def create_identity(request: Request) -> Response:
    who = caller(request)
    body = await typed_body(
        request,
        required={"name": Kind.STR, "kind": Kind.STR},
        optional={"password": Kind.STR, "policies": Kind.STR_LIST},
    )
    name, kind = body.text("name"), body.text("kind")
    policies = body.opt_texts("policies") or []
    accounts = who.vault.accounts
    if kind == "person":
        password = body.opt_text("password")
        if password is None:
            raise InvalidInput("a person needs a 'password'")
        info = accounts.create_person(name, password, policies)
    elif kind == "machine":
        if body.has("password"):
            raise InvalidInput("a machine logs in with a role id and secret id, not a password")
        info = accounts.create_machine(name, policies)
    else:
        raise InvalidInput("field 'kind' must be 'person' or 'machine'")
    return json_response(wire.encode_identity(info), status=201)


async def get_identity(request: Request) -> Response:
    info = caller(request).vault.accounts.get_identity(request.path_params["name"])
    return json_response(wire.encode_identity(info))


async def delete_identity(request: Request) -> Response:
    who = caller(request)
    name = request.path_params["name"]
    who.vault.accounts.delete_identity(name, force=query_flag(request, "force"))
    # Tokens its tokens made, for other identities, went with them: drop every entry.
    state(request).tokens.clear()
    return no_content()


async def set_identity_policies(request: Request) -> Response:
    who = caller(request)
    body = await typed_body(request, required={"policies": Kind.STR_LIST})
    name = request.path_params["name"]
    policies = body.opt_texts("policies") or []
    who.vault.accounts.set_policies(name, policies, force=query_flag(request, "force"))
    # Children of its tokens are bounded by its policies too.
    state(request).tokens.clear()
    return json_response(wire.encode_identity(who.vault.accounts.get_identity(name)))


async def new_secret_id(request: Request) -> Response:
    who = caller(request)
    body = await typed_body(request, optional={"uses": Kind.INT, "ttl": Kind.STR})
    ttl = body.opt_text("ttl")
    secret_id = who.vault.accounts.new_secret_id(
        request.path_params["name"],
        uses=body.opt_int("uses"),
        ttl=parse_duration(ttl) if ttl else None,
    )
    return json_response(wire.encode_secret_id(secret_id))


async def revoke_identity_tokens(request: Request) -> Response:
    who = caller(request)
    await typed_body(request)
    name = request.path_params["name"]
    count = who.vault.accounts.revoke_identity_tokens(name)
    # Descendants of its tokens may belong to other identities: drop every entry.
    state(request).tokens.clear()
    return json_response(wire.encode_revoked(count))


# -- tokens --------------------------------------------------------------------------------------
async def create_token(request: Request) -> Response:
    who = caller(request)
    body = await typed_body(
        request,
        optional={
            "identity": Kind.STR,
            "ttl": Kind.STR,
            "max_ttl": Kind.STR,
            "policies": Kind.STR_LIST,
            "orphan": Kind.BOOL,
        },
    )
    ttl, max_ttl = body.opt_text("ttl"), body.opt_text("max_ttl")
    accounts = who.vault.accounts
    new = accounts.create_token(
        identity=body.opt_text("identity"),
        ttl=parse_duration(ttl) if ttl is not None else None,
        max_ttl=parse_duration(max_ttl) if max_ttl is not None else None,
        policies=body.opt_texts("policies"),
        orphan=body.flag("orphan"),
    )
    info = state(request).authenticator.describe(new.value)
    return json_response(wire.encode_new_token(new, info))


async def list_tokens(request: Request) -> Response:
    identity = request.query_params.get("identity") or None
    infos = caller(request).vault.accounts.list_tokens(identity)
    return json_response(wire.encode_tokens(infos))


async def revoke_token(request: Request) -> Response:
    who = caller(request)
    accessor = request.path_params["accessor"]
    who.vault.accounts.revoke_token(accessor)
    state(request).tokens.forget_accessor(accessor)  # and its descendants
    return no_content()


# -- policies ------------------------------------------------------------------------------------
async def list_policies(request: Request) -> Response:
    policies = caller(request).vault.accounts.list_policies()
    return json_response(encode_policies(policies))


async def put_policy(request: Request) -> Response:
    who = caller(request)
    name = request.path_params["name"]
    body = await json_body(request, any_fields=True)
    if body.get("name", name) != name:
        raise InvalidInput(f"the policy's name {str(body.get('name'))[:64]!r} is not {name!r}")
    policy = parse_policy({**body, "name": name}, source="request body")
    who.vault.accounts.apply_policy(policy, force=query_flag(request, "force"))
    # Principals carry their policies: drop cached resolutions so the change applies now here.
    state(request).tokens.clear()
    return json_response(encode_policy(policy))


async def get_policy(request: Request) -> Response:
    policy = caller(request).vault.accounts.get_policy(request.path_params["name"])
    return json_response(encode_policy(policy))


async def delete_policy(request: Request) -> Response:
    who = caller(request)
    who.vault.accounts.delete_policy(
        request.path_params["name"], force=query_flag(request, "force")
    )
    state(request).tokens.clear()
    return no_content()


async def explain(request: Request) -> Response:
    who = caller(request)
    body = await typed_body(
        request, required={"identity": Kind.STR, "path": Kind.STR, "capability": Kind.STR}
    )
    decision = who.vault.accounts.explain(
        body.text("identity"), body.text("path"), body.text("capability")
    )
    return json_response(encode_decision(decision))


ROUTES = [
    Route("/v1/identities", list_identities, methods=["GET"]),
    Route("/v1/identities", create_identity, methods=["POST"]),
    Route("/v1/identities/{name}", get_identity, methods=["GET"]),
    Route("/v1/identities/{name}", delete_identity, methods=["DELETE"]),
    Route("/v1/identities/{name}/policies", set_identity_policies, methods=["PUT"]),
    Route("/v1/identities/{name}/secret-ids", new_secret_id, methods=["POST"]),
    Route("/v1/identities/{name}/revoke-tokens", revoke_identity_tokens, methods=["POST"]),
    Route("/v1/tokens", create_token, methods=["POST"]),
    Route("/v1/tokens", list_tokens, methods=["GET"]),
    Route("/v1/tokens/{accessor}", revoke_token, methods=["DELETE"]),
    Route("/v1/policies", list_policies, methods=["GET"]),
    # Before /v1/policies/{name}: "explain" is not a policy name here.
    Route("/v1/policies/explain", explain, methods=["POST"]),
    Route("/v1/policies/{name}", put_policy, methods=["PUT"]),
    Route("/v1/policies/{name}", get_policy, methods=["GET"]),
    Route("/v1/policies/{name}", delete_policy, methods=["DELETE"]),
]
