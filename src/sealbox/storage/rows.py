"""The rows that cross the Storage protocol (:mod:`sealbox.storage.interface`).

A leaf: plain values, importing only :mod:`sealbox.model` (whose ``CheckpointRow`` the SDK
returns too, so it is defined there and re-exported here), so that storage, the key provider
(:mod:`sealbox.kms`) and the audit layer (:mod:`sealbox.audit`) can all name them without
an import cycle between those packages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

# NOTE: re-exported: the SDK returns checkpoints too, so the row is a model value.
from sealbox.model import CheckpointRow as CheckpointRow  # noqa: PLC0414

#: The schema these rows are stored in (storage/sql.py migrates up to it).
SCHEMA_VERSION = 14
#: The hash before a chain's first event: the head of an empty audit chain.
GENESIS = "0" * 64


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
    #: When the version took its stage (the grace window of a previous one counts from it).
    staged_at: str | None = None
    #: The rotation that wrote it (None: an ordinary write).
    rotation_id: str | None = None


class SecretRow(NamedTuple):
    project: str
    env: str
    name: str
    current_version: int
    created_at: str
    updated_at: str
    deleted_at: str | None
    meta_json: str


class KekRecord(NamedTuple):
    """A key-encryption key's record: its id and whether new data keys are wrapped by it.
    The key itself is stored only wrapped, once per key provider (:class:`KekWrapping`)."""

    kek_id: str
    created_at: str
    active: bool


class KekWrapping(NamedTuple):
    """One KEK wrapped by one key provider (schema 12): any one of a KEK's wrappings opens it."""

    kek_id: str
    provider: str
    wrapped: bytes
    #: The provider's key that wrapped it (a token label, a transit key, a KMS key ARN).
    key_ref: str
    created_at: str


class KeyProviderRow(NamedTuple):
    """A key provider the vault's KEKs are wrapped under (schema 12)."""

    name: str
    kind: str
    #: JSON object, not secret (a library path, a key label, a KMS key id, KDF parameters).
    config: str
    #: The order providers are tried in when the vault is opened (lowest first).
    position: int
    created_at: str


class RewrapRow(NamedTuple):
    """A version's wrapped data key with what its associated data is made of."""

    secret_id: int
    project: str
    env: str
    name: str
    version: int
    kek_id: str
    wrapped_key: bytes


class SessionRow(NamedTuple):
    session_id: str
    wrapped_master: bytes
    created_at: str
    expires_at: str
    #: The local key provider whose master key the session holds (schema 12).
    provider: str = "local"


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
    #: JSON object of login settings (token_ttl, token_max_ttl, secret_id_num_uses,
    #: secret_id_ttl: seconds or counts; absent = sealbox's defaults).
    settings: str = "{}"


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


class StagePlan(NamedTuple):
    """What one version write does to a secret's stages, as the core decided it
    (:mod:`sealbox.stages`); storage persists it inside the write's transaction.

    ``moves`` are applied at once (not one after the other): each ``(before, after)``
    gives every existing version at stage ``before`` the stage ``after``; a version at a
    stage no move names keeps it.
    """

    #: The new version's stage.
    stage: str
    moves: tuple[tuple[str, str], ...]
    #: The new version becomes the secret's current one (what a read without a version
    #: gets); otherwise the current version stays where it is.
    current: bool
    #: A soft-deleted secret is undeleted by the write.
    revive: bool


class LockRow(NamedTuple):
    """A scheduler lock: ``owner`` holds job ``name`` until ``until`` (ISO 8601, UTC)."""

    name: str
    owner: str
    acquired_at: str
    until: str


class RestagePlan(NamedTuple):
    """What a rotation does to the stages of existing versions (:mod:`sealbox.stages`):
    version ``version``, which must be at stage ``expect`` (None: any), takes stage
    ``stage`` (None: no stage); every other version at a stage named by ``moves`` is moved
    as for :class:`StagePlan`; with ``current``, ``version`` becomes the current one."""

    version: int
    expect: str | None
    stage: str | None
    moves: tuple[tuple[str, str], ...]
    current: bool


class RotationConfigRow(NamedTuple):
    """How one secret is rotated (not secret)."""

    project: str
    env: str
    name: str
    method: str
    options: str  # JSON object of str -> str
    grace_seconds: int
    time_window: str  # "HH:MM-HH:MM" (UTC) or ""
    start_offset: int  # seconds after the window opens
    notify_url: str  # "" for none
    updated_at: str
    updated_by: str


class RotationRow(NamedTuple):
    """One rotation as recorded, step by step."""

    id: str
    project: str
    env: str
    name: str
    method: str
    state: str
    step: str
    phase: str  # started | done
    dry_run: bool
    from_version: int | None
    pending_version: int | None
    started_at: str
    updated_at: str
    finished_at: str | None
    error: str
    rotator_state: str  # JSON object of str -> str
    notes: str  # JSON list of str
    actor: str
    owner: str
    lease_until: str
    #: What the test step found: "" (not run yet), "passed" or "failed".
    tested: str = ""


class CredRoleRow(NamedTuple):
    """A dynamic-credentials role (schema 10): how to make and drop a database user.

    Not secret: the admin login is named by the path of the secret holding its URL, and
    the statements hold ``{{password}}``, never a password.
    """

    project: str
    env: str
    name: str
    backend: str  # postgres | mysql
    admin_path: str  # project/env/NAME of the admin URL secret
    creation: str
    revocation: str  # "" : the backend's default (drop the user, ending its sessions)
    renewal: str  # "" : the backend's default (PostgreSQL: VALID UNTIL moves)
    username_template: str
    default_ttl: int  # seconds
    max_ttl: int  # seconds
    max_leases: int | None  # None: no quota
    created_at: str
    updated_at: str
    created_by: str


class LeaseRow(NamedTuple):
    """A lease on a database user made for one caller (schema 10).

    ``revoked_at`` is set once the user is gone upstream (or the lease was forgotten with
    force); until then a failed revocation counts ``revoke_attempts`` and waits for
    ``next_attempt_at``, so retries survive restarts.
    """

    id: str
    project: str
    env: str
    role: str
    username: str
    identity_id: str
    identity: str
    token_accessor: str | None
    issued_at: str
    expires_at: str
    max_expires_at: str
    revoked_at: str | None = None
    revoke_attempts: int = 0
    next_attempt_at: str | None = None
    last_error: str = ""


class DocumentRow(NamedTuple):
    """A KV document's record (schema 14): a folder as Vault's KV v2 sees it."""

    project: str
    env: str
    current_version: int  # 0: settings written before any data (Vault allows it)
    oldest_version: int
    settings: str  # JSON object: max_versions, cas_required, delete_version_after
    custom: str  # JSON object of str -> str: custom_metadata
    created_at: str
    updated_at: str


class DocumentVersionRow(NamedTuple):
    """One version of a KV document: which secret versions it is made of."""

    version: int
    created_at: str
    deleted_at: str | None
    destroyed: bool
    members: str  # JSON object: name -> [secret version, "text"|"json", its created_at]
