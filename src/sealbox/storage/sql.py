"""The SQL shared by the SQLite and PostgreSQL backends.

Statements are written with ``?`` placeholders; a backend's
:class:`~sealbox.storage.schema.Dialect` rewrites them (the schema is in
:mod:`sealbox.storage.schema`). Version rules live here once:
a new version number is taken under a row lock inside the write transaction, so two
writers never lose a write and compare-and-set (``expected_version``) is exact.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from sealbox.errors import AlreadyExists, Conflict, NotFound, NotInitialised
from sealbox.storage.rows import (
    GENESIS,
    SCHEMA_VERSION,
    AuditQuery,
    AuditRow,
    BuildAudit,
    CheckpointRow,
    HeadRow,
    IdentityRow,
    KekRecord,
    KekWrapping,
    KeyProviderRow,
    LockRow,
    RestagePlan,
    RotationConfigRow,
    RotationRow,
    SealFor,
    SecretIdRow,
    SecretRow,
    SignHead,
    StagePlan,
    TokenRow,
    VersionRow,
)
from sealbox.storage.schema import MIGRATIONS, Dialect
from sealbox.storage.sql_documents import DocumentSql
from sealbox.storage.sql_keys import KeySql
from sealbox.storage.sql_leases import LeaseSql

if TYPE_CHECKING:
    from pathlib import Path


#: A subquery: every token in the subtrees rooted at the tokens ``{roots}`` selects, on
#: SQLite and PostgreSQL alike. NOTE: inside the UPDATE, not before it: Python's sqlite3
#: reports no rowcount for a statement that starts with WITH.
_TOKEN_TREE = (
    "(WITH RECURSIVE tree(accessor) AS (SELECT accessor FROM sb_tokens WHERE {roots}"
    " UNION SELECT t.accessor FROM sb_tokens t JOIN tree ON t.parent = tree.accessor)"
    " SELECT accessor FROM tree)"
)

_VERSION_COLS = (
    "s.project, s.env, s.name, v.version, v.stage, v.created_at, v.created_by, v.kek_id,"
    " v.rollback_of, v.staged_at, v.rotation_id"
)


#: How often an event appended under the chain lock is rebuilt on a head that a process
#: appending without the lock moved, before the append gives up (Conflict); with the
#: backoff below, about 2.5 s of contention.
APPEND_TRIES = 50
#: Longest pause between two tries (seconds): doubles from 1 ms, jittered.
APPEND_BACKOFF_MAX = 0.05


def _back_off(attempt: int) -> None:
    """Pause before try ``attempt + 2``: the first retry is immediate (the usual case is
    one event of another process, already committed); later ones wait longer, jittered so
    that processes retrying together do not collide again in lockstep."""
    if attempt == 0:
        return
    import random
    import time

    # Jitter only: nothing depends on this number being unpredictable.
    time.sleep(random.uniform(0, min(APPEND_BACKOFF_MAX, 0.001 * 2**attempt)))  # noqa: S311


class Tx(Protocol):
    """A cursor-like handle inside one transaction."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...
    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> Any: ...


