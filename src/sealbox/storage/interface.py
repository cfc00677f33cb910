"""The Storage Protocol, and the rows that cross it.

Storage knows nothing of keys or plaintext: it keeps opaque ciphertext and wrapped keys
and enforces the version rules (immutable versions, monotonic numbers, compare-and-set)
inside its transactions. Every backend passes ``tests/unit/storage/test_contract.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, NamedTuple, Protocol

from sealbox.kms.local import KekRecord

if TYPE_CHECKING:
    from pathlib import Path

    from sealbox.changes import ChangeFeed

SCHEMA_VERSION = 7


class SealedRow(NamedTuple):
    """What a writer hands storage for one new version."""

    ciphertext: bytes
    wrapped_key: bytes
    kek_id: str


class VersionRow(NamedTuple):
    project: str
    env: str
    name: str
    version: int
    stage: str | None
    created_at: str
    created_by: str
    kek_id: str
    rollback_of: int | None
    ciphertext: bytes = b""
    wrapped_key: bytes = b""


class SecretRow(NamedTuple):
    project: str
    env: str
    name: str
    current_version: int
    created_at: str
    updated_at: str
    deleted_at: str | None
    meta_json: str


class SessionRow(NamedTuple):
    session_id: str
    wrapped_master: bytes
    created_at: str
    expires_at: str


class AuditRow(NamedTuple):
    """One stored audit event: queryable columns plus the chained record (``event``)."""

    at: str
    actor: str
    source: str
    operation: str
    path: str
    version: int | None
    outcome: str
    reason: str
    node: str = ""
    seq: int | None = None  # None: written before schema 3 (not chained)
    event: str = ""  # canonical JSON of the chained record, ``hash`` included
    prev: str = ""
    hash: str = ""
    link: str = ""
    id: int | None = None  # storage position, set when read back


class CheckpointRow(NamedTuple):
    """A signed statement that a node's chain had ``hash`` at ``seq``."""

    node: str
    seq: int
    hash: str
    at: str
    signature: str  # hex Ed25519 signature
    key_id: str  # fingerprint of the public key
    #: seq of the node's checkpoint before this one (0: the first); -1: a checkpoint from
    #: before schema 7, which did not sign it.
    prev_seq: int = -1


class HeadRow(NamedTuple):
    """A node's chain head, moved (and MACed: "signed") with every commit of its events."""

    node: str
    seq: int
    hash: str
    at: str = ""
    checkpoint_seq: int = 0  # the node's newest checkpoint its writer knew of
    signature: str = ""  # hex HMAC under the audit key; "" for a head from before schema 7
    #: The seq from which this head's line of signed heads goes back unbroken (each
    #: writer carries it over from a head it checked; a head it found missing or not
    #: signed starts a new line at its first event, which verify then reports).
    since: int = 0
    #: The server spool this chain is written through, as its last commit left it
    #: (``"FILE SALT SEQ SIZE"``: the file held records up to byte SIZE, the last seq SEQ);
    #: "" when none is open. Opaque here (audit/spool.py).
    spool: str = ""


class AuditQuery(NamedTuple):
    """Filters of an audit query; None means "any"."""

    paths: tuple[str, ...] | None = None
    identity: str | None = None
    since: str | None = None
    until: str | None = None
    operations: tuple[str, ...] | None = None
    outcomes: tuple[str, ...] | None = None
    source: str | None = None
    limit: int | None = 1000
    newest_first: bool = True


#: Called inside the audit transaction with the next sequence number of the node's chain
#: and the hash of the event before it; returns the row to insert.
BuildAudit = Callable[[int, str], AuditRow]

#: Called inside an audit transaction with ``(node, seq, hash)`` of a chain's new head,
#: the chain's seq before the transaction and the head row stored now (None if none);
#: returns the head row to store with the events (signed by the audit layer).
SignHead = Callable[[str, int, str, int, "HeadRow | None"], HeadRow]


class IdentityRow(NamedTuple):
    id: str
    name: str
    kind: str  # person | machine
    password_hash: str | None
    role_id: str | None
    policies: str  # JSON list of policy names
    created_at: str
    disabled: bool


class SecretIdRow(NamedTuple):
    accessor: str
    identity_id: str
    hash: str
    uses_left: int | None
    expires_at: str | None
    created_at: str


class TokenRow(NamedTuple):
    accessor: str
    hash: str
    identity_id: str
    policies: str  # JSON list of policy names
    auth_method: str
    created_at: str
    expires_at: str
    max_expires_at: str
    revoked_at: str | None
    display: str
    #: The accessor of the token that created this one (None: a root of the token tree).
    parent: str | None = None


#: Called inside the write transaction with the new version number; returns the sealed
#: value for exactly that version (the number is part of the associated data).
SealFor = Callable[[int], SealedRow]


