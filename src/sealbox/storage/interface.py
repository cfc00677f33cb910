"""The storage role protocols, and :class:`Storage`, their union.

Storage knows nothing of keys or plaintext: it keeps opaque ciphertext and wrapped keys
and enforces the version rules (immutable versions, monotonic numbers, compare-and-set)
inside its transactions. It decides no domain rule: the stages a write gives the
versions and whether it revives a deleted secret come from the core as a
:class:`~sealbox.storage.rows.StagePlan` (:mod:`sealbox.stages`).

Each role is small and about one concern, so a core module names the role it uses
(the accounts service an :class:`AccountStore`, the key operations a :class:`KeyStore`
and :class:`SessionStore`, the audit recorder an :class:`AuditStore`); a backend
implements them all (:class:`Storage`). Every backend passes the contract suite in
``tests/unit/storage/``, one file per role. The rows that cross it are in
:mod:`sealbox.storage.rows`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    from sealbox.changes import ChangeFeed
    from sealbox.storage.rows import (
        AuditQuery,
        AuditRow,
        BuildAudit,
        CheckpointRow,
        CredRoleRow,
        DocumentRow,
        DocumentVersionRow,
        HeadRow,
        IdentityRow,
        KekRecord,
        KekWrapping,
        KeyProviderRow,
        LeaseRow,
        LockRow,
        RestagePlan,
        RewrapRow,
        RotationConfigRow,
        RotationRow,
        SealFor,
        SecretIdRow,
        SecretRow,
        SessionRow,
        SignHead,
        StagePlan,
        TokenRow,
        VersionRow,
    )


class Lifecycle(Protocol):
    """Creating, migrating, checking and closing the store."""

    description: str

    def initialise(
        self,
        vault_id: str,
        settings: dict[str, str],
        kek: KekRecord,
        now: str,
        *,
        provider: KeyProviderRow,
        wrapping: KekWrapping,
    ) -> None: ...
    def is_initialised(self) -> bool: ...
    def migrate(self) -> int: ...
    def close(self) -> None: ...
    def check(self) -> list[str]: ...
    def serve(self) -> None:
        """A long-running server owns this storage: move housekeeping off the request path."""
        ...


class SettingsStore(Protocol):
    """Vault settings (not secret: ids, KDF parameters, wrapped audit keys)."""

    def get_setting(self, key: str) -> str | None: ...
    def settings(self) -> dict[str, str]: ...
    def ensure_setting(self, key: str, value: str) -> str:
        """Store ``value`` under ``key`` unless one is there (whoever comes first: the
        lazily created audit key); returns the stored value."""
        ...


class KeyStore(Protocol):
    """The KEKs, the key providers, and each KEK wrapped by each provider (schema 12).
    See :mod:`sealbox.storage.sql_keys`.
    Every change takes ``audit`` as the secret writes do: the change's event is recorded
    in its transaction."""

    def list_keks(self) -> list[KekRecord]: ...
    def list_key_providers(self) -> list[KeyProviderRow]: ...
    def list_kek_wrappings(self) -> list[KekWrapping]: ...
    def add_key_provider(
        self,
        row: KeyProviderRow,
        wrappings: Sequence[KekWrapping],
        *,
        audit: Callable[[], None] | None = None,
        audit_node: str | None = None,
        audit_head: SignHead | None = None,
    ) -> None: ...
    def update_key_provider(
        self,
        name: str,
        *,
        config: str | None = None,
        wrappings: Sequence[KekWrapping] = (),
        end_sessions: bool = False,
        audit: Callable[[], None] | None = None,
        audit_node: str | None = None,
        audit_head: SignHead | None = None,
    ) -> None: ...
    def remove_key_provider(
        self,
        name: str,
        *,
        audit: Callable[[], None] | None = None,
        audit_node: str | None = None,
        audit_head: SignHead | None = None,
    ) -> None: ...
    def add_kek(
        self,
        kek: KekRecord,
        wrappings: Sequence[KekWrapping],
        *,
        audit: Callable[[], None] | None = None,
        audit_node: str | None = None,
        audit_head: SignHead | None = None,
    ) -> None: ...
    def delete_kek(
        self,
        kek_id: str,
        *,
        audit: Callable[[], None] | None = None,
        audit_node: str | None = None,
        audit_head: SignHead | None = None,
    ) -> None: ...
    def set_settings(
        self,
        values: dict[str, str],
        *,
        audit: Callable[[], None] | None = None,
        audit_node: str | None = None,
        audit_head: SignHead | None = None,
    ) -> None: ...


class RewrapStore(Protocol):
    """The data keys' re-wrap under another KEK or provider (``sealbox kms rotate``,
    ``kms per-version --migrate-to``): which versions are left, and storing a batch."""

    def count_versions_by_kek(self) -> dict[str, int]: ...
    def versions_to_rewrap(
        self, target_kek: str, *, after: tuple[int, int] | None = None, limit: int = 1000
    ) -> list[RewrapRow]: ...
    def per_version_to_rewrap(
        self, target_kek: str, *, after: tuple[int, int] | None = None, limit: int = 1000
    ) -> list[RewrapRow]: ...
    def rewrap_versions(
        self,
        rows: Sequence[tuple[int, int, str, str, bytes]],
        *,
        audit: Callable[[int], None] | None = None,
        audit_node: str | None = None,
        audit_head: SignHead | None = None,
    ) -> int: ...


class SessionStore(Protocol):
    """Unlock sessions (a master key wrapped for a while)."""

    def put_session(
        self,
        row: SessionRow,
        *,
        audit: Callable[[], None] | None = None,
        audit_node: str | None = None,
        audit_head: SignHead | None = None,
    ) -> None: ...
    def get_session(self, session_id: str) -> SessionRow | None: ...
    def delete_sessions(
        self,
        *,
        expired_before: str | None = None,
        audit: Callable[[int], None] | None = None,
        audit_node: str | None = None,
        audit_head: SignHead | None = None,
    ) -> int: ...


class ChangeStore(Protocol):
    """How this process sends and hears change notices (see :mod:`sealbox.changes`)."""

    def change_feed(self) -> ChangeFeed: ...


class ScopeStore(Protocol):
    """Projects and their environments, the scopes secrets live in."""

    def create_project(self, project: str, now: str) -> None: ...
    def list_projects(self) -> list[str]: ...
    def create_env(self, project: str, env: str, now: str) -> None: ...
    def list_envs(self, project: str) -> list[str]: ...


class SecretStore(Protocol):
    """Secrets, their versions and metadata."""

    def write_version(
        self,
        project: str,
        env: str,
        name: str,
        seal_for: SealFor,
        *,
        now: str,
        actor: str,
        plan: StagePlan,
        expected_version: int | None = None,
        rollback_of: int | None = None,
        audit_node: str | None = None,
        audit_head: SignHead | None = None,
        rotation_id: str | None = None,
    ) -> int:
        """Write the next version, numbered after the last one written; its stage, the
        existing versions' stages, the current version and revival as ``plan`` says.
        ``expected_version`` is compared with the current version (compare-and-set).
        With ``rotation_id``, the version is that rotation's: when the rotation wrote one
        already, its number is returned and nothing is written (``seal_for`` not called)."""
        ...

    def read_version(
        self, project: str, env: str, name: str, version: int | None
    ) -> VersionRow: ...
    def read_current(
        self, project: str, env: str, names: list[str] | None = None
    ) -> list[VersionRow]: ...
    def get_secret(self, project: str, env: str, name: str) -> SecretRow: ...
    def list_secrets(
        self, project: str, env: str, *, include_deleted: bool = False
    ) -> list[SecretRow]: ...
    def history(self, project: str, env: str, name: str) -> list[VersionRow]: ...
    # With ``audit_node``, the events ``audit`` appends to that chain (it runs inside the
    # change's transaction) commit with the change or not at all, as in write_version.
    def set_secret_meta(
        self,
        project: str,
        env: str,
        name: str,
        meta_json: str,
        now: str,
        *,
        audit: Callable[[], None] | None = None,
        audit_node: str | None = None,
    ) -> None: ...
    def soft_delete(
        self,
        project: str,
        env: str,
        name: str,
        now: str,
        *,
        audit: Callable[[], None] | None = None,
        audit_node: str | None = None,
    ) -> None: ...
    def undelete(
        self,
        project: str,
        env: str,
        name: str,
        now: str,
        *,
        audit: Callable[[], None] | None = None,
        audit_node: str | None = None,
    ) -> None: ...
    def purge(
        self,
        project: str,
        env: str,
        name: str,
        *,
        audit: Callable[[int], None] | None = None,
        audit_node: str | None = None,
    ) -> int: ...
    def iter_versions(self) -> Iterator[VersionRow]: ...
    def version_refs(self) -> list[tuple[str, int]]:
        """(``project/env/name``, version) of every stored version."""
        ...


class RotationStore(Protocol):
    """Rotations: each secret's rotation settings, the record of each rotation step by
    step (one unfinished rotation per secret), and the stage moves rotations make."""

    def put_rotation_config(
        self,
        row: RotationConfigRow,
        *,
        audit: Callable[[], None] | None = None,
        audit_node: str | None = None,
    ) -> None:
        """Store (or replace) a secret's rotation settings; NotFound without the secret."""
        ...

    def get_rotation_config(
        self, project: str, env: str, name: str
    ) -> RotationConfigRow | None: ...
    def list_rotation_configs(self) -> list[RotationConfigRow]: ...
    def start_rotation(
        self,
        row: RotationRow,
        *,
        audit: Callable[[], None] | None = None,
        audit_node: str | None = None,
    ) -> None:
        """Record a new rotation; Conflict naming the secret's unfinished one, if any."""
        ...

    def save_rotation(
        self,
        row: RotationRow,
        *,
        expect_owner: str,
        audit: Callable[[], None] | None = None,
        audit_node: str | None = None,
    ) -> None:
        """Store a rotation's progress; Conflict unless it is unfinished and still held by
        ``expect_owner`` (a node that lost its lease must stop)."""
        ...

    def claim_rotation(
        self, rotation_id: str, owner: str, lease_until: str, *, expect_owner: str
    ) -> bool:
        """Take an unfinished rotation over from ``expect_owner``; False if it is finished
        or held by someone else by now."""
        ...

    def get_rotation(self, rotation_id: str) -> RotationRow | None: ...
    def list_rotations(
        self,
        *,
        project: str | None = None,
        env: str | None = None,
        name: str | None = None,
        open_only: bool = False,
        limit: int = 100,
    ) -> list[RotationRow]:
        """Newest first."""
        ...

    def version_for_rotation(
        self, project: str, env: str, name: str, rotation_id: str
    ) -> int | None:
        """The version the rotation wrote, if any."""
        ...

    def restage(
        self,
        project: str,
        env: str,
        name: str,
        plan: RestagePlan,
        now: str,
        *,
        audit: Callable[[], None] | None = None,
        audit_node: str | None = None,
    ) -> None:
        """Move stages as ``plan`` says, under the secret's row lock; Conflict if its
        version is not at the stage it expects (nothing is changed then)."""
        ...

    def read_stage(self, project: str, env: str, name: str, stage: str) -> VersionRow:
        """The version at ``stage`` (the newest, if several); NotFound if none."""
        ...


