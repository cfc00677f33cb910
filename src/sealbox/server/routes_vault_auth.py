"""Vault's ``auth/approle/…`` and ``auth/userpass/…`` administration, in Vault's shapes.

AppRole roles are sealbox machines, userpass users are sealbox people (with a password):
the same identities ``/v1/identities`` administers. Every rule (who may administer, which
fields, which policies a caller may grant, secret ids' uses and TTL) is the core's
(``Vault.accounts``, :mod:`sealbox.auth.login_settings`); these routes only translate
Vault's requests and answers (``{"request_id", …, "data"}``; errors ``{"errors": […]}``,
see ``routes_kv.VAULT_AUTH_PREFIXES``). The logins are the login route's (routes_auth.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sealbox.errors import InvalidInput, NotFound
from sealbox.server.http import caller, json_body, json_response, no_content
from sealbox.server.vault_shapes import envelope

if TYPE_CHECKING:
    pass

#: Login methods whose refusals answer as Vault's do: 400 and the method's message.
VAULT_METHODS = frozenset({"approle", "userpass"})
ROLE = "/v1/auth/approle/role"
USERS = "/v1/auth/userpass/users"
WRITE = ["POST", "PUT"]
LISTING = ["GET", "LIST"]


def answer(data: Any, auth: dict[str, Any] | None = None) -> dict[str, Any]:
    """Vault's response envelope."""
    return envelope(data, auth=auth)


def _listing(keys: list[str]) -> Response:
    # Vault answers an empty listing 404 with no error text (hvac raises InvalidPath).
    if not keys:
        raise NotFound("")
    return json_response(answer({"keys": keys}))


def _token_fields(settings: dict[str, int], policies: list[str]) -> dict[str, Any]:
    return {
        "token_policies": policies,
        "token_ttl": settings.get("token_ttl", 0),
        "token_max_ttl": settings.get("token_max_ttl", 0),
        "token_explicit_max_ttl": 0,
        "token_bound_cidrs": [],
        "token_no_default_policy": False,
        "token_num_uses": 0,
        "token_period": 0,
        "token_type": "default",
    }


# -- AppRole -------------------------------------------------------------------------------------
async def list_roles(request: Request) -> Response:
    return _listing(caller(request).vault.accounts.login_role_names("machine"))


async def write_role(request: Request) -> Response:
    who = caller(request)
    body = await json_body(request, null_is_empty=True, any_fields=True)
    who.vault.accounts.write_login_role("machine", request.path_params["name"], body)
    return no_content()


async def read_role(request: Request) -> Response:
    info, settings = caller(request).vault.accounts.login_role("machine", _name(request))
    data = {
        **_token_fields(settings, list(info.policies)),
        "bind_secret_id": True,
        "local_secret_ids": False,
        "secret_id_bound_cidrs": None,
        "secret_id_num_uses": settings.get("secret_id_num_uses", 0),
        "secret_id_ttl": settings.get("secret_id_ttl", 0),
    }
    return json_response(answer(data))


async def delete_role(request: Request) -> Response:
    caller(request).vault.accounts.delete_login_role("machine", _name(request))
    return no_content()


async def read_role_id(request: Request) -> Response:
    info, _ = caller(request).vault.accounts.login_role("machine", _name(request))
    return json_response(answer({"role_id": info.role_id}))


async def write_role_id(request: Request) -> Response:
    who = caller(request)
    body = await json_body(request, null_is_empty=True, required=("role_id",))
    who.vault.accounts.set_role_id(_name(request), body["role_id"])
    return no_content()


async def new_secret_id(request: Request) -> Response:
    who = caller(request)
    body = await json_body(
        request, null_is_empty=True, optional=("metadata", "cidr_list", "token_bound_cidrs")
    )
    for field in ("cidr_list", "token_bound_cidrs"):
        if body.get(field):
            raise InvalidInput(f"unsupported field {field!r}: sealbox does not bind secret ids")
    if body.get("metadata"):
        raise InvalidInput("unsupported field 'metadata': sealbox keeps no secret id metadata")
    value, row = who.vault.accounts.mint_secret_id(_name(request))
    data = {
        "secret_id": value,
        "secret_id_accessor": row.accessor,
        "secret_id_ttl": _ttl(row),
        "secret_id_num_uses": row.uses_left or 0,
    }
    return json_response(answer(data))


async def list_secret_ids(request: Request) -> Response:
    rows = caller(request).vault.accounts.secret_ids(_name(request))
    return _listing([r.accessor for r in rows])


