"""Dynamic database credentials over HTTP, in Vault's shapes, so that unmodified ``hvac``
(``secrets.database.generate_credentials``, ``sys.renew_lease``, ``sys.revoke_lease``,
``sys.read_lease``, ``sys.revoke_prefix``, ``sys.revoke_force``) works against sealbox.

``GET /v1/database/creds/<project>/<env>/<role>`` issues (the mount name ``database`` is
Vault's default; a role is addressed by its sealbox path). The lease routes take
``lease_id`` (and ``increment``: seconds, or a duration such as ``1h``) in the body;
``revoke-prefix`` and ``revoke-force`` take a role's path (``sys.revoke_prefix(ROLE)``).

NOTE: these handlers run the database statements on the event loop, as every sealbox
route runs its vault call: an unreachable database holds the loop for up to its connect
timeout (5 s).
"""

from __future__ import annotations

import math
import os
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sealbox.creds.templates import split_statements
from sealbox.errors import InvalidInput, UpstreamError
from sealbox.model import parse_duration, seconds_span
from sealbox.server.http import (
    caller,
    json_body,
    json_response,
    no_content,
    query_flag,
    want_str,
)
from sealbox.wire.leases import LeaseInfo, encode_lease, encode_role

DATABASE_MOUNT = "database"


def _seconds_left(lease: LeaseInfo, now: datetime) -> int:
    # Rounded up: a lease just renewed by 600 s has 600 s left, not 599.99.
    left = (datetime.fromisoformat(lease.expires_at) - now).total_seconds()
    return max(0, math.ceil(left))


def _answer(lease: LeaseInfo, data: Any, *, now: datetime) -> dict[str, Any]:
    return {
        "request_id": os.urandom(16).hex(),
        "lease_id": lease.id,
        "renewable": lease.expires_at < lease.max_expires_at,
        "lease_duration": _seconds_left(lease, now),
        "data": data,
        "wrap_info": None,
        "warnings": None,
        "auth": None,
        "mount_type": DATABASE_MOUNT,
    }


def _increment(value: Any) -> timedelta | None:
    """Vault's ``increment``: seconds (a number or digits) or a duration (``1h``)."""
    if isinstance(value, bool):
        raise InvalidInput("field 'increment' must be seconds or a duration such as 1h")
    if value is None or value in (0, ""):
        return None  # hvac sends null: the role's TTL
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        seconds = int(value)
        if seconds <= 0:
            raise InvalidInput("field 'increment' must be positive")
        return seconds_span(seconds, "field 'increment'")
    if isinstance(value, str):
        return parse_duration(value)
    raise InvalidInput("field 'increment' must be seconds or a duration such as 1h")


def _role(request: Request) -> str:
    p = request.path_params
    return f"{p['project']}/{p['env']}/{p['role']}"


def _ttl(body: dict[str, Any], key: str) -> timedelta | None:
    value = body.get(key)
    if value is None or value in (0, ""):
        return None
    try:
        return _increment(value)
    except InvalidInput:
        raise InvalidInput(f"field {key!r} must be seconds or a duration such as 1h") from None


def _statements(body: dict[str, Any], key: str) -> str:
    """Vault's statements: a list of strings (or one string), joined as one text."""
    value = body.get(key)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ";\n".join(v.strip().rstrip(";") for v in value if v.strip())
    raise InvalidInput(f"field {key!r} must be a string or a list of strings")


ROLE_FIELDS = (
    "db_name",
    "creation_statements",
    "revocation_statements",
    "renew_statements",
    "rollback_statements",
    "default_ttl",
    "max_ttl",
    "backend",
    "username_template",
    "max_leases",
    "replace",
)


async def write_role(request: Request) -> Response:
    """Vault's ``database/roles/:name`` (create or update); ``db_name`` is the admin
    secret's path; sealbox adds ``backend``, ``username_template`` and ``max_leases``."""
    who = caller(request)
    body = await json_body(request, required=("db_name", "creation_statements"),
                           optional=ROLE_FIELDS)  # fmt: skip
    if _statements(body, "rollback_statements").strip():
        raise InvalidInput(
            "rollback statements are not used: a creation that fails is undone by the"
            " revocation (the user is dropped)"
        )
    max_leases = body.get("max_leases")
    if max_leases is not None and (not isinstance(max_leases, int) or isinstance(max_leases, bool)):
        raise InvalidInput("field 'max_leases' must be an integer")
    backend = body.get("backend")
    if backend is not None and not isinstance(backend, str):
        raise InvalidInput("field 'backend' must be a string")
    template = body.get("username_template")
    if template is not None and not isinstance(template, str):
        raise InvalidInput("field 'username_template' must be a string")
    replace = body.get("replace", True)  # Vault's write is create-or-update
    if not isinstance(replace, bool):
        raise InvalidInput("field 'replace' must be true or false")
    extra: dict[str, Any] = {}
    for key, arg in (("default_ttl", "ttl"), ("max_ttl", "max_ttl")):
        span = _ttl(body, key)
        if span is not None:
            extra[arg] = span
    who.vault.leases.define_role(
        _role(request),
        backend_name=backend,
        admin=want_str(body, "db_name"),
        creation=_statements(body, "creation_statements"),
        revocation=_statements(body, "revocation_statements"),
        renewal=_statements(body, "renew_statements"),
        username_template=template,
        max_leases=max_leases,
        replace=replace,
        **extra,
    )
    return no_content()


