"""``client.leases``: dynamic database credentials on the server (``LeasesAPI``).

Spoken in Vault's shapes (``/v1/database/creds/…``, ``/v1/sys/leases/…``, the routes
hvac uses); each answer also carries sealbox's own ``lease`` object, read with the codec
of :mod:`sealbox.wire.leases`. Roles, listings and the reaper are administered on the
vault's host (the server does not serve them yet).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from sealbox.client.errors import reading
from sealbox.errors import InvalidInput
from sealbox.model import SecretValue
from sealbox.wire.leases import Credential, LeaseInfo, decode_lease

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
        raise InvalidInput("a renewal's increment must be positive")
    return seconds


class RemoteLeases:
    """Issue, renew, look up and revoke leases through a :class:`~sealbox.client.Client`."""

    def __init__(self, client: Client) -> None:
        self._client = client

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

    def revoke_prefix(self, prefix: str, *, force: bool = False) -> list[LeaseInfo]:
        """Revoke every lease of role ``prefix``; an UpstreamError if some could not be
        (they stay due for the server's reaper), so the list returned is always empty."""
        action = "revoke-force" if force else "revoke-prefix"
        self._client._call("PUT", f"/v1/sys/leases/{action}" + _role_path(prefix), body={})
        return []