class Storage(Protocol):
    """What :class:`sealbox.vault.Vault` needs from a backend."""

    description: str

    # lifecycle
    def initialise(
        self, vault_id: str, settings: dict[str, str], kek: KekRecord, now: str
    ) -> None: ...
    def is_initialised(self) -> bool: ...
    def migrate(self) -> int: ...
    def close(self) -> None: ...
    def check(self) -> list[str]: ...
    def change_feed(self) -> ChangeFeed:
        """How this process sends and hears change notices (see :mod:`sealbox.changes`)."""
        ...

    def serve(self) -> None:
        """A long-running server owns this storage: move housekeeping off the request path."""
        ...

    # vault settings (not secret: ids, KDF parameters)
    def get_setting(self, key: str) -> str | None: ...
    def settings(self) -> dict[str, str]: ...

    # keys and sessions
    def list_keks(self) -> list[KekRecord]: ...
    # (``audit``, as for the writes below: records the change's event in its transaction)
    def replace_master(
        self,
        keks: list[KekRecord],
        settings: dict[str, str],
        *,
        audit: Callable[[], None] | None = None,
        audit_node: str | None = None,
        audit_head: SignHead | None = None,
    ) -> None: ...
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

    # projects and environments
    def create_project(self, project: str, now: str) -> None: ...
    def list_projects(self) -> list[str]: ...
    def create_env(self, project: str, env: str, now: str) -> None: ...
    def list_envs(self, project: str) -> list[str]: ...

    # secrets and versions
    def write_version(
        self,
        project: str,
        env: str,
        name: str,
        seal_for: SealFor,
        *,
        now: str,
        actor: str,
        expected_version: int | None = None,
        rollback_of: int | None = None,
        audit_node: str | None = None,
        audit_head: SignHead | None = None,
    ) -> int: ...
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

    # identities, machine secret ids, tokens, policies
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
    ) -> None: ...
    def delete_identity(self, id: str, *, now: str) -> None: ...
    def add_secret_id(self, row: SecretIdRow) -> None: ...
    def consume_secret_id(self, identity_id: str, hash: str, now: str) -> bool: ...
    def put_token(self, row: TokenRow) -> None: ...
    def get_token(
        self, *, hash: str | None = None, accessor: str | None = None
    ) -> TokenRow | None: ...
    def list_tokens(self, identity_id: str | None = None) -> list[TokenRow]: ...
    def renew_token(self, accessor: str, expires_at: str) -> None: ...
    def revoke_tokens(
        self, *, accessor: str | None = None, identity_id: str | None = None, now: str
    ) -> int: ...
    def put_policy(self, name: str, document: str, now: str) -> None: ...
    def get_policies(self, names: list[str]) -> dict[str, str]: ...
    def list_policies(self) -> list[tuple[str, str]]: ...
    def delete_policy(self, name: str) -> None: ...

    # vault settings written once by whoever comes first (the lazily created audit key)
    def ensure_setting(self, key: str, value: str) -> str: ...

    # audit trail: one hash chain per node, its signed head row moved with each commit
    def append_audit_event(
        self, node: str, build: BuildAudit, head: SignHead | None = None
    ) -> AuditRow:
        """Append one event; with ``head``, the chain's head row moves in the same
        transaction (inside an audit batch the batch moves it once, at its end)."""
        ...

    def list_audit(self, limit: int = 100) -> list[AuditRow]: ...
    def query_audit(self, query: AuditQuery) -> list[AuditRow]: ...
    def audit_chain(self, node: str) -> list[AuditRow]: ...
    def audit_heads(self) -> dict[str, tuple[int, str]]: ...
    def audit_batch(
        self, node: str, *, wait: bool = True, head: SignHead | None = None
    ) -> AbstractContextManager[None]:
        """One transaction for many audit appends; with ``wait=False`` a chain or database
        lock held by another writer raises :class:`~sealbox.errors.StorageBusy` at once.
        With ``head``, the chain's head row moves once, before the commit."""
        ...

    def audit_head(self, node: str) -> tuple[int, str]: ...
    def store_audit_rows(
        self, rows: Sequence[AuditRow], *, wait: bool = True, head: SignHead | None = None
    ) -> None:
        """Insert chained events in one transaction; ``wait=False`` as for audit_batch;
        ``head`` moves in the same transaction."""
        ...

    def spool_dir(self) -> Path | None:
        """Where a server process may spool audit events (None: commit each event)."""
        ...

    def audit_head_marks(self) -> dict[str, HeadRow]: ...
    def audit_nodes(self) -> list[str]: ...
    def count_unchained_audit(self) -> int: ...
    def has_keyed_audit(self) -> bool: ...
    def add_audit_checkpoint(self, row: CheckpointRow, head: SignHead | None = None) -> None: ...
    def list_audit_checkpoints(self) -> list[CheckpointRow]: ...
    def mark_audit_head(self, node: str, head: SignHead) -> None:
        """Sign ``node``'s head again where the chain stands (no event: a spool opened,
        closed or recovered)."""
        ...

    def version_refs(self) -> list[tuple[str, int]]:
        """(``project/env/name``, version) of every stored version."""
        ...