async def read_role(request: Request) -> Response:
    who = caller(request)
    role = who.vault.leases.get_role(_role(request))
    data = {
        "db_name": role.admin,
        "backend": role.backend,
        "creation_statements": split_statements(role.creation),
        "revocation_statements": split_statements(role.revocation),
        "renew_statements": split_statements(role.renewal),
        "rollback_statements": [],
        "default_ttl": role.ttl,
        "max_ttl": role.max_ttl,
        "username_template": role.username_template,
        "max_leases": role.max_leases,
        "created_at": role.created_at,
        "updated_at": role.updated_at,
        "created_by": role.created_by,
    }
    # ``role``: sealbox's own fields beside Vault's (the SDK reads them).
    return json_response(
        {"request_id": os.urandom(16).hex(), "data": data, "role": encode_role(role)}
    )


async def delete_role(request: Request) -> Response:
    who = caller(request)
    who.vault.leases.delete_role(_role(request))
    return no_content()


async def generate_credentials(request: Request) -> Response:
    who = caller(request)
    cred = who.vault.leases.issue(_role(request))
    now = datetime.fromisoformat(cred.lease.issued_at)
    data = {"username": cred.username, "password": cred.password.reveal()}
    if cred.url is not None:
        data["url"] = cred.url.reveal()  # sealbox's: the admin URL with this login
    # ``lease``: sealbox's own fields beside Vault's (the SDK reads them; hvac ignores them).
    return json_response({**_answer(cred.lease, data, now=now), "lease": encode_lease(cred.lease)})


async def renew_lease(request: Request) -> Response:
    who = caller(request)
    body = await json_body(request, required=("lease_id",), optional=("increment",))
    lease = who.vault.leases.renew(
        want_str(body, "lease_id"), increment=_increment(body.get("increment"))
    )
    answer = _answer(lease, None, now=who.vault.leases.now())
    keys = ("request_id", "lease_id", "renewable", "lease_duration", "data", "warnings")
    return json_response({**{k: answer[k] for k in keys}, "lease": encode_lease(lease)})


async def revoke_lease(request: Request) -> Response:
    who = caller(request)
    body = await json_body(request, required=("lease_id",), optional=("sync", "force"))
    force = body.get("force", False)
    if not isinstance(force, bool):
        raise InvalidInput("field 'force' must be true or false")
    who.vault.leases.revoke(want_str(body, "lease_id"), force=force)
    return no_content()


async def read_lease(request: Request) -> Response:
    who = caller(request)
    body = await json_body(request, required=("lease_id",))
    lease = who.vault.leases.get_lease(want_str(body, "lease_id"))
    now = who.vault.leases.now()
    data = {
        "id": lease.id,
        "issue_time": lease.issued_at,
        "expire_time": lease.expires_at,
        "last_renewal": None,
        "renewable": lease.revoked_at is None and lease.expires_at < lease.max_expires_at,
        "ttl": _seconds_left(lease, now) if lease.revoked_at is None else 0,
        # sealbox's own fields beside Vault's
        "lease": encode_lease(lease),
    }
    return json_response({"request_id": os.urandom(16).hex(), "data": data})


async def list_role_leases(request: Request) -> Response:
    """Vault's ``LIST /v1/sys/leases/lookup/<prefix>`` for a role: the lease ids' last
    segments as ``keys`` (the leases the caller may see), and sealbox's ``leases``;
    ``?revoked=true`` includes revoked ones."""
    who = caller(request)
    items = who.vault.leases.list_leases(
        _role(request), include_revoked=query_flag(request, "revoked")
    )
    data = {"keys": [x.id.rsplit("/", 1)[1] for x in items]}
    return json_response(
        {
            "request_id": os.urandom(16).hex(),
            "data": data,
            "leases": [encode_lease(x) for x in items],
        }
    )


async def _revoke_prefix(request: Request, *, force: bool) -> Response:
    who = caller(request)
    await json_body(request, optional=("prefix", "sync"))
    role = _role(request)
    left = who.vault.leases.revoke_prefix(role, force=force)
    if left:
        raise UpstreamError(
            f"{len(left)} lease(s) of {role} could not be revoked; they stay due and are"
            " retried by the reaper"
        )
    return no_content()


async def revoke_prefix(request: Request) -> Response:
    return await _revoke_prefix(request, force=False)


async def revoke_force(request: Request) -> Response:
    return await _revoke_prefix(request, force=True)


ROLE_PATH = "/{project}/{env}/{role}"
ROUTES = [
    Route(f"/v1/{DATABASE_MOUNT}/roles" + ROLE_PATH, write_role, methods=["POST", "PUT"]),
    Route(f"/v1/{DATABASE_MOUNT}/roles" + ROLE_PATH, read_role, methods=["GET"]),
    Route(f"/v1/{DATABASE_MOUNT}/roles" + ROLE_PATH, delete_role, methods=["DELETE"]),
    Route(f"/v1/{DATABASE_MOUNT}/creds" + ROLE_PATH, generate_credentials, methods=["GET"]),
    Route("/v1/sys/leases/renew", renew_lease, methods=["PUT"]),
    Route("/v1/sys/leases/revoke", revoke_lease, methods=["PUT"]),
    Route("/v1/sys/leases/lookup", read_lease, methods=["PUT"]),
    Route("/v1/sys/leases/lookup" + ROLE_PATH, list_role_leases, methods=["GET", "LIST"]),
    Route("/v1/sys/leases/revoke-prefix" + ROLE_PATH, revoke_prefix, methods=["PUT"]),
    Route("/v1/sys/leases/revoke-force" + ROLE_PATH, revoke_force, methods=["PUT"]),
]