class SqlStorage(KeySql, LeaseSql, DocumentSql):
    """Backend-independent storage logic; subclasses supply connections and locking."""

    dialect: Dialect
    description: str

    # -- supplied by the backend --------------------------------------------------------------
    def _tx(self, *, write: bool) -> AbstractContextManager[Tx]:
        raise NotImplementedError

    def serve(self) -> None:
        """Nothing to move off the request path by default."""

    def _single(self, *, audit: bool = False) -> AbstractContextManager[Tx]:
        """For ONE statement: no explicit BEGIN/COMMIT (a single statement is atomic).

        The read and audit hot paths are one statement each; explicit transactions
        around them cost four extra round trips per read.
        """
        return self._audit_tx() if audit else self._tx(write=False)

    def _lock_clause(self) -> str:
        """Row-lock suffix for SELECTs in write transactions ('' where the DB lock suffices)."""
        return ""

    def _table_exists(self, tx: Tx, table: str) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # -- helpers ------------------------------------------------------------------------------
    def _q(self, sql: str) -> str:
        return (
            sql if self.dialect.placeholder == "?" else sql.replace("?", self.dialect.placeholder)
        )

    def _exec(self, tx: Tx, sql: str, params: Sequence[Any] = ()) -> Any:
        return tx.execute(self._q(sql), params)

    def _one(self, tx: Tx, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._exec(tx, sql, params).fetchone()

    def _all(self, tx: Tx, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(self._exec(tx, sql, params).fetchall())

    # -- lifecycle ----------------------------------------------------------------------------
    def is_initialised(self) -> bool:
        with self._tx(write=False) as tx:
            if not self._table_exists(tx, "sb_settings"):
                return False
            return self._one(tx, "SELECT value FROM sb_settings WHERE key = 'vault_id'") is not None

    def initialise(
        self,
        vault_id: str,
        settings: dict[str, str],
        kek: KekRecord,
        now: str,
        *,
        provider: KeyProviderRow,
        wrapping: KekWrapping,
    ) -> None:
        with self._tx(write=True) as tx:
            if self._table_exists(tx, "sb_settings"):
                raise AlreadyExists(f"a vault already exists in {self.description}")
            for version in sorted(MIGRATIONS):
                for stmt in MIGRATIONS[version](self.dialect):
                    self._exec(tx, stmt)
            all_settings = {**settings, "vault_id": vault_id, "schema_version": str(SCHEMA_VERSION)}
            for key, value in all_settings.items():
                self._exec(tx, "INSERT INTO sb_settings (key, value) VALUES (?, ?)", (key, value))
            self._insert_kek(tx, kek)
            self._insert_provider(tx, provider)
            self._insert_wrappings(tx, [wrapping])

    #: Set once this connection has seen an up-to-date schema; the check then costs nothing
    #: (it was two queries in every transaction, a fifth of a server read).
    _schema_ok = False

    def _require_schema(self, tx: Tx) -> None:
        if self._schema_ok:
            return
        if not self._table_exists(tx, "sb_settings"):
            raise NotInitialised(
                f"no vault in {self.description}",
                hint="initialise a vault there first",
                hint_key="init_vault",
            )
        row = self._one(tx, "SELECT value FROM sb_settings WHERE key = 'schema_version'")
        found = int(row[0]) if row else 0
        if found < SCHEMA_VERSION:
            raise NotInitialised(
                f"the vault's schema version {found} is older than this sealbox's"
                f" ({SCHEMA_VERSION}) and was not migrated",
                hint="any sealbox command opening it through the factory migrates it",
            )
        if found > SCHEMA_VERSION:
            raise NotInitialised(
                f"the vault's schema version {found} is newer than this sealbox understands "
                f"({SCHEMA_VERSION})",
                hint="upgrade sealbox",
            )
        self._schema_ok = True

    def migrate(self) -> int:
        """Bring an existing vault's schema up to date; returns the versions applied."""
        with self._tx(write=False) as tx:
            if not self._table_exists(tx, "sb_settings"):
                return 0
            row = self._one(tx, "SELECT value FROM sb_settings WHERE key = 'schema_version'")
            if row is not None and int(row[0]) >= SCHEMA_VERSION:
                return 0  # the common case, without taking the write lock
        with self._tx(write=True) as tx:
            if not self._table_exists(tx, "sb_settings"):
                return 0
            row = self._one(tx, "SELECT value FROM sb_settings WHERE key = 'schema_version'")
            found = int(row[0]) if row else 0
            if found >= SCHEMA_VERSION:
                return 0
            for version in sorted(v for v in MIGRATIONS if found < v <= SCHEMA_VERSION):
                for stmt in MIGRATIONS[version](self.dialect):
                    self._exec(tx, stmt)
            self._exec(
                tx,
                "UPDATE sb_settings SET value = ? WHERE key = 'schema_version'",
                (str(SCHEMA_VERSION),),
            )
            return SCHEMA_VERSION - found

    def check(self) -> list[str]:
        """Structural problems (not cryptographic ones: Vault checks those)."""
        problems: list[str] = []
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            orphans = self._one(
                tx,
                "SELECT COUNT(*) FROM sb_secrets s WHERE s.current_version > 0 AND NOT EXISTS"
                " (SELECT 1 FROM sb_versions v WHERE v.secret_id = s.id"
                " AND v.version = s.current_version)",
            )
            if orphans and orphans[0]:
                problems.append(f"{orphans[0]} secret(s) point at a missing current version")
        return problems

    # -- settings, keys, sessions -------------------------------------------------------------
    def get_setting(self, key: str) -> str | None:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            row = self._one(tx, "SELECT value FROM sb_settings WHERE key = ?", (key,))
            return str(row[0]) if row else None

    def settings(self) -> dict[str, str]:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            return {k: v for k, v in self._all(tx, "SELECT key, value FROM sb_settings")}

    # -- projects and environments ------------------------------------------------------------
    def create_project(self, project: str, now: str) -> None:
        with self._tx(write=True) as tx:
            self._require_schema(tx)
            if self._one(tx, "SELECT 1 FROM sb_projects WHERE name = ?", (project,)):
                raise AlreadyExists(f"project {project!r} already exists")
            self._exec(
                tx, "INSERT INTO sb_projects (name, created_at) VALUES (?, ?)", (project, now)
            )

    def list_projects(self) -> list[str]:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            return [r[0] for r in self._all(tx, "SELECT name FROM sb_projects ORDER BY name")]

    def create_env(self, project: str, env: str, now: str) -> None:
        with self._tx(write=True) as tx:
            self._require_schema(tx)
            if not self._one(tx, "SELECT 1 FROM sb_projects WHERE name = ?", (project,)):
                raise NotFound(f"project {project!r} does not exist")
            if self._one(
                tx, "SELECT 1 FROM sb_environments WHERE project = ? AND name = ?", (project, env)
            ):
                raise AlreadyExists(f"environment {project}/{env} already exists")
            self._exec(
                tx,
                "INSERT INTO sb_environments (project, name, created_at) VALUES (?, ?, ?)",
                (project, env, now),
            )

    def list_envs(self, project: str) -> list[str]:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            if not self._one(tx, "SELECT 1 FROM sb_projects WHERE name = ?", (project,)):
                raise NotFound(f"project {project!r} does not exist")
            return [
                r[0]
                for r in self._all(
                    tx,
                    "SELECT name FROM sb_environments WHERE project = ? ORDER BY name",
                    (project,),
                )
            ]

    def _require_env(self, tx: Tx, project: str, env: str) -> None:
        if not self._one(
            tx, "SELECT 1 FROM sb_environments WHERE project = ? AND name = ?", (project, env)
        ):
            if not self._one(tx, "SELECT 1 FROM sb_projects WHERE name = ?", (project,)):
                raise NotFound(
                    f"project {project!r} does not exist",
                    hint="create the project first",
                    hint_key="create_project",
                    hint_args={"project": project},
                )
            raise NotFound(
                f"environment {project}/{env} does not exist",
                hint="create the environment first",
                hint_key="create_env",
                hint_args={"project": project, "env": env},
            )

    # -- secrets and versions -----------------------------------------------------------------
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
        """Write the next version, its stage and the existing versions' stages as
        ``plan`` says. With ``audit_node``, audit events appended while ``seal_for`` runs
        go into this same transaction: the version and the event that records it are
        committed together or not at all (fail closed for writes); so does the chain's
        head row, with ``audit_head``."""
        with self._audited_tx(audit_node, audit_head) as tx:
            self._require_schema(tx)
            self._require_env(tx, project, env)
            secret_id, current, last = self._lock_secret(tx, project, env, name, now)
            if rotation_id is not None:
                # NOTE: under the secret's row lock: a retried create of one rotation
                # finds the version it wrote and writes no second one.
                found = self._one(
                    tx,
                    "SELECT version FROM sb_versions WHERE secret_id = ? AND rotation_id = ?",
                    (secret_id, rotation_id),
                )
                if found is not None:
                    return int(found[0])
            if expected_version is not None and expected_version != current:
                raise Conflict(
                    f"{project}/{env}/{name} is at version {current}, not {expected_version}",
                    hint="read the secret again and retry with the current version",
                )
            # NOTE: numbered after the last version written, not the current one: a
            # version written not current (pending) keeps its number.
            version = last + 1
            sealed = seal_for(version)
            self._persist_plan(tx, secret_id, version, plan, now)
            self._exec(
                tx,
                "INSERT INTO sb_versions (secret_id, version, stage, created_at, created_by,"
                " kek_id, rollback_of, ciphertext, wrapped_key, staged_at, rotation_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    secret_id,
                    version,
                    plan.stage,
                    now,
                    actor,
                    sealed.kek_id,
                    rollback_of,
                    sealed.ciphertext,
                    sealed.wrapped_key,
                    now,
                    rotation_id,
                ),
            )
            return version

    def _lock_secret(
        self, tx: Tx, project: str, env: str, name: str, now: str
    ) -> tuple[int, int, int]:
        """(id, current version, last version) of the secret, created if new, locked
        until the transaction ends."""
        # Create the row first (a no-op when it exists) and then lock it, so two
        # writers of a brand-new secret serialise on it instead of racing.
        self._exec(
            tx,
            "INSERT INTO sb_secrets (project, env, name, current_version, last_version,"
            " created_at, updated_at, deleted_at, meta) VALUES (?, ?, ?, 0, 0, ?, ?, NULL, '{}')"
            " ON CONFLICT (project, env, name) DO NOTHING",
            (project, env, name, now, now),
        )
        row = self._one(
            tx,
            "SELECT id, current_version, last_version FROM sb_secrets"
            " WHERE project = ? AND env = ? AND name = ?" + self._lock_clause(),
            (project, env, name),
        )
        return int(row[0]), int(row[1]), int(row[2])

    def _persist_plan(
        self, tx: Tx, secret_id: int, version: int, plan: StagePlan, now: str
    ) -> None:
        """The existing versions' stages and the secret row, as ``plan`` says (the new
        version's row is the caller's): two statements at most."""
        self._move_stages(tx, secret_id, plan.moves, now)
        sets = "last_version = ?, updated_at = ?"
        params: list[Any] = [version, now]
        if plan.current:
            sets += ", current_version = ?"
            params.append(version)
        if plan.revive:
            sets += ", deleted_at = NULL"
        self._exec(tx, f"UPDATE sb_secrets SET {sets} WHERE id = ?", (*params, secret_id))

    def _move_stages(
        self,
        tx: Tx,
        secret_id: int,
        moves: tuple[tuple[str, str], ...],
        now: str,
        *,
        but: int | None = None,
    ) -> None:
        """Apply ``moves`` to the secret's versions (but version ``but``), stamping when
        each moved version took its new stage."""
        if not moves:
            return
        # One statement for all moves: applied at once, so none feeds another.
        cases = " ".join("WHEN ? THEN ?" for _ in moves)
        marks = ", ".join("?" for _ in moves)
        self._exec(
            tx,
            f"UPDATE sb_versions SET stage = CASE stage {cases} END, staged_at = ?"
            f" WHERE secret_id = ? AND stage IN ({marks}) AND version <> ?",
            (
                *(s for move in moves for s in move),
                now,
                secret_id,
                *(before for before, _ in moves),
                -1 if but is None else but,
            ),
        )

    @staticmethod
    def _version_row(r: Sequence[Any], with_data: bool) -> VersionRow:
        return VersionRow(
            project=r[0],
            env=r[1],
            name=r[2],
            version=int(r[3]),
            stage=r[4],
            created_at=r[5],
            created_by=r[6],
            kek_id=r[7],
            rollback_of=r[8],
            staged_at=r[9],
            rotation_id=r[10],
            ciphertext=bytes(r[11]) if with_data else b"",
            wrapped_key=bytes(r[12]) if with_data else b"",
        )

    def _secret_or_missing(self, tx: Tx, project: str, env: str, name: str) -> Any:
        row = self._one(
            tx,
            "SELECT id, current_version, deleted_at FROM sb_secrets"
            " WHERE project = ? AND env = ? AND name = ?",
            (project, env, name),
        )
        if row is None:
            self._require_env(tx, project, env)
            raise NotFound(f"secret {project}/{env}/{name} does not exist")
        return row

    def read_version(self, project: str, env: str, name: str, version: int | None) -> VersionRow:
        # One statement (so no explicit transaction): the secret row and, when it exists,
        # the wanted version; the reason for a miss is looked up only on the error path.
        with self._single() as tx:
            self._require_schema(tx)
            r = self._one(
                tx,
                "SELECT s.deleted_at, s.current_version, v.version, v.stage, v.created_at,"
                " v.created_by, v.kek_id, v.rollback_of, v.staged_at, v.rotation_id,"
                " v.ciphertext, v.wrapped_key FROM sb_secrets s LEFT JOIN sb_versions v"
                " ON v.secret_id = s.id AND v.version = COALESCE(?, s.current_version)"
                " WHERE s.project = ? AND s.env = ? AND s.name = ?",
                (version, project, env, name),
            )
            if r is None:
                self._require_env(tx, project, env)
                raise NotFound(f"secret {project}/{env}/{name} does not exist")
        if r[0] is not None:
            raise NotFound(
                f"secret {project}/{env}/{name} is deleted",
                hint="undelete it to restore it",
                hint_key="undelete_secret",
            )
        if r[2] is None:
            want = r[1] if version is None else version
            raise NotFound(f"secret {project}/{env}/{name} has no version {want}")
        return self._version_row((project, env, name, *r[2:]), True)

    def read_current(
        self, project: str, env: str, names: list[str] | None = None
    ) -> list[VersionRow]:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            self._require_env(tx, project, env)
            rows = self._all(
                tx,
                f"SELECT {_VERSION_COLS}, v.ciphertext, v.wrapped_key FROM sb_secrets s"
                " JOIN sb_versions v ON v.secret_id = s.id AND v.version = s.current_version"
                " WHERE s.project = ? AND s.env = ? AND s.deleted_at IS NULL ORDER BY s.name",
                (project, env),
            )
        out = [self._version_row(r, True) for r in rows]
        if names is not None:
            wanted = set(names)
            out = [r for r in out if r.name in wanted]
        return out

    def get_secret(self, project: str, env: str, name: str) -> SecretRow:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            self._secret_or_missing(tx, project, env, name)
            r = self._one(
                tx,
                "SELECT project, env, name, current_version, created_at, updated_at, deleted_at,"
                " meta FROM sb_secrets WHERE project = ? AND env = ? AND name = ?",
                (project, env, name),
            )
        return SecretRow(*r)

    def list_secrets(
        self, project: str, env: str, *, include_deleted: bool = False
    ) -> list[SecretRow]:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            self._require_env(tx, project, env)
            rows = self._all(
                tx,
                "SELECT project, env, name, current_version, created_at, updated_at, deleted_at,"
                " meta FROM sb_secrets WHERE project = ? AND env = ?"
                + ("" if include_deleted else " AND deleted_at IS NULL")
                + " ORDER BY name",
                (project, env),
            )
        return [SecretRow(*r) for r in rows]

    def history(self, project: str, env: str, name: str) -> list[VersionRow]:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            sec = self._secret_or_missing(tx, project, env, name)
            rows = self._all(
                tx,
                f"SELECT {_VERSION_COLS} FROM sb_versions v JOIN sb_secrets s"
                " ON s.id = v.secret_id WHERE v.secret_id = ? ORDER BY v.version",
                (sec[0],),
            )
        return [self._version_row(r, False) for r in rows]

    @contextmanager
    def _audited_tx(
        self, audit_node: str | None, audit_head: SignHead | None = None
    ) -> Iterator[Tx]:
        """A write transaction that the audit events appended to ``audit_node``'s chain
        meanwhile join: the change and the event that records it commit together, and so
        does the chain's signed head row, with ``audit_head``."""
        heads = self._audit_heads if self._audit_heads is not None else {}
        self._audit_heads = heads
        try:
            with self._tx(write=True) as tx:
                start: tuple[int, str] | None = None
                if audit_node is not None:
                    self._lock_audit_chain(tx, audit_node)
                    start = heads[audit_node] = self._load_audit_head(audit_node, tx)
                    self._audit_batch_tx = tx
                yield tx
                if audit_node is not None and audit_head is not None:
                    self._move_audit_head(tx, audit_node, start, audit_head)
        except BaseException:
            if audit_node is not None:
                heads.pop(audit_node, None)  # its positions were not committed
            raise
        finally:
            self._audit_batch_tx = None

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
    ) -> None:
        json.loads(meta_json)  # storage refuses to keep something it cannot read back
        with self._audited_tx(audit_node) as tx:
            self._require_schema(tx)
            sec = self._secret_or_missing(tx, project, env, name)
            self._exec(
                tx,
                "UPDATE sb_secrets SET meta = ?, updated_at = ? WHERE id = ?",
                (meta_json, now, sec[0]),
            )
            if audit is not None:
                audit()

    def soft_delete(
        self,
        project: str,
        env: str,
        name: str,
        now: str,
        *,
        audit: Callable[[], None] | None = None,
        audit_node: str | None = None,
    ) -> None:
        with self._audited_tx(audit_node) as tx:
            self._require_schema(tx)
            sec = self._secret_or_missing(tx, project, env, name)
            if sec[2] is not None:
                raise NotFound(f"secret {project}/{env}/{name} is already deleted")
            self._exec(tx, "UPDATE sb_secrets SET deleted_at = ? WHERE id = ?", (now, sec[0]))
            if audit is not None:
                audit()

    def undelete(
        self,
        project: str,
        env: str,
        name: str,
        now: str,
        *,
        audit: Callable[[], None] | None = None,
        audit_node: str | None = None,
    ) -> None:
        with self._audited_tx(audit_node) as tx:
            self._require_schema(tx)
            sec = self._secret_or_missing(tx, project, env, name)
            if sec[2] is None:
                raise Conflict(f"secret {project}/{env}/{name} is not deleted")
            self._exec(
                tx,
                "UPDATE sb_secrets SET deleted_at = NULL, updated_at = ? WHERE id = ?",
                (now, sec[0]),
            )
            if audit is not None:
                audit()

    def purge(
        self,
        project: str,
        env: str,
        name: str,
        *,
        audit: Callable[[int], None] | None = None,
        audit_node: str | None = None,
    ) -> int:
        with self._audited_tx(audit_node) as tx:
            self._require_schema(tx)
            sec = self._secret_or_missing(tx, project, env, name)
            cur = self._exec(tx, "DELETE FROM sb_versions WHERE secret_id = ?", (sec[0],))
            count = int(cur.rowcount or 0)  # NOTE: before the next statement reuses cur
            # Its rotation settings and records go with it (nothing left to rotate).
            for table in ("sb_rotation_configs", "sb_rotations"):
                self._exec(
                    tx,
                    f"DELETE FROM {table} WHERE project = ? AND env = ? AND name = ?",
                    (project, env, name),
                )
            self._exec(tx, "DELETE FROM sb_secrets WHERE id = ?", (sec[0],))
            if audit is not None:
                audit(count)
            return count

    def iter_versions(self) -> Iterator[VersionRow]:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            rows = self._all(
                tx,
                f"SELECT {_VERSION_COLS}, v.ciphertext, v.wrapped_key FROM sb_versions v"
                " JOIN sb_secrets s ON s.id = v.secret_id ORDER BY s.project, s.env, s.name,"
                " v.version",
            )
        for r in rows:
            yield self._version_row(r, True)

    # -- rotations ----------------------------------------------------------------------------
    _ROTATION_COLS = (
        "id, project, env, name, method, state, step, phase, dry_run, from_version,"
        " pending_version, started_at, updated_at, finished_at, error, rotator_state, notes,"
        " actor, owner, lease_until, tested"
    )
    _CONFIG_COLS = (
        "project, env, name, method, options, grace_seconds, time_window, start_offset,"
        " notify_url, updated_at, updated_by"
    )

    @staticmethod
    def _rotation_row(r: Sequence[Any]) -> RotationRow:
        return RotationRow._make(
            (
                *r[:8],
                bool(r[8]),
                None if r[9] is None else int(r[9]),
                None if r[10] is None else int(r[10]),
                *r[11:],
            )
        )

    @staticmethod
    def _config_row(r: Sequence[Any]) -> RotationConfigRow:
        return RotationConfigRow._make((*r[:5], int(r[5]), r[6], int(r[7]), *r[8:]))

    def put_rotation_config(
        self,
        row: RotationConfigRow,
        *,
        audit: Callable[[], None] | None = None,
        audit_node: str | None = None,
    ) -> None:
        json.loads(row.options)  # storage refuses to keep something it cannot read back
        with self._audited_tx(audit_node) as tx:
            self._require_schema(tx)
            self._secret_or_missing(tx, row.project, row.env, row.name)
            self._exec(
                tx,
                "DELETE FROM sb_rotation_configs WHERE project = ? AND env = ? AND name = ?",
                (row.project, row.env, row.name),
            )
            self._exec(
                tx,
                f"INSERT INTO sb_rotation_configs ({self._CONFIG_COLS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                tuple(row),
            )
            if audit is not None:
                audit()

    def get_rotation_config(self, project: str, env: str, name: str) -> RotationConfigRow | None:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            r = self._one(
                tx,
                f"SELECT {self._CONFIG_COLS} FROM sb_rotation_configs"
                " WHERE project = ? AND env = ? AND name = ?",
                (project, env, name),
            )
        return self._config_row(r) if r else None

    def list_rotation_configs(self) -> list[RotationConfigRow]:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            rows = self._all(
                tx,
                f"SELECT {self._CONFIG_COLS} FROM sb_rotation_configs ORDER BY project, env, name",
            )
        return [self._config_row(r) for r in rows]

    def _open_rotation_of(self, tx: Tx, project: str, env: str, name: str) -> Any:
        return self._one(
            tx,
            "SELECT id, state FROM sb_rotations WHERE project = ? AND env = ? AND name = ?"
            " AND finished_at IS NULL",
            (project, env, name),
        )

    def _refuse_second(self, project: str, env: str, name: str, found: Any) -> NoReturn:
        raise Conflict(
            f"{project}/{env}/{name} has an unfinished rotation {found[0]} ({found[1]})",
            hint=f"resume or cancel rotation {found[0]} first",
            hint_key="rotation_open",
            hint_args={"rotation": str(found[0])},
        ) from None

    def start_rotation(
        self,
        row: RotationRow,
        *,
        audit: Callable[[], None] | None = None,
        audit_node: str | None = None,
    ) -> None:
        try:
            with self._audited_tx(audit_node) as tx:
                self._require_schema(tx)
                self._secret_or_missing(tx, row.project, row.env, row.name)
                found = self._open_rotation_of(tx, row.project, row.env, row.name)
                if found is not None:
                    self._refuse_second(row.project, row.env, row.name, found)
                if self._one(tx, "SELECT 1 FROM sb_rotations WHERE id = ?", (row.id,)):
                    raise Conflict(f"a rotation with id {row.id} exists already")
                marks = ", ".join("?" for _ in row)
                self._exec(
                    tx,
                    f"INSERT INTO sb_rotations ({self._ROTATION_COLS}) VALUES ({marks})",
                    (*row[:8], int(row.dry_run), *row[9:]),
                )
                if audit is not None:
                    audit()
        except Conflict:
            # Two at once: the partial unique index refused the second; name the first.
            with self._tx(write=False) as tx:
                found = self._open_rotation_of(tx, row.project, row.env, row.name)
            if found is not None and found[0] != row.id:
                self._refuse_second(row.project, row.env, row.name, found)
            raise

    def save_rotation(
        self,
        row: RotationRow,
        *,
        expect_owner: str,
        audit: Callable[[], None] | None = None,
        audit_node: str | None = None,
    ) -> None:
        with self._audited_tx(audit_node) as tx:
            self._require_schema(tx)
            cur = self._exec(
                tx,
                "UPDATE sb_rotations SET state = ?, step = ?, phase = ?, from_version = ?,"
                " pending_version = ?, updated_at = ?, finished_at = ?, error = ?,"
                " rotator_state = ?, notes = ?, owner = ?, lease_until = ?, tested = ?"
                " WHERE id = ? AND owner = ? AND finished_at IS NULL",
                (
                    row.state,
                    row.step,
                    row.phase,
                    row.from_version,
                    row.pending_version,
                    row.updated_at,
                    row.finished_at,
                    row.error,
                    row.rotator_state,
                    row.notes,
                    row.owner,
                    row.lease_until,
                    row.tested,
                    row.id,
                    expect_owner,
                ),
            )
            if cur.rowcount != 1:
                raise Conflict(
                    f"rotation {row.id} is finished or was taken over by another process"
                )
            if audit is not None:
                audit()

    def claim_rotation(
        self, rotation_id: str, owner: str, lease_until: str, *, expect_owner: str
    ) -> bool:
        with self._tx(write=True) as tx:
            self._require_schema(tx)
            cur = self._exec(
                tx,
                "UPDATE sb_rotations SET owner = ?, lease_until = ?"
                " WHERE id = ? AND owner = ? AND finished_at IS NULL",
                (owner, lease_until, rotation_id, expect_owner),
            )
            return bool(cur.rowcount == 1)

    def get_rotation(self, rotation_id: str) -> RotationRow | None:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            r = self._one(
                tx, f"SELECT {self._ROTATION_COLS} FROM sb_rotations WHERE id = ?", (rotation_id,)
            )
        return self._rotation_row(r) if r else None

    def list_rotations(
        self,
        *,
        project: str | None = None,
        env: str | None = None,
        name: str | None = None,
        open_only: bool = False,
        limit: int = 100,
    ) -> list[RotationRow]:
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("project", project), ("env", env), ("name", name)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if open_only:
            where.append("finished_at IS NULL")
        sql = f"SELECT {self._ROTATION_COLS} FROM sb_rotations"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC, id DESC LIMIT ?"
        params.append(limit)
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            rows = self._all(tx, sql, params)
        return [self._rotation_row(r) for r in rows]

    def version_for_rotation(
        self, project: str, env: str, name: str, rotation_id: str
    ) -> int | None:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            r = self._one(
                tx,
                "SELECT v.version FROM sb_versions v JOIN sb_secrets s ON s.id = v.secret_id"
                " WHERE s.project = ? AND s.env = ? AND s.name = ? AND v.rotation_id = ?",
                (project, env, name, rotation_id),
            )
        return int(r[0]) if r else None

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
        with self._audited_tx(audit_node) as tx:
            self._require_schema(tx)
            self._secret_or_missing(tx, project, env, name)
            secret_id, _, _ = self._lock_secret(tx, project, env, name, now)
            r = self._one(
                tx,
                "SELECT stage FROM sb_versions WHERE secret_id = ? AND version = ?",
                (secret_id, plan.version),
            )
            if r is None:
                raise NotFound(f"secret {project}/{env}/{name} has no version {plan.version}")
            if plan.expect is not None and r[0] != plan.expect:
                raise Conflict(
                    f"version {plan.version} of {project}/{env}/{name} is"
                    f" {r[0] or 'without a stage'}, not {plan.expect}"
                )
            self._move_stages(tx, secret_id, plan.moves, now, but=plan.version)
            self._exec(
                tx,
                "UPDATE sb_versions SET stage = ?, staged_at = ?"
                " WHERE secret_id = ? AND version = ?",
                (plan.stage, now, secret_id, plan.version),
            )
            sets = "updated_at = ?"
            params: list[Any] = [now]
            if plan.current:
                sets += ", current_version = ?"
                params.append(plan.version)
            self._exec(tx, f"UPDATE sb_secrets SET {sets} WHERE id = ?", (*params, secret_id))
            if audit is not None:
                audit()

    def read_stage(self, project: str, env: str, name: str, stage: str) -> VersionRow:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            sec = self._secret_or_missing(tx, project, env, name)
            if sec[2] is not None:
                raise NotFound(
                    f"secret {project}/{env}/{name} is deleted",
                    hint="undelete it to restore it",
                    hint_key="undelete_secret",
                )
            r = self._one(
                tx,
                f"SELECT {_VERSION_COLS}, v.ciphertext, v.wrapped_key FROM sb_versions v"
                " JOIN sb_secrets s ON s.id = v.secret_id WHERE v.secret_id = ? AND v.stage = ?"
                " ORDER BY v.version DESC LIMIT 1",
                (sec[0], stage),
            )
        if r is None:
            raise NotFound(f"secret {project}/{env}/{name} has no {stage} version")
        return self._version_row(r, True)

    # -- identities, secret ids, tokens, policies ---------------------------------------------
    _IDENTITY_COLS = (
        "id, name, kind, password_hash, role_id, policies, created_at, disabled, settings"
    )
    _TOKEN_COLS = (
        "accessor, hash, identity_id, policies, auth_method, created_at, expires_at,"
        " max_expires_at, revoked_at, display, parent"
    )

    @staticmethod
    def _identity(r: Sequence[Any]) -> IdentityRow:
        return IdentityRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]), r[8] or "{}")

    def create_identity(self, row: IdentityRow) -> None:
        with self._tx(write=True) as tx:
            self._require_schema(tx)
            if self._one(tx, "SELECT 1 FROM sb_identities WHERE name = ?", (row.name,)):
                raise AlreadyExists(f"identity {row.name!r} already exists")
            self._exec(
                tx,
                f"INSERT INTO sb_identities ({self._IDENTITY_COLS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.id,
                    row.name,
                    row.kind,
                    row.password_hash,
                    row.role_id,
                    row.policies,
                    row.created_at,
                    int(row.disabled),
                    row.settings,
                ),
            )

    def get_identity(
        self, *, id: str | None = None, name: str | None = None, role_id: str | None = None
    ) -> IdentityRow | None:
        column, value = (
            ("id", id)
            if id is not None
            else ("name", name)
            if name is not None
            else ("role_id", role_id)
        )
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            r = self._one(
                tx, f"SELECT {self._IDENTITY_COLS} FROM sb_identities WHERE {column} = ?", (value,)
            )
        return self._identity(r) if r else None

    def list_identities(self) -> list[IdentityRow]:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            rows = self._all(tx, f"SELECT {self._IDENTITY_COLS} FROM sb_identities ORDER BY name")
        return [self._identity(r) for r in rows]

    def update_identity(
        self,
        id: str,
        *,
        policies: str | None = None,
        password_hash: str | None = None,
        disabled: bool | None = None,
        role_id: str | None = None,
        settings: str | None = None,
    ) -> None:
        with self._tx(write=True) as tx:
            self._require_schema(tx)
            if not self._one(tx, "SELECT 1 FROM sb_identities WHERE id = ?", (id,)):
                raise NotFound("identity does not exist")
            if role_id is not None:
                taken = self._one(
                    tx, "SELECT 1 FROM sb_identities WHERE role_id = ? AND id <> ?", (role_id, id)
                )
                if taken:
                    raise AlreadyExists("that role id is taken")
                self._exec(tx, "UPDATE sb_identities SET role_id = ? WHERE id = ?", (role_id, id))
            if settings is not None:
                self._exec(tx, "UPDATE sb_identities SET settings = ? WHERE id = ?", (settings, id))
            if policies is not None:
                self._exec(tx, "UPDATE sb_identities SET policies = ? WHERE id = ?", (policies, id))
            if password_hash is not None:
                self._exec(
                    tx,
                    "UPDATE sb_identities SET password_hash = ? WHERE id = ?",
                    (password_hash, id),
                )
            if disabled is not None:
                self._exec(
                    tx, "UPDATE sb_identities SET disabled = ? WHERE id = ?", (int(disabled), id)
                )

    def delete_identity(self, id: str, *, now: str) -> None:
        with self._tx(write=True) as tx:
            self._require_schema(tx)
            # Tokens its tokens made (for other identities) die with them: revoked, kept
            # for the listing; the identity's own go.
            self._exec(
                tx,
                "UPDATE sb_tokens SET revoked_at = ?"
                " WHERE identity_id <> ? AND revoked_at IS NULL AND accessor IN "
                + _TOKEN_TREE.format(roots="identity_id = ?"),
                (now, id, id),
            )
            self._exec(tx, "DELETE FROM sb_tokens WHERE identity_id = ?", (id,))
            self._exec(tx, "DELETE FROM sb_secret_ids WHERE identity_id = ?", (id,))
            cur = self._exec(tx, "DELETE FROM sb_identities WHERE id = ?", (id,))
            if not cur.rowcount:
                raise NotFound("identity does not exist")

    def add_secret_id(self, row: SecretIdRow) -> None:
        with self._tx(write=True) as tx:
            self._require_schema(tx)
            self._exec(
                tx,
                "INSERT INTO sb_secret_ids (accessor, identity_id, hash, uses_left, expires_at,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    row.accessor,
                    row.identity_id,
                    row.hash,
                    row.uses_left,
                    row.expires_at,
                    row.created_at,
                ),
            )

    def list_secret_ids(self, identity_id: str) -> list[SecretIdRow]:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            rows = self._all(
                tx,
                "SELECT accessor, identity_id, hash, uses_left, expires_at, created_at"
                " FROM sb_secret_ids WHERE identity_id = ? ORDER BY created_at, accessor",
                (identity_id,),
            )
        return [SecretIdRow(*r) for r in rows]

    def delete_secret_id(self, identity_id: str, accessor: str) -> bool:
        with self._tx(write=True) as tx:
            self._require_schema(tx)
            cur = self._exec(
                tx,
                "DELETE FROM sb_secret_ids WHERE identity_id = ? AND accessor = ?",
                (identity_id, accessor),
            )
            return bool(cur.rowcount)

    def consume_secret_id(self, identity_id: str, hash: str, now: str) -> bool:
        """Use a secret id once: checks expiry and remaining uses under a row lock."""
        with self._tx(write=True) as tx:
            self._require_schema(tx)
            r = self._one(
                tx,
                "SELECT accessor, uses_left, expires_at FROM sb_secret_ids"
                " WHERE identity_id = ? AND hash = ?" + self._lock_clause(),
                (identity_id, hash),
            )
            if r is None:
                return False
            accessor, uses_left, expires_at = r
            if expires_at is not None and expires_at <= now:
                self._exec(tx, "DELETE FROM sb_secret_ids WHERE accessor = ?", (accessor,))
                return False
            if uses_left is not None:
                if uses_left <= 1:
                    self._exec(tx, "DELETE FROM sb_secret_ids WHERE accessor = ?", (accessor,))
                else:
                    self._exec(
                        tx,
                        "UPDATE sb_secret_ids SET uses_left = uses_left - 1 WHERE accessor = ?",
                        (accessor,),
                    )
            return True

    def put_token(self, row: TokenRow) -> None:
        with self._tx(write=True) as tx:
            self._require_schema(tx)
            self._exec(
                tx,
                f"INSERT INTO sb_tokens ({self._TOKEN_COLS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.accessor,
                    row.hash,
                    row.identity_id,
                    row.policies,
                    row.auth_method,
                    row.created_at,
                    row.expires_at,
                    row.max_expires_at,
                    row.revoked_at,
                    row.display,
                    row.parent,
                ),
            )

    def get_token(self, *, hash: str | None = None, accessor: str | None = None) -> TokenRow | None:
        column, value = ("hash", hash) if hash is not None else ("accessor", accessor)
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            r = self._one(
                tx, f"SELECT {self._TOKEN_COLS} FROM sb_tokens WHERE {column} = ?", (value,)
            )
        return TokenRow(*r) if r else None

    def list_tokens(self, identity_id: str | None = None) -> list[TokenRow]:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            if identity_id is None:
                rows = self._all(
                    tx, f"SELECT {self._TOKEN_COLS} FROM sb_tokens ORDER BY created_at"
                )
            else:
                rows = self._all(
                    tx,
                    f"SELECT {self._TOKEN_COLS} FROM sb_tokens WHERE identity_id = ?"
                    " ORDER BY created_at",
                    (identity_id,),
                )
        return [TokenRow(*r) for r in rows]

    def renew_token(self, accessor: str, expires_at: str) -> None:
        with self._tx(write=True) as tx:
            self._require_schema(tx)
            self._exec(
                tx, "UPDATE sb_tokens SET expires_at = ? WHERE accessor = ?", (expires_at, accessor)
            )

    def revoke_tokens(
        self, *, accessor: str | None = None, identity_id: str | None = None, now: str
    ) -> int:
        """Revoke a token (or all of an identity's) and every token descending from it."""
        roots = "accessor = ?" if accessor is not None else "identity_id = ?"
        with self._tx(write=True) as tx:
            self._require_schema(tx)
            cur = self._exec(
                tx,
                "UPDATE sb_tokens SET revoked_at = ? WHERE revoked_at IS NULL AND accessor IN "
                + _TOKEN_TREE.format(roots=roots),
                (now, accessor if accessor is not None else identity_id),
            )
            return int(cur.rowcount or 0)

    def put_policy(self, name: str, document: str, now: str) -> None:
        with self._tx(write=True) as tx:
            self._require_schema(tx)
            self._exec(tx, "DELETE FROM sb_policies WHERE name = ?", (name,))
            self._exec(
                tx,
                "INSERT INTO sb_policies (name, document, updated_at) VALUES (?, ?, ?)",
                (name, document, now),
            )

    def get_policies(self, names: list[str]) -> dict[str, str]:
        if not names:
            return {}
        marks = ", ".join("?" for _ in names)
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            rows = self._all(
                tx, f"SELECT name, document FROM sb_policies WHERE name IN ({marks})", names
            )
        return {r[0]: r[1] for r in rows}

    def list_policies(self) -> list[tuple[str, str]]:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            return [
                (r[0], r[1])
                for r in self._all(tx, "SELECT name, document FROM sb_policies ORDER BY name")
            ]

    def delete_policy(self, name: str) -> None:
        with self._tx(write=True) as tx:
            self._require_schema(tx)
            cur = self._exec(tx, "DELETE FROM sb_policies WHERE name = ?", (name,))
            if not cur.rowcount:
                raise NotFound(f"policy {name!r} does not exist")

    # -- audit ----------------------------------------------------------------------------------
    _AUDIT_COLS = (
        "at, actor, source, operation, path, version, outcome, reason, node, seq, event, prev,"
        " hash, link"
    )

    def ensure_setting(self, key: str, value: str) -> str:
        """Store ``value`` under ``key`` unless one is there; returns the stored value."""
        with self._tx(write=True) as tx:
            self._require_schema(tx)
            row = self._one(tx, "SELECT value FROM sb_settings WHERE key = ?", (key,))
            if row is not None:
                return str(row[0])
            self._exec(tx, "INSERT INTO sb_settings (key, value) VALUES (?, ?)", (key, value))
            return value

    # -- scheduler locks ----------------------------------------------------------------------
    def claim_lock(self, name: str, owner: str, *, now: str, until: str) -> LockRow:
        with self._tx(write=True) as tx:
            self._require_schema(tx)
            # NOTE: one upsert: the row is taken only when free, expired or ours, so two
            # nodes claiming at once cannot both win (the row lock / SQLite's write lock
            # orders them); the second sees the first's row below.
            self._exec(
                tx,
                "INSERT INTO sb_locks (name, owner, acquired_at, until) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner,"
                " acquired_at = CASE WHEN sb_locks.owner = excluded.owner"
                " THEN sb_locks.acquired_at ELSE excluded.acquired_at END,"
                " until = excluded.until"
                " WHERE sb_locks.owner = excluded.owner OR sb_locks.until < excluded.acquired_at",
                (name, owner, now, until),
            )
            row = self._one(
                tx, "SELECT name, owner, acquired_at, until FROM sb_locks WHERE name = ?", (name,)
            )
            return LockRow(*row)

    def release_lock(self, name: str, owner: str) -> bool:
        with self._tx(write=True) as tx:
            self._require_schema(tx)
            cur = self._exec(tx, "DELETE FROM sb_locks WHERE name = ? AND owner = ?", (name, owner))
            return bool(cur.rowcount)

    def list_locks(self) -> list[LockRow]:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            rows = self._all(
                tx, "SELECT name, owner, acquired_at, until FROM sb_locks ORDER BY name"
            )
            return [LockRow(*r) for r in rows]

    def _audit_tx(self, *, wait: bool = True) -> AbstractContextManager[Tx]:
        """The transaction an audit event is written in (a backend may relax its sync)."""
        return self._tx(write=True)

    def _append_tx(self) -> AbstractContextManager[Tx]:
        """An audit transaction in which a position another process took is a Conflict."""
        return self._audit_tx()

    #: node -> (seq, hash) of the last event this process appended or saw.
    _audit_heads: dict[str, tuple[int, str]] | None = None

    #: node -> the head row this process stored last (it may have been rolled back or
    #: replaced since: :meth:`_store_head` then finds the row it expects missing).
    @functools.cached_property
    def _heads_stored(self) -> dict[str, HeadRow]:
        return {}

    #: The transaction of the audit batch in progress (see :meth:`audit_batch`).
    _audit_batch_tx: Tx | None = None

    def _load_audit_head(self, node: str, tx: Tx | None = None) -> tuple[int, str]:
        sql = (
            "SELECT seq, hash FROM sb_audit WHERE node = ? AND seq IS NOT NULL"
            " ORDER BY seq DESC LIMIT 1"
        )
        if tx is not None:
            r = self._one(tx, sql, (node,))
        else:
            with self._single() as own:
                r = self._one(own, sql, (node,))
        return (int(r[0]), str(r[1])) if r else (0, GENESIS)

    def _lock_audit_chain(self, tx: Tx, node: str, *, wait: bool = True) -> None:
        """Keep other writers of ``node``'s chain out until the transaction ends."""
        # SQLite: BEGIN IMMEDIATE already holds the database's write lock.

    def _open_audit_chain(self, tx: Tx, node: str, *, wait: bool) -> tuple[int, str]:
        """Inside an audit batch's transaction: lock ``node``'s chain, return its head."""
        self._lock_audit_chain(tx, node, wait=wait)
        return self._load_audit_head(node, tx)

    @contextmanager
    def audit_batch(
        self, node: str, *, wait: bool = True, head: SignHead | None = None
    ) -> Iterator[None]:
        """Append a batch of events in ONE transaction (the server's group commit).

        The chain is locked and its head read inside the transaction, so no other writer
        can take a position meanwhile; any failure rolls the whole batch back. With
        ``head``, the head row moves once, at the end, in the same transaction.
        """
        if self._audit_heads is None:
            self._audit_heads = {}
        heads = self._audit_heads
        try:
            with self._audit_tx(wait=wait) as tx:
                start = heads[node] = self._open_audit_chain(tx, node, wait=wait)
                self._audit_batch_tx = tx
                try:
                    yield
                finally:
                    self._audit_batch_tx = None
                if head is not None:
                    self._move_audit_head(tx, node, start, head)
        except BaseException:
            heads.pop(node, None)  # the batch's positions were never committed
            raise

    _HEAD_COLS = "node, seq, hash, at, checkpoint_seq, signature, since, spool"
    _UPSERT_HEAD = (
        f"INSERT INTO sb_audit_heads ({_HEAD_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (node) DO UPDATE SET seq = excluded.seq, hash = excluded.hash,"
        " at = excluded.at, checkpoint_seq = excluded.checkpoint_seq,"
        " signature = excluded.signature, since = excluded.since, spool = excluded.spool"
        " WHERE sb_audit_heads.seq <= excluded.seq"
    )

    @staticmethod
    def _head_row(r: Sequence[Any]) -> HeadRow:
        return HeadRow(
            str(r[0]), int(r[1]), str(r[2]), str(r[3]), int(r[4]), str(r[5]), int(r[6]), str(r[7])
        )

    def mark_audit_head(self, node: str, head: SignHead) -> None:
        with self._audit_tx() as tx:
            self._require_schema(tx)
            self._lock_audit_chain(tx, node)
            seq, hash_ = self._load_audit_head(node, tx)
            self._store_head(tx, node, seq, hash_, seq, head)

    def _store_head(
        self, tx: Tx, node: str, seq: int, hash_: str, start: int, head: SignHead
    ) -> None:
        """Move ``node``'s head row to ``(seq, hash_)`` in ``tx`` (the chain stood at
        ``start`` before it); the signer sees the row stored now."""
        # NOTE: one statement when the stored row is the one this process stored last
        # (a server's every drain or batch: on PostgreSQL a round trip saved each time);
        # else the stored row is read and handed to the signer.
        last = self._heads_stored.get(node)
        if last is not None:
            row = head(node, seq, hash_, start, last)
            cur = self._exec(
                tx,
                "UPDATE sb_audit_heads SET seq = ?, hash = ?, at = ?, checkpoint_seq = ?,"
                " signature = ?, since = ?, spool = ? WHERE node = ? AND seq = ? AND"
                " signature = ? AND seq <= ?",
                (*row[1:], node, last.seq, last.signature, seq),
            )
            if cur.rowcount == 1:
                self._heads_stored[node] = row
                return
        r = self._one(tx, f"SELECT {self._HEAD_COLS} FROM sb_audit_heads WHERE node = ?", (node,))
        stored = self._head_row(r) if r is not None else None
        row = head(node, seq, hash_, start, stored)
        self._exec(tx, self._UPSERT_HEAD, tuple(row))
        self._heads_stored[node] = row

    def _move_audit_head(
        self, tx: Tx, node: str, start: tuple[int, str] | None, head: SignHead
    ) -> None:
        """Store the head of ``node``'s chain if this transaction appended to it."""
        assert self._audit_heads is not None
        now = self._audit_heads.get(node)
        if now is not None and now != start:
            self._store_head(tx, node, now[0], now[1], start[0] if start else 0, head)

    def append_audit_event(
        self, node: str, build: BuildAudit, head: SignHead | None = None
    ) -> AuditRow:
        # NOTE: one INSERT per event, no transaction around it: the chain head is kept in
        # memory and the unique (node, seq) index makes a fork impossible. When another
        # process appended to the same chain meanwhile, the insert fails, and the event is
        # rebuilt on the head read under the chain's lock. (Reading and moving a head row
        # in a transaction per event cost two thirds of a server read.)
        if self._audit_heads is None:
            self._audit_heads = {}
        heads = self._audit_heads
        batch = self._audit_batch_tx
        if batch is not None:
            return self._append_in_tx(batch, node, build)
        if node not in heads:
            heads[node] = self._load_audit_head(node)
        seq, prev = heads[node]
        row = build(seq + 1, prev)
        try:
            if head is None:
                with self._single(audit=True) as tx:
                    self._insert_lone_event(tx, node, row)
            else:
                with self._append_tx() as tx:
                    self._insert_lone_event(tx, node, row)
                    self._store_head(tx, node, seq + 1, row.hash, seq, head)
        except Conflict:
            del heads[node]  # someone else appended: rebuild on the real head
        else:
            heads[node] = (seq + 1, row.hash)
            return row
        # NOTE: contention. Retrying the single statement can starve: its head is read
        # before it waits for the chain lock, and a process writing in a loop takes the
        # next position each time the lock is free. Under the lock, the head read is the
        # real one and the append cannot lose.
        try:
            with self._audit_tx() as tx:
                start = heads[node] = self._open_audit_chain(tx, node, wait=True)
                row = self._append_in_tx(tx, node, build)
                if head is not None:
                    self._store_head(tx, node, heads[node][0], row.hash, start[0], head)
        except BaseException:
            heads.pop(node, None)  # its position was not committed
            raise
        return row

    def _append_in_tx(self, tx: Tx, node: str, build: BuildAudit) -> AuditRow:
        """Append inside a transaction that holds ``node``'s chain lock (a write's own
        transaction, an audit batch).

        Every appender of this code takes the chain lock, so the position after the head
        read under it is free; a process that appends without it (an older version in a
        rolling upgrade) may still take it. The INSERT then skips (ON CONFLICT DO
        NOTHING: a unique violation would abort the whole transaction, and with it the
        write it records), the head is read again (PostgreSQL's READ COMMITTED: a new
        statement sees the other process's committed row) and the event rebuilt on top.
        Nothing else of the transaction runs twice: no second sealing, no event written
        twice to the other sinks."""
        heads = self._audit_heads
        assert heads is not None
        for attempt in range(APPEND_TRIES):
            if node not in heads:
                heads[node] = self._load_audit_head(node, tx)
            seq, prev = heads[node]
            row = build(seq + 1, prev)
            # NOTE: no conflict target: the (node, seq) index is the only unique one a new
            # event can hit, and a target naming it would make every append fail where an
            # attacker dropped it (verify must still record its own event to report that).
            cur = self._exec(tx, self._INSERT_AUDIT + " ON CONFLICT DO NOTHING", row[:14])
            if cur.rowcount == 1:
                heads[node] = (seq + 1, row.hash)
                return row
            del heads[node]  # the position was taken meanwhile: rebuild on the real head
            _back_off(attempt)
        raise Conflict(f"could not append to audit chain {node!r}: too much contention")

    def _insert_lone_event(self, tx: Tx, node: str, row: AuditRow) -> None:
        """Insert one event outside any transaction of this process's that holds the
        chain lock. SQLite: the statement's own write lock keeps others out meanwhile; a
        backend with chain locks takes it in the same statement (PostgreSQL)."""
        self._insert_audit_rows(tx, [row])

    _INSERT_AUDIT = (
        f"INSERT INTO sb_audit ({_AUDIT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )

    def _insert_audit_rows(self, tx: Tx, rows: Sequence[AuditRow]) -> None:
        if len(rows) == 1:
            self._exec(tx, self._INSERT_AUDIT, rows[0][:14])
        else:
            tx.executemany(self._q(self._INSERT_AUDIT), [r[:14] for r in rows])

    def store_audit_rows(
        self, rows: Sequence[AuditRow], *, wait: bool = True, head: SignHead | None = None
    ) -> None:
        """Insert already chained events of one chain in one transaction (an audit
        spool's drain), and move its head to the last of them."""
        if self._audit_heads is not None:
            for row in rows:
                self._audit_heads.pop(row.node, None)  # moved by someone else's rows
        with self._audit_tx(wait=wait) as tx:
            self._insert_audit_rows(tx, rows)
            first, last = rows[0], rows[-1]
            if head is not None and first.seq is not None and last.seq is not None:
                self._store_head(tx, last.node, last.seq, last.hash, first.seq - 1, head)

    def audit_head(self, node: str) -> tuple[int, str]:
        """(seq, hash) of the last stored event of ``node``'s chain ((0, GENESIS) if none)."""
        return self._load_audit_head(node)

    def spool_dir(self) -> Path | None:
        """Where a server process may spool audit events (None: commit each event)."""
        return None

    @staticmethod
    def _audit_row(r: Sequence[Any]) -> AuditRow:
        return AuditRow._make([*r[:14], int(r[14])])

    def list_audit(self, limit: int = 100) -> list[AuditRow]:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            rows = self._all(
                tx,
                f"SELECT {self._AUDIT_COLS}, id FROM sb_audit ORDER BY id DESC LIMIT ?",
                (limit,),
            )
        return [self._audit_row(r) for r in reversed(rows)]

    def query_audit(self, query: AuditQuery) -> list[AuditRow]:
        where: list[str] = []
        params: list[Any] = []

        def any_of(column: str, values: tuple[str, ...]) -> None:
            where.append(f"{column} IN ({', '.join('?' for _ in values)})")
            params.extend(values)

        if query.paths is not None:
            any_of("path", query.paths)
        if query.operations is not None:
            any_of("operation", query.operations)
        if query.outcomes is not None:
            any_of("outcome", query.outcomes)
        if query.identity is not None:
            where.append("actor = ?")
            params.append(query.identity)
        if query.source is not None:
            where.append("source = ?")
            params.append(query.source)
        if query.since is not None:
            where.append("at >= ?")
            params.append(query.since)
        if query.until is not None:
            where.append("at < ?")
            params.append(query.until)
        sql = f"SELECT {self._AUDIT_COLS}, id FROM sb_audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC" if query.newest_first else " ORDER BY id"
        if query.limit is not None:
            sql += " LIMIT ?"
            params.append(query.limit)
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            rows = self._all(tx, sql, params)
        return [self._audit_row(r) for r in rows]

    def audit_chain(self, node: str) -> list[AuditRow]:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            rows = self._all(
                tx,
                f"SELECT {self._AUDIT_COLS}, id FROM sb_audit"
                " WHERE node = ? AND seq IS NOT NULL ORDER BY id",
                (node,),
            )
        return [self._audit_row(r) for r in rows]

    def audit_heads(self) -> dict[str, tuple[int, str]]:
        """The last event of every chain, as stored now."""
        # NOTE: node by node through the (node, seq) index: a GROUP BY over the events
        # reads every one of them, and a checkpoint falls due every thousand events.
        heads: dict[str, tuple[int, str]] = {}
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            node = self._one(tx, "SELECT MIN(node) FROM sb_audit")[0]
            while node is not None:
                seq, hash_ = self._load_audit_head(str(node), tx)
                if seq:
                    heads[str(node)] = (seq, hash_)
                node = self._one(tx, "SELECT MIN(node) FROM sb_audit WHERE node > ?", (node,))[0]
        return heads

    def audit_head_marks(self) -> dict[str, HeadRow]:
        """The stored head row of every chain (truncation marks)."""
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            rows = self._all(tx, f"SELECT {self._HEAD_COLS} FROM sb_audit_heads")
        return {str(r[0]): self._head_row(r) for r in rows}

    def audit_nodes(self) -> list[str]:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            rows = self._all(
                tx,
                "SELECT DISTINCT node FROM sb_audit WHERE seq IS NOT NULL"
                " UNION SELECT node FROM sb_audit_heads"
                " UNION SELECT node FROM sb_audit_checkpoints",
            )
        return sorted(str(r[0]) for r in rows)

    def count_unchained_audit(self) -> int:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            row = self._one(tx, "SELECT COUNT(*) FROM sb_audit WHERE seq IS NULL")
        return int(row[0])

    def has_keyed_audit(self) -> bool:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            row = self._one(tx, "SELECT 1 FROM sb_audit WHERE link = 'hmac' LIMIT 1")
        return row is not None

    def add_audit_checkpoint(self, row: CheckpointRow, head: SignHead | None = None) -> None:
        with self._audit_tx() as tx:
            self._require_schema(tx)
            self._exec(
                tx,
                "INSERT INTO sb_audit_checkpoints (node, seq, hash, at, signature, key_id,"
                " prev_seq) VALUES (?, ?, ?, ?, ?, ?, ?)",
                tuple(row),
            )
            if head is not None:
                self._store_head(tx, row.node, row.seq, row.hash, row.seq, head)

    def list_audit_checkpoints(self) -> list[CheckpointRow]:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            rows = self._all(
                tx,
                "SELECT node, seq, hash, at, signature, key_id, prev_seq"
                " FROM sb_audit_checkpoints ORDER BY id",
            )
        return [
            CheckpointRow(
                str(r[0]), int(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]), int(r[6])
            )
            for r in rows
        ]

    def version_refs(self) -> list[tuple[str, int]]:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            rows = self._all(
                tx,
                "SELECT s.project, s.env, s.name, v.version FROM sb_versions v"
                " JOIN sb_secrets s ON s.id = v.secret_id ORDER BY s.id, v.version",
            )
        return [(f"{r[0]}/{r[1]}/{r[2]}", int(r[3])) for r in rows]