async def lookup_secret_id(request: Request) -> Response:
    return await _lookup(request, "secret_id")


async def lookup_accessor(request: Request) -> Response:
    return await _lookup(request, "secret_id_accessor")


async def destroy_secret_id(request: Request) -> Response:
    return await _destroy(request, "secret_id")


async def destroy_accessor(request: Request) -> Response:
    return await _destroy(request, "secret_id_accessor")


async def _lookup(request: Request, field: str) -> Response:
    who = caller(request)
    body = await json_body(request, null_is_empty=True, required=(field,))
    row = who.vault.accounts.find_secret_id(_name(request), **_which(field, body[field]))
    if row is None:
        if field == "secret_id":
            return no_content()  # Vault answers an unknown secret id 204
        raise NotFound(f"failed to find accessor entry for secret_id_accessor: {body[field]!r}")
    return json_response(answer(_secret_id_data(row)))


async def _destroy(request: Request, field: str) -> Response:
    who = caller(request)
    body = await json_body(request, null_is_empty=True, required=(field,))
    who.vault.accounts.destroy_secret_id(_name(request), **_which(field, body[field]))
    return no_content()


def _which(field: str, value: Any) -> dict[str, str]:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"field {field!r} must be a non-empty string")
    return {"secret_id": value} if field == "secret_id" else {"accessor": value}


def _ttl(row: Any) -> int:
    # row: the core's secret id row (accessor, uses_left, expires_at, created_at)
    if row.expires_at is None:
        return 0
    span = datetime.fromisoformat(row.expires_at) - datetime.fromisoformat(row.created_at)
    return int(span.total_seconds())


def _secret_id_data(row: Any) -> dict[str, Any]:
    return {
        "cidr_list": [],
        "creation_time": row.created_at,
        "expiration_time": row.expires_at or "0001-01-01T00:00:00Z",
        "last_updated_time": row.created_at,
        "metadata": {},
        "secret_id_accessor": row.accessor,
        "secret_id_num_uses": row.uses_left or 0,
        "secret_id_ttl": _ttl(row),
        "token_bound_cidrs": [],
    }


def _name(request: Request) -> str:
    name: str = request.path_params["name"]
    return name


# -- userpass ------------------------------------------------------------------------------------
async def list_users(request: Request) -> Response:
    return _listing(caller(request).vault.accounts.login_role_names("person"))


async def write_user(request: Request) -> Response:
    who = caller(request)
    body = await json_body(request, null_is_empty=True, any_fields=True)
    who.vault.accounts.write_login_role("person", _name(request), body)
    return no_content()


async def read_user(request: Request) -> Response:
    info, settings = caller(request).vault.accounts.login_role("person", _name(request))
    return json_response(answer(_token_fields(settings, list(info.policies))))


async def delete_user(request: Request) -> Response:
    caller(request).vault.accounts.delete_login_role("person", _name(request))
    return no_content()


async def write_password(request: Request) -> Response:
    who = caller(request)
    body = await json_body(request, null_is_empty=True, required=("password",))
    who.vault.accounts.set_password(_name(request), body["password"])
    return no_content()


NAMED = ROLE + "/{name}"
ROUTES = [
    Route(ROLE, list_roles, methods=LISTING),
    Route(NAMED, write_role, methods=WRITE),
    Route(NAMED, read_role, methods=["GET"]),
    Route(NAMED, delete_role, methods=["DELETE"]),
    Route(NAMED + "/role-id", read_role_id, methods=["GET"]),
    Route(NAMED + "/role-id", write_role_id, methods=WRITE),
    Route(NAMED + "/secret-id", new_secret_id, methods=WRITE),
    Route(NAMED + "/secret-id", list_secret_ids, methods=LISTING),
    Route(NAMED + "/secret-id/lookup", lookup_secret_id, methods=WRITE),
    Route(NAMED + "/secret-id/destroy", destroy_secret_id, methods=WRITE),
    Route(NAMED + "/secret-id-accessor/lookup", lookup_accessor, methods=WRITE),
    Route(NAMED + "/secret-id-accessor/destroy", destroy_accessor, methods=WRITE),
    Route(USERS, list_users, methods=LISTING),
    Route(USERS + "/{name}", write_user, methods=WRITE),
    Route(USERS + "/{name}", read_user, methods=["GET"]),
    Route(USERS + "/{name}", delete_user, methods=["DELETE"]),
    Route(USERS + "/{name}/password", write_password, methods=WRITE),
]
