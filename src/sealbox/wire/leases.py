"""The values of dynamic database credentials: a role, a lease, a credential, a reap.

Defined here (frozen dataclasses, beside their JSON codecs) for the same reason as
:mod:`sealbox.wire.accounts`: the core (:mod:`sealbox.lease_ops`) makes them, the CLI
prints them, and an SDK or HTTP route would encode them, all without importing the core.
A :class:`Credential` holds its password as a :class:`~sealbox.model.SecretValue`, so its
``repr`` shows ``***``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sealbox.model import SecretValue
from sealbox.wire.fields import integer, obj, opt_int, opt_text, text


@dataclass(frozen=True)
class CredRole:
    """How a role makes and drops users. Not secret: the admin login is a secret's path."""

    path: str  # project/env/role
    backend: str  # postgres | mysql
    admin: str  # project/env/NAME of the admin URL secret
    creation: str
    revocation: str  # "" : the backend's default
    renewal: str  # "" : the backend's default
    username_template: str
    ttl: int  # seconds
    max_ttl: int  # seconds
    max_leases: int | None
    created_at: str
    updated_at: str
    created_by: str


@dataclass(frozen=True)
class LeaseInfo:
    """A lease as listings show it: the user's name, never its password."""

    id: str
    role: str  # project/env/role
    username: str
    identity: str
    token_accessor: str | None
    issued_at: str
    expires_at: str
    max_expires_at: str
    revoked_at: str | None
    revoke_attempts: int
    next_attempt_at: str | None
    last_error: str

    @property
    def state(self) -> str:
        """``live``, ``revoking`` (a revocation failed and will be retried) or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        return "revoking" if self.revoke_attempts else "live"


@dataclass(frozen=True)
class Credential:
    """A new database login under a lease. The password is shown once: it is not kept."""

    lease: LeaseInfo
    username: str
    password: SecretValue
    #: The admin URL with this login in place of the admin's (None if it has no database).
    url: SecretValue | None = None

    @property
    def lease_id(self) -> str:
        return self.lease.id


@dataclass(frozen=True)
class ReapReport:
    """What one pass of the reaper did."""

    revoked: tuple[str, ...] = ()
    #: (lease id, why) of each revocation that failed this time and will be retried.
    failed: tuple[tuple[str, str], ...] = ()
    #: Leases left for a later pass (more were due than one pass takes).
    more: bool = False
    notes: tuple[str, ...] = field(default=())


def encode_role(role: CredRole) -> dict[str, Any]:
    return dict(role.__dict__)


def encode_lease(lease: LeaseInfo) -> dict[str, Any]:
    return {**lease.__dict__, "state": lease.state}


def decode_role(data: Any) -> CredRole:
    """A role from :func:`encode_role`'s JSON (WireError naming a bad field)."""
    d = obj(data, "role")
    return CredRole(
        path=text(d, "path"),
        backend=text(d, "backend"),
        admin=text(d, "admin"),
        creation=text(d, "creation"),
        revocation=text(d, "revocation"),
        renewal=text(d, "renewal"),
        username_template=text(d, "username_template"),
        ttl=integer(d, "ttl"),
        max_ttl=integer(d, "max_ttl"),
        max_leases=opt_int(d, "max_leases"),
        created_at=text(d, "created_at"),
        updated_at=text(d, "updated_at"),
        created_by=text(d, "created_by"),
    )


def decode_lease(data: Any) -> LeaseInfo:
    """A lease from :func:`encode_lease`'s JSON (WireError naming a bad field)."""
    d = obj(data, "lease")
    return LeaseInfo(
        id=text(d, "id"),
        role=text(d, "role"),
        username=text(d, "username"),
        identity=text(d, "identity"),
        token_accessor=opt_text(d, "token_accessor"),
        issued_at=text(d, "issued_at"),
        expires_at=text(d, "expires_at"),
        max_expires_at=text(d, "max_expires_at"),
        revoked_at=opt_text(d, "revoked_at"),
        revoke_attempts=integer(d, "revoke_attempts"),
        next_attempt_at=opt_text(d, "next_attempt_at"),
        last_error=text(d, "last_error"),
    )


def encode_credential(cred: Credential) -> dict[str, Any]:
    """The credential with its password revealed: for the one answer that hands it over."""
    data: dict[str, Any] = {
        "lease": encode_lease(cred.lease),
        "username": cred.username,
        "password": cred.password.reveal(),
    }
    if cred.url is not None:
        data["url"] = cred.url.reveal()
    return data
