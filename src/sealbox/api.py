"""The one Protocol the embedded :class:`~sealbox.vault.Vault` and the remote SDK ``Client``
both satisfy, so every CLI command works unchanged against either.

It names only values of :mod:`sealbox.model` and :mod:`sealbox.wire`. It is the core's
contract, which the adapters (CLI, delivery, integrations) program against; the SDK
satisfies it structurally without importing it, and mypy checks both implementations where
they are made: :func:`sealbox.factory.connect` returns a ``Client`` or a ``Vault`` as a
``VaultAPI`` (``Client.accounts`` as its ``AccountsAPI``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sealbox.model import (
        CheckpointRow,
        Decision,
        IncidentReport,
        KmsStatus,
        Policy,
        Secret,
        SecretInfo,
        SecretMeta,
        SecretRef,
        SecretValue,
        Verification,
        VersionInfo,
    )
    from sealbox.wire.accounts import IdentityInfo, NewToken, TokenInfo
    from sealbox.wire.leases import Credential, CredRole, LeaseInfo, ReapReport


class AccountsAPI(Protocol):
    """Identities, tokens and policies."""

    def apply_policy(self, policy: Policy, *, force: bool = False) -> None: ...
    def get_policy(self, name: str) -> Policy: ...
    def list_policies(self) -> list[Policy]: ...
    def delete_policy(self, name: str, *, force: bool = False) -> None: ...
    def explain(self, identity: str, path: str, capability: str) -> Decision: ...
    def create_person(self, name: str, password: str, policies: list[str]) -> IdentityInfo: ...
    def create_machine(self, name: str, policies: list[str]) -> IdentityInfo: ...
    def new_secret_id(
        self, name: str, *, uses: int | None = None, ttl: timedelta | None = None
    ) -> str: ...
    def list_identities(self) -> list[IdentityInfo]: ...
    def get_identity(self, name: str) -> IdentityInfo: ...
    def set_policies(self, name: str, policies: list[str], *, force: bool = False) -> None: ...
    def delete_identity(self, name: str, *, force: bool = False) -> None: ...
    def create_token(
        self,
        *,
        identity: str | None = None,
        ttl: timedelta | None = None,
        max_ttl: timedelta | None = None,
        policies: list[str] | None = None,
        display: str = "",
        orphan: bool = False,
    ) -> NewToken: ...
    def list_tokens(self, identity: str | None = None) -> list[TokenInfo]: ...
    def revoke_token(self, accessor: str) -> None: ...
    def revoke_identity_tokens(self, name: str) -> int: ...


class AuditAPI(Protocol):
    """The audit trail's queries and verification (admin on sys/audit)."""

    def log(
        self,
        *,
        secret: SecretRef | None = None,
        identity: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        operations: Sequence[str] | None = None,
        denied: bool = False,
        source: str | None = None,
        limit: int | None = 100,
    ) -> list[dict[str, Any]]: ...
    def who_read(
        self,
        ref: SecretRef | None = None,
        *,
        version: int | None = None,
        value_hmac: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[dict[str, Any]]: ...
    def value_hmac(self, value: SecretValue) -> str: ...
    def verify(self, files: Sequence[str] = ()) -> Verification: ...
    def accept_rejected(self, file: str) -> str: ...
    def checkpoint(self) -> list[CheckpointRow]: ...


class LeasesAPI(Protocol):
    """Dynamic database credentials: ``vault.leases``, and ``Client.leases`` over HTTP."""

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
        ttl: timedelta = ...,
        max_ttl: timedelta = ...,
        max_leases: int | None = None,
        replace: bool = False,
    ) -> CredRole: ...
    def get_role(self, path: str) -> CredRole: ...
    def delete_role(self, path: str) -> None: ...
    def issue(self, path: str, *, ttl: timedelta | None = None) -> Credential: ...
    def get_lease(self, lease_id: str) -> LeaseInfo: ...
    def renew(self, lease_id: str, *, increment: timedelta | None = None) -> LeaseInfo: ...
    def revoke(self, lease_id: str, *, force: bool = False) -> LeaseInfo: ...
    def revoke_prefix(self, prefix: str, *, force: bool = False) -> list[LeaseInfo]: ...
    def list_leases(
        self, role: str | None = None, *, include_revoked: bool = False
    ) -> list[LeaseInfo]:
        """Over HTTP, ``role`` must be named (Vault lists leases by prefix)."""
        ...


class LeaseAdminAPI(LeasesAPI, Protocol):
    """Role listings and the reaper: the embedded vault's ``vault.leases`` only (the
    server does not serve them yet)."""

    def list_roles(self, project: str | None = None, env: str | None = None) -> list[CredRole]: ...
    def reap(self, now: datetime | None = None, *, limit: int = ...) -> ReapReport: ...


class VaultAPI(Protocol):
    """Secrets, versions, metadata, projects and environments; accounts and the audit
    trail as properties."""

    def create_project(self, project: str, *, environments: tuple[str, ...] = ...) -> None: ...
    def list_projects(self) -> list[str]: ...
    def create_env(self, project: str, env: str) -> None: ...
    def list_envs(self, project: str) -> list[str]: ...
    def set(self, ref: SecretRef, value: SecretValue, *, if_version: int | None = None) -> int: ...
    def get(
        self,
        ref: SecretRef,
        *,
        version: int | None = None,
        reveal: bool = False,
        stage: str | None = None,
    ) -> Secret: ...
    def resolve(
        self, project: str, env: str, *, only: list[str] | None = None, purpose: str = "run"
    ) -> dict[str, SecretValue]: ...
    def list_secrets(
        self, project: str, env: str, *, include_deleted: bool = False
    ) -> list[SecretInfo]: ...
    def info(self, ref: SecretRef) -> SecretInfo: ...
    def history(self, ref: SecretRef) -> list[VersionInfo]: ...
    def rollback(self, ref: SecretRef, version: int, *, if_version: int | None = None) -> int: ...
    def update_meta(self, ref: SecretRef, **changes: Any) -> SecretMeta: ...
    def delete(self, ref: SecretRef) -> None: ...
    def undelete(self, ref: SecretRef) -> None: ...
    def purge(self, ref: SecretRef) -> int: ...
    def close(self) -> None: ...
    def kms_status(self, *, probe: bool = True) -> KmsStatus: ...
    # Embedded: the ``vault.incident`` service, called (sealbox.incident.Incident.__call__).
    def incident(
        self,
        ref: SecretRef,
        *,
        reason: str,
        value: SecretValue | None = None,
        rotate: bool = False,
    ) -> IncidentReport: ...

    @property
    def accounts(self) -> AccountsAPI: ...

    @property
    def audit(self) -> AuditAPI: ...
