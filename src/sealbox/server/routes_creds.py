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

from sealbox.errors import InvalidInput, UpstreamError
from sealbox.model import parse_duration
from sealbox.server.http import caller, json_body, json_response, no_content, want_str
from sealbox.wire.leases import LeaseInfo, encode_lease

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
        return timedelta(seconds=seconds)
    if isinstance(value, str):
        return parse_duration(value)
    raise InvalidInput("field 'increment' must be seconds or a duration such as 1h")


def _role(request: Request) -> str:
    p = request.path_params
    return f"{p['project']}/{p['env']}/{p['role']}"


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
    Route(f"/v1/{DATABASE_MOUNT}/creds" + ROLE_PATH, generate_credentials, methods=["GET"]),
    Route("/v1/sys/leases/renew", renew_lease, methods=["PUT"]),
    Route("/v1/sys/leases/revoke", revoke_lease, methods=["PUT"]),
    Route("/v1/sys/leases/lookup", read_lease, methods=["PUT"]),
    Route("/v1/sys/leases/revoke-prefix" + ROLE_PATH, revoke_prefix, methods=["PUT"]),
    Route("/v1/sys/leases/revoke-force" + ROLE_PATH, revoke_force, methods=["PUT"]),
]
