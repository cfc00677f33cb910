"""``client.leases``: dynamic database credentials on the server (``LeasesAPI``).

Spoken in Vault's shapes (``/v1/database/creds/…``, ``/v1/sys/leases/…``, the routes
hvac uses); each answer also carries sealbox's own ``lease`` object, read with the codec
of :mod:`sealbox.wire.leases`. Roles are defined over Vault's ``database/roles`` route
(``db_name`` is the admin secret's path). Listings and the reaper are run on the
vault's host (the server does not serve those yet).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sealbox.client.errors import reading
from sealbox.errors import InvalidInput
from sealbox.model import SecretValue
from sealbox.wire.leases import Credential, CredRole, LeaseInfo, decode_lease, decode_role

if TYPE_CHECKING:
    from sealbox.client.client import Client


def _role_path(path: str) -> str:
    """``project/env/role`` (or ``creds/…``) as the route's three segments."""
    text = path.removeprefix("creds/")
    parts = text.split("/")
    if len(parts) != 3 or not all(parts):
        raise InvalidInput(f"invalid credentials role {path[:200]!r}: expected project/env/role")
    from sealbox.client.transport import path_of

    return path_of(*parts)


def _seconds(span: timedelta | None) -> int | None:
    if span is None:
        return None
    seconds = int(span.total_seconds())
    if seconds <= 0:
        raise InvalidInput("a duration must be positive")
    return seconds


class RemoteLeases:
    """Roles, and issuing, renewing, looking up and revoking leases, through a
    :class:`~sealbox.client.Client`."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def define_role(
        self,
        path: str,
        *,
        backend_name: str | None,
        admin: str,
        creation: str,
        revocation: str = "",
        renewal: str = "",
        username_template: str | None = None,
        ttl: timedelta = timedelta(hours=1),
        max_ttl: timedelta = timedelta(hours=24),
        max_leases: int | None = None,
        replace: bool = False,
    ) -> CredRole:
        body: dict[str, Any] = {
            "db_name": admin,
            "creation_statements": creation,
            "revocation_statements": revocation,
            "renew_statements": renewal,
            "default_ttl": _seconds(ttl),
            "max_ttl": _seconds(max_ttl),
            "max_leases": max_leases,
            "replace": replace,
        }
        if backend_name is not None:
            body["backend"] = backend_name
        if username_template is not None:
            body["username_template"] = username_template
        self._client._call("POST", "/v1/database/roles" + _role_path(path), body=body)
        return self.get_role(path)

    def get_role(self, path: str) -> CredRole:
        data = self._client._call("GET", "/v1/database/roles" + _role_path(path))
        with reading(self._client.address, "database/roles"):
            return decode_role(data["role"])

    def delete_role(self, path: str) -> None:
        self._client._call("DELETE", "/v1/database/roles" + _role_path(path))

    def issue(self, path: str, *, ttl: timedelta | None = None) -> Credential:
        """New credentials for role ``path``; ``ttl`` is not sent (Vault's route takes
        none): the role's TTL applies, and a shorter one is refused here."""
        if ttl is not None:
            raise InvalidInput(
                "a lease TTL cannot be chosen over HTTP: the role's TTL applies (renew or"
                " revoke the lease instead)"
            )
        where = self._client.address
        data = self._client._call("GET", "/v1/database/creds" + _role_path(path))
        with reading(where, "database/creds"):
            lease = decode_lease(data["lease"])
            username = data["data"]["username"]
            password = data["data"]["password"]
            url = data["data"].get("url")
            if not all(isinstance(v, str) for v in (username, password, url or "")):
                raise TypeError("credentials")
        return Credential(lease, username, SecretValue(password), SecretValue(url) if url else None)

    def get_lease(self, lease_id: str) -> LeaseInfo:
        data = self._client._call("PUT", "/v1/sys/leases/lookup", body={"lease_id": lease_id})
        with reading(self._client.address, "sys/leases/lookup"):
            return decode_lease(data["data"]["lease"])

    def renew(self, lease_id: str, *, increment: timedelta | None = None) -> LeaseInfo:
        body = {"lease_id": lease_id, "increment": _seconds(increment)}
        data = self._client._call("PUT", "/v1/sys/leases/renew", body=body)
        with reading(self._client.address, "sys/leases/renew"):
            return decode_lease(data["lease"])

    def revoke(self, lease_id: str, *, force: bool = False) -> LeaseInfo:
        body = {"lease_id": lease_id, "force": force}
        self._client._call("PUT", "/v1/sys/leases/revoke", body=body)
        return self.get_lease(lease_id)

    def list_leases(
        self, role: str | None = None, *, include_revoked: bool = False
    ) -> list[LeaseInfo]:
        """The leases of ``role`` this token may see (its own, or all with ``list``)."""
        if role is None:
            raise InvalidInput(
                "over HTTP leases are listed by role: name it",
                hint_key="lease_list_role",
            )
        query = {"revoked": "true"} if include_revoked else None
        data = self._client._call("GET", "/v1/sys/leases/lookup" + _role_path(role), query=query)
        with reading(self._client.address, "sys/leases/lookup"):
            return [decode_lease(x) for x in data["leases"]]

    def revoke_prefix(self, prefix: str, *, force: bool = False) -> list[LeaseInfo]:
        """Revoke every lease of role ``prefix``; an UpstreamError if some could not be
        (they stay due for the server's reaper), so the list returned is always empty."""
        action = "revoke-force" if force else "revoke-prefix"
        self._client._call("PUT", f"/v1/sys/leases/{action}" + _role_path(prefix), body={})
        return []
