"""The schema of a vault's database, as migrations from one version to the next.

Shared by the SQLite and PostgreSQL backends (:mod:`sealbox.storage.sql` applies them);
a :class:`Dialect` supplies the few type names that differ. Append only: a vault at any
earlier version is brought up to :data:`~sealbox.storage.rows.SCHEMA_VERSION` by
running every later version's statements in order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple


class Dialect(NamedTuple):
    blob: str
    serial_pk: str
    placeholder: str


def schema_v1(d: Dialect) -> list[str]:
    """Schema version 1: settings, keys, sessions, scopes, secrets, versions, audit."""
    return [
        "CREATE TABLE sb_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        f"CREATE TABLE sb_keks (kek_id TEXT PRIMARY KEY, wrapped {d.blob} NOT NULL,"
        " created_at TEXT NOT NULL, active INTEGER NOT NULL)",
        f"CREATE TABLE sb_sessions (session_id TEXT PRIMARY KEY, wrapped_master {d.blob} NOT NULL,"
        " created_at TEXT NOT NULL, expires_at TEXT NOT NULL)",
        "CREATE TABLE sb_projects (name TEXT PRIMARY KEY, created_at TEXT NOT NULL)",
        "CREATE TABLE sb_environments (project TEXT NOT NULL REFERENCES sb_projects(name),"
        " name TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (project, name))",
        f"CREATE TABLE sb_secrets (id {d.serial_pk}, project TEXT NOT NULL, env TEXT NOT NULL,"
        " name TEXT NOT NULL, current_version INTEGER NOT NULL, created_at TEXT NOT NULL,"
        " updated_at TEXT NOT NULL, deleted_at TEXT, meta TEXT NOT NULL,"
        " UNIQUE (project, env, name),"
        " FOREIGN KEY (project, env) REFERENCES sb_environments(project, name))",
        "CREATE TABLE sb_versions (secret_id INTEGER NOT NULL REFERENCES sb_secrets(id)"
        " ON DELETE CASCADE, version INTEGER NOT NULL, stage TEXT, created_at TEXT NOT NULL,"
        " created_by TEXT NOT NULL, kek_id TEXT NOT NULL, rollback_of INTEGER,"
        f" ciphertext {d.blob} NOT NULL, wrapped_key {d.blob} NOT NULL,"
        " PRIMARY KEY (secret_id, version))",
        "CREATE INDEX sb_versions_kek ON sb_versions (kek_id)",
        f"CREATE TABLE sb_audit (id {d.serial_pk}, at TEXT NOT NULL, actor TEXT NOT NULL,"
        " source TEXT NOT NULL, operation TEXT NOT NULL, path TEXT NOT NULL, version INTEGER,"
        " outcome TEXT NOT NULL, reason TEXT NOT NULL)",
    ]


def schema_v2(d: Dialect) -> list[str]:
    """Schema version 2: identities, machine secret ids, tokens, policies."""
    return [
        "CREATE TABLE sb_identities (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
        " kind TEXT NOT NULL, password_hash TEXT, role_id TEXT UNIQUE, policies TEXT NOT NULL,"
        " created_at TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0)",
        "CREATE TABLE sb_secret_ids (accessor TEXT PRIMARY KEY, identity_id TEXT NOT NULL"
        " REFERENCES sb_identities(id) ON DELETE CASCADE, hash TEXT NOT NULL UNIQUE,"
        " uses_left INTEGER, expires_at TEXT, created_at TEXT NOT NULL)",
        "CREATE TABLE sb_tokens (accessor TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE,"
        " identity_id TEXT NOT NULL REFERENCES sb_identities(id) ON DELETE CASCADE,"
        " policies TEXT NOT NULL, auth_method TEXT NOT NULL, created_at TEXT NOT NULL,"
        " expires_at TEXT NOT NULL, max_expires_at TEXT NOT NULL, revoked_at TEXT,"
        " display TEXT NOT NULL)",
        "CREATE INDEX sb_tokens_identity ON sb_tokens (identity_id)",
        "CREATE TABLE sb_policies (name TEXT PRIMARY KEY, document TEXT NOT NULL,"
        " updated_at TEXT NOT NULL)",
    ]


def schema_v3(d: Dialect) -> list[str]:
    """Schema version 3: the audit hash chain (issue 4), its heads and signed checkpoints.

    Events written before version 3 keep ``seq`` NULL: they predate the chain.
    """
    return [
        "ALTER TABLE sb_audit ADD COLUMN node TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE sb_audit ADD COLUMN seq INTEGER",
        "ALTER TABLE sb_audit ADD COLUMN event TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE sb_audit ADD COLUMN prev TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE sb_audit ADD COLUMN hash TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE sb_audit ADD COLUMN link TEXT NOT NULL DEFAULT ''",
        "CREATE INDEX sb_audit_node ON sb_audit (node, id)",
        "CREATE INDEX sb_audit_path ON sb_audit (path, id)",
        "CREATE TABLE sb_audit_heads (node TEXT PRIMARY KEY, seq INTEGER NOT NULL,"
        " hash TEXT NOT NULL)",
        f"CREATE TABLE sb_audit_checkpoints (id {d.serial_pk}, node TEXT NOT NULL,"
        " seq INTEGER NOT NULL, hash TEXT NOT NULL, at TEXT NOT NULL, signature TEXT NOT NULL,"
        " key_id TEXT NOT NULL)",
    ]


def schema_v4(d: Dialect) -> list[str]:
    """Schema version 4: an audit chain cannot fork (one event per node and position)."""
    # The unique index serves the per-node chain queries too, so the v3 (node, id) index
    # goes: every index is paid for on every audited read.
    return [
        "CREATE UNIQUE INDEX sb_audit_node_seq ON sb_audit (node, seq)",
        "DROP INDEX sb_audit_node",
    ]


def schema_v5(d: Dialect) -> list[str]:
    """Schema version 5: change notices for processes that poll (SQLite; see changes.py)."""
    return [
        f"CREATE TABLE sb_changes (id {d.serial_pk}, at TEXT NOT NULL, payload TEXT NOT NULL)",
    ]


def schema_v6(d: Dialect) -> list[str]:
    """Schema version 6: the token tree (issue 10). ``parent`` is the accessor of the token
    that created this one; NULL for a login token, an orphan, or one made before version 6."""
    return [
        "ALTER TABLE sb_tokens ADD COLUMN parent TEXT",
        "CREATE INDEX sb_tokens_parent ON sb_tokens (parent)",
    ]


def schema_v7(d: Dialect) -> list[str]:
    """Schema version 7: truncation evidence for the audit trail (issue 10).

    A chain's head row moves with every commit of its events and is signed, with the
    state of the server spool the chain is written through; checkpoints name their
    predecessor. Heads and checkpoints from before keep an empty signature /
    ``prev_seq`` -1 (``sealbox audit checkpoint`` signs heads).
    """
    return [
        "ALTER TABLE sb_audit_heads ADD COLUMN at TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE sb_audit_heads ADD COLUMN checkpoint_seq INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE sb_audit_heads ADD COLUMN signature TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE sb_audit_heads ADD COLUMN since INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE sb_audit_heads ADD COLUMN spool TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE sb_audit_checkpoints ADD COLUMN prev_seq INTEGER NOT NULL DEFAULT -1",
    ]


def schema_v8(d: Dialect) -> list[str]:
    """Schema version 8: the last version number a secret took (issue 11).

    The core decides stages (sealbox/stages.py), and a version it writes need not become
    current (a pending one, being rotated in): the next number is counted on the secret's
    row, which the write holds locked, not taken from the current version.
    """
    return [
        "ALTER TABLE sb_secrets ADD COLUMN last_version INTEGER NOT NULL DEFAULT 0",
        "UPDATE sb_secrets SET last_version = current_version",
    ]


def schema_v9(d: Dialect) -> list[str]:
    """Schema version 9: rotations (issue 12).

    ``sb_rotation_configs`` holds how a secret is rotated (not secret: the method, its
    options, the grace window of its previous version, the time window and start offset
    of scheduled rotations, a URL told of each outcome). ``sb_rotations`` is the record of
    each rotation, step by step, with the node that runs it and until when (a crashed
    node's rotation is taken over when that lease ends). A secret has at most one
    unfinished rotation (the partial unique index). A version written by a rotation names
    it, so a retried create finds its version and never writes a second one; each
    version's ``staged_at`` is when it took its stage (the grace window counts from it).
    """
    return [
        "CREATE TABLE sb_rotation_configs (project TEXT NOT NULL, env TEXT NOT NULL,"
        " name TEXT NOT NULL, method TEXT NOT NULL, options TEXT NOT NULL,"
        " grace_seconds INTEGER NOT NULL, time_window TEXT NOT NULL,"
        " start_offset INTEGER NOT NULL, notify_url TEXT NOT NULL,"
        " updated_at TEXT NOT NULL, updated_by TEXT NOT NULL, PRIMARY KEY (project, env, name))",
        "CREATE TABLE sb_rotations (id TEXT PRIMARY KEY, project TEXT NOT NULL,"
        " env TEXT NOT NULL, name TEXT NOT NULL, method TEXT NOT NULL, state TEXT NOT NULL,"
        " step TEXT NOT NULL, phase TEXT NOT NULL, dry_run INTEGER NOT NULL,"
        " from_version INTEGER, pending_version INTEGER, started_at TEXT NOT NULL,"
        " updated_at TEXT NOT NULL, finished_at TEXT, error TEXT NOT NULL,"
        " rotator_state TEXT NOT NULL, notes TEXT NOT NULL, actor TEXT NOT NULL,"
        " owner TEXT NOT NULL, lease_until TEXT NOT NULL, tested TEXT NOT NULL)",
        "CREATE UNIQUE INDEX sb_rotations_one_open ON sb_rotations (project, env, name)"
        " WHERE finished_at IS NULL",
        "CREATE INDEX sb_rotations_secret ON sb_rotations (project, env, name, started_at)",
        "ALTER TABLE sb_versions ADD COLUMN rotation_id TEXT",
        "ALTER TABLE sb_versions ADD COLUMN staged_at TEXT",
        "CREATE UNIQUE INDEX sb_versions_rotation ON sb_versions (rotation_id)"
        " WHERE rotation_id IS NOT NULL",
        # A version from before took its stage when it was written, and a previous one
        # when the current one was (the best the old rows tell).
        "UPDATE sb_versions SET staged_at = created_at",
        "UPDATE sb_versions SET staged_at = COALESCE((SELECT c.created_at FROM sb_versions c"
        " JOIN sb_secrets s ON s.id = c.secret_id WHERE c.secret_id = sb_versions.secret_id"
        " AND c.version = s.current_version), created_at) WHERE stage = 'previous'",
    ]


def schema_v10(d: Dialect) -> list[str]:
    """Schema version 10: dynamic database credentials under leases (issue 12).

    A role says how to make and drop a user on an upstream database (its admin login is
    another secret, named by path); a lease is one such user, made for one caller, with
    its expiry and, once it is due, its revocation attempts (kept here so that retries
    survive restarts).
    """
    return [
        "CREATE TABLE sb_cred_roles (project TEXT NOT NULL, env TEXT NOT NULL,"
        " name TEXT NOT NULL, backend TEXT NOT NULL, admin_path TEXT NOT NULL,"
        " creation TEXT NOT NULL, revocation TEXT NOT NULL, renewal TEXT NOT NULL,"
        " username_template TEXT NOT NULL, default_ttl INTEGER NOT NULL,"
        " max_ttl INTEGER NOT NULL, max_leases INTEGER, created_at TEXT NOT NULL,"
        " updated_at TEXT NOT NULL, created_by TEXT NOT NULL,"
        " PRIMARY KEY (project, env, name),"
        " FOREIGN KEY (project, env) REFERENCES sb_environments(project, name))",
        "CREATE TABLE sb_leases (id TEXT PRIMARY KEY, project TEXT NOT NULL,"
        " env TEXT NOT NULL, role TEXT NOT NULL, username TEXT NOT NULL,"
        " identity_id TEXT NOT NULL, identity TEXT NOT NULL, token_accessor TEXT,"
        " issued_at TEXT NOT NULL, expires_at TEXT NOT NULL, max_expires_at TEXT NOT NULL,"
        " revoked_at TEXT, revoke_attempts INTEGER NOT NULL DEFAULT 0,"
        " next_attempt_at TEXT, last_error TEXT NOT NULL DEFAULT '')",
        "CREATE INDEX sb_leases_role ON sb_leases (project, env, role, revoked_at)",
        "CREATE INDEX sb_leases_expiry ON sb_leases (revoked_at, expires_at)",
        "CREATE INDEX sb_leases_token ON sb_leases (token_accessor)",
    ]


def schema_v11(d: Dialect) -> list[str]:
    """Schema version 11: scheduler locks (issue 12). A job (rotating what is due, reaping
    expired leases) runs on one node at a time: the node that holds its row until
    ``until``; another node takes the row over only after it expired (its holder died)."""
    return [
        "CREATE TABLE sb_locks (name TEXT PRIMARY KEY, owner TEXT NOT NULL,"
        " acquired_at TEXT NOT NULL, until TEXT NOT NULL)",
    ]


def schema_v12(d: Dialect) -> list[str]:
    """Schema version 12: several key providers (issue 13). Each KEK is wrapped once per
    provider in ``sb_kek_wrappings`` (any one opens it); the vault's existing local
    provider becomes the row ``local``, its unlock method and KDF parameters (settings
    until now) its config, its KEK wrappings (``sb_keks.wrapped``, left empty for new
    KEKs) its wrappings. A session names the local provider whose master key it holds."""
    return [
        "CREATE TABLE sb_key_providers (name TEXT PRIMARY KEY, kind TEXT NOT NULL,"
        " config TEXT NOT NULL, position INTEGER NOT NULL, created_at TEXT NOT NULL)",
        "CREATE TABLE sb_kek_wrappings (kek_id TEXT NOT NULL, provider TEXT NOT NULL,"
        f" wrapped {d.blob} NOT NULL, key_ref TEXT NOT NULL, created_at TEXT NOT NULL,"
        " PRIMARY KEY (kek_id, provider))",
        "INSERT INTO sb_key_providers (name, kind, config, position, created_at)"
        " SELECT 'local', 'local', '{\"method\": \"' || COALESCE((SELECT value FROM sb_settings"
        " WHERE key = 'unlock_method'), 'passphrase') || '\", \"kdf\": ' || COALESCE((SELECT"
        " value FROM sb_settings WHERE key = 'kdf'), 'null') || '}', 0, COALESCE(MIN(created_at),"
        " '') FROM sb_keks HAVING COUNT(*) > 0",
        "INSERT INTO sb_kek_wrappings (kek_id, provider, wrapped, key_ref, created_at)"
        " SELECT kek_id, 'local', wrapped, '', created_at FROM sb_keks",
        "DELETE FROM sb_settings WHERE key IN ('unlock_method', 'kdf', 'key_provider')",
        "ALTER TABLE sb_sessions ADD COLUMN provider TEXT NOT NULL DEFAULT 'local'",
    ]


def schema_v13(d: Dialect) -> list[str]:
    """Schema version 13: an identity's login settings (issue 15: AppRole's and userpass's
    token_ttl, token_max_ttl, secret_id_num_uses, secret_id_ttl), a JSON object."""
    return ["ALTER TABLE sb_identities ADD COLUMN settings TEXT NOT NULL DEFAULT '{}'"]


def schema_v14(d: Dialect) -> list[str]:
    """Schema version 14: KV documents (issue 15). A folder's secrets read through Vault's
    KV v2 API as one document; its versions are recorded here, each with the secret
    versions it is made of (``members``: JSON ``{name: [version, kind, the version's created_at]}``)
    and its per-document settings (``settings``: JSON; ``custom``: the free-form
    ``custom_metadata``)."""
    return [
        "CREATE TABLE sb_documents (project TEXT NOT NULL, env TEXT NOT NULL,"
        " current_version INTEGER NOT NULL, oldest_version INTEGER NOT NULL,"
        " settings TEXT NOT NULL, custom TEXT NOT NULL, created_at TEXT NOT NULL,"
        " updated_at TEXT NOT NULL, PRIMARY KEY (project, env))",
        "CREATE TABLE sb_document_versions (project TEXT NOT NULL, env TEXT NOT NULL,"
        " version INTEGER NOT NULL, created_at TEXT NOT NULL, deleted_at TEXT,"
        " destroyed INTEGER NOT NULL DEFAULT 0, members TEXT NOT NULL,"
        " PRIMARY KEY (project, env, version))",
    ]


#: schema version -> statements that bring the previous version up to it. Append only.
MIGRATIONS: dict[int, Callable[[Dialect], list[str]]] = {
    1: schema_v1,
    2: schema_v2,
    3: schema_v3,
    4: schema_v4,
    5: schema_v5,
    6: schema_v6,
    7: schema_v7,
    8: schema_v8,
    9: schema_v9,
    10: schema_v10,
    11: schema_v11,
    12: schema_v12,
    13: schema_v13,
    14: schema_v14,
}