class IdentityStore(Protocol):
    """Identities (people and machines) and machines' secret ids."""

    def create_identity(self, row: IdentityRow) -> None: ...
    def get_identity(
        self, *, id: str | None = None, name: str | None = None, role_id: str | None = None
    ) -> IdentityRow | None: ...
    def list_identities(self) -> list[IdentityRow]: ...
    def update_identity(
        self,
        id: str,
        *,
        policies: str | None = None,
        password_hash: str | None = None,
        disabled: bool | None = None,
        role_id: str | None = None,
        settings: str | None = None,
    ) -> None: ...
    def delete_identity(self, id: str, *, now: str) -> None: ...
    def add_secret_id(self, row: SecretIdRow) -> None: ...
    def consume_secret_id(self, identity_id: str, hash: str, now: str) -> bool: ...
    def list_secret_ids(self, identity_id: str) -> list[SecretIdRow]:
        """An identity's secret ids (hashes, never values), oldest first."""
        ...

    def delete_secret_id(self, identity_id: str, accessor: str) -> bool:
        """Remove one secret id of an identity; False if it had none by that accessor."""
        ...


class TokenStore(Protocol):
    """Tokens (hashed), a tree: revoking one revokes what descends from it."""

    def put_token(self, row: TokenRow) -> None: ...
    def get_token(
        self, *, hash: str | None = None, accessor: str | None = None
    ) -> TokenRow | None: ...
    def list_tokens(self, identity_id: str | None = None) -> list[TokenRow]: ...
    def renew_token(self, accessor: str, expires_at: str) -> None: ...
    def revoke_tokens(
        self, *, accessor: str | None = None, identity_id: str | None = None, now: str
    ) -> int: ...


class PolicyStore(Protocol):
    """Named policy documents."""

    def put_policy(self, name: str, document: str, now: str) -> None: ...
    def get_policies(self, names: list[str]) -> dict[str, str]: ...
    def list_policies(self) -> list[tuple[str, str]]: ...
    def delete_policy(self, name: str) -> None: ...


class AccountStore(IdentityStore, TokenStore, PolicyStore, Protocol):
    """Everything :mod:`sealbox.auth` keeps: identities, tokens, policies."""


class AuditWriter(Protocol):
    """Appending to the audit trail: one hash chain per node, its signed head row moved
    with each commit."""

    def append_audit_event(
        self, node: str, build: BuildAudit, head: SignHead | None = None
    ) -> AuditRow:
        """Append one event; with ``head``, the chain's head row moves in the same
        transaction (inside an audit batch the batch moves it once, at its end)."""
        ...

    def audit_batch(
        self, node: str, *, wait: bool = True, head: SignHead | None = None
    ) -> AbstractContextManager[None]:
        """One transaction for many audit appends; with ``wait=False`` a chain or database
        lock held by another writer raises :class:`~sealbox.errors.StorageBusy` at once.
        With ``head``, the chain's head row moves once, before the commit."""
        ...

    def store_audit_rows(
        self, rows: Sequence[AuditRow], *, wait: bool = True, head: SignHead | None = None
    ) -> None:
        """Insert chained events in one transaction; ``wait=False`` as for audit_batch;
        ``head`` moves in the same transaction."""
        ...

    def audit_head(self, node: str) -> tuple[int, str]: ...
    def mark_audit_head(self, node: str, head: SignHead) -> None:
        """Sign ``node``'s head again where the chain stands (no event: a spool opened,
        closed or recovered)."""
        ...

    def add_audit_checkpoint(self, row: CheckpointRow, head: SignHead | None = None) -> None: ...
    def spool_dir(self) -> Path | None:
        """Where a server process may spool audit events (None: commit each event)."""
        ...


class AuditReader(Protocol):
    """Reading the audit trail back: queries, chains, heads and checkpoints."""

    def list_audit(self, limit: int = 100) -> list[AuditRow]: ...
    def query_audit(self, query: AuditQuery) -> list[AuditRow]: ...
    def audit_chain(self, node: str) -> list[AuditRow]: ...
    def audit_heads(self) -> dict[str, tuple[int, str]]: ...
    def audit_head_marks(self) -> dict[str, HeadRow]: ...
    def audit_nodes(self) -> list[str]: ...
    def count_unchained_audit(self) -> int: ...
    def has_keyed_audit(self) -> bool: ...
    def list_audit_checkpoints(self) -> list[CheckpointRow]: ...


class AuditStore(AuditWriter, AuditReader, SettingsStore, Protocol):
    """The audit trail, written and read, and the settings its keys are kept in."""


class LockStore(Protocol):
    """Scheduler locks: which node runs a job, for how long (a lease on a row)."""

    def claim_lock(self, name: str, owner: str, *, now: str, until: str) -> LockRow:
        """Hold ``name`` for ``owner`` until ``until`` if it is free, expired (``until``
        before ``now``) or already ``owner``'s (then extended); the row as it stands
        after: its ``owner`` says whether the claim was won. Atomic between processes."""
        ...

    def release_lock(self, name: str, owner: str) -> bool:
        """Free ``name`` if ``owner`` holds it; whether it did."""
        ...

    def list_locks(self) -> list[LockRow]: ...


class CredRoleStore(Protocol):
    """Dynamic-credentials roles: how to make and drop users on an upstream database."""

    def put_cred_role(self, row: CredRoleRow, *, replace: bool = False) -> None:
        """Store a role; AlreadyExists unless ``replace``; NotFound for a missing
        project or environment."""
        ...

    def get_cred_role(self, project: str, env: str, name: str) -> CredRoleRow | None: ...
    def list_cred_roles(
        self, project: str | None = None, env: str | None = None
    ) -> list[CredRoleRow]: ...
    def delete_cred_role(self, project: str, env: str, name: str) -> None:
        """Forget a role; NotFound if missing, Conflict while it has unrevoked leases."""
        ...


class DocumentStore(Protocol):
    """KV documents (schema 14): the version record of a folder read through Vault's KV
    v2 API (which secret versions each document version is made of) and its settings."""

    def get_document(
        self, project: str, env: str
    ) -> tuple[DocumentRow, list[DocumentVersionRow]] | None: ...
    def put_document(self, row: DocumentRow) -> None:
        """Create the record, or replace its settings and custom metadata."""
        ...

    def add_document_version(self, document: DocumentRow, version: DocumentVersionRow) -> None:
        """Append the version after the current one (Conflict if it is not)."""
        ...

    def update_document_versions(
        self, project: str, env: str, versions: Sequence[DocumentVersionRow]
    ) -> None: ...
    def prune_document_versions(self, project: str, env: str, below: int) -> None: ...
    def delete_document(self, project: str, env: str) -> None: ...
    def destroy_secret_versions(
        self, project: str, env: str, name: str, versions: Sequence[int]
    ) -> int:
        """Delete those versions' ciphertext (never a live secret's current or pending)."""
        ...

    def read_document_members(
        self, project: str, env: str, members: Sequence[tuple[str, int]]
    ) -> list[VersionRow]: ...
    def read_document_head(
        self, project: str, env: str, setting: str
    ) -> tuple[DocumentRow | None, DocumentVersionRow | None, str | None, list[VersionRow]]:
        """The record, its current version, setting ``setting`` and the live secrets'
        current versions, without an explicit transaction (the KV read hot path)."""
        ...


class LeaseStore(Protocol):
    """Leases on the users the roles made: their expiry and their revocation attempts.

    A lease is *live* until ``revoked_at`` is set; a live lease whose ``expires_at`` has
    passed (or that was asked to go) is *due* for revocation; a failed attempt pushes its
    ``next_attempt_at`` back, in the row, so that a restarted reaper continues the count.
    """

    def add_lease(self, row: LeaseRow, *, max_leases: int | None) -> None:
        """Insert a lease unless its role already has ``max_leases`` live ones (Conflict,
        decided under the role's lock, so two issuers cannot both take the last place)."""
        ...

    def get_lease(self, lease_id: str) -> LeaseRow | None: ...
    def list_leases(
        self,
        *,
        project: str | None = None,
        env: str | None = None,
        role: str | None = None,
        prefix: str | None = None,
        token_accessors: Sequence[str] | None = None,
        include_revoked: bool = False,
    ) -> list[LeaseRow]:
        """Leases, oldest first; filters that are None match all."""
        ...

    def set_lease_expiry(self, lease_id: str, expires_at: str) -> None:
        """A live lease's new expiry: later (renewed) or now (asked to go, for the reaper
        to retry); NotFound if not live."""
        ...

    def lease_revoked(self, lease_id: str, now: str, *, note: str = "") -> bool:
        """Mark a live lease revoked; False if it was not live (another revoker won)."""
        ...

    def lease_revoke_failed(self, lease_id: str, error: str, next_attempt_at: str) -> int:
        """Count a failed revocation; returns the attempts so far."""
        ...

    def due_leases(self, now: str, *, limit: int = 100) -> list[LeaseRow]:
        """Live leases expired by ``now`` whose next attempt (if any) is not after it."""
        ...

    def count_live_leases(self) -> dict[tuple[str, str, str], tuple[int, str | None]]:
        """(project, env, role) -> (live leases, the oldest one's issue time), for metrics."""
        ...


class Storage(
    Lifecycle,
    KeyStore,
    RewrapStore,
    SessionStore,
    ChangeStore,
    ScopeStore,
    SecretStore,
    AccountStore,
    AuditStore,
    SettingsStore,
    LockStore,
    RotationStore,
    CredRoleStore,
    LeaseStore,
    DocumentStore,
    Protocol,
):
    """What :class:`sealbox.vault.Vault` needs from a backend: every role."""
