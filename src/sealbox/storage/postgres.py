"""PostgreSQL storage (``psycopg`` 3): the backend several servers share.

The current version of a secret is read ``FOR UPDATE`` inside the write transaction, so
concurrent writers serialise on the secret's row; the first write of a new secret is
guarded by the table's unique constraint and retried once on a race.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sealbox.errors import BackendUnavailable, Conflict, SealboxError, StorageBusy
from sealbox.storage.rows import AuditRow
from sealbox.storage.schema import Dialect
from sealbox.storage.sql import SqlStorage, Tx

CHANGE_CHANNEL = "sealbox_changes"

#: What a unique index refusing a row means, by the index's name (PostgreSQL reports it):
#: every violation used to read "a concurrent write created the same secret", even when
#: it was another process's audit event taking a chain position (issue 17).
UNIQUE_MEANING = {
    "sb_audit_node_seq": "another process took this position of the audit chain; retry",
    "sb_audit_heads_pkey": "another process stored this audit chain's head first; retry",
    "sb_secrets_project_env_name_key": "a concurrent write created the same secret; retry",
    "sb_versions_pkey": "a concurrent write took the same version number; retry the write",
    "sb_versions_rotation": "a concurrent step of this rotation wrote its version already",
    "sb_rotations_one_open": "another rotation of this secret was started at the same time",
    "sb_rotations_pkey": "a rotation with this id exists already",
}


def _unique_conflict(exc: Exception) -> Conflict:
    """The Conflict for a unique violation, saying which rows collided (never a value:
    only the index's name is read from the error)."""
    diag = getattr(exc, "diag", None)
    name = str(getattr(diag, "constraint_name", None) or "")
    meaning = UNIQUE_MEANING.get(name)
    if meaning is None:
        meaning = f"a concurrent write conflicted with this one ({name or 'unique index'}); retry"
    return Conflict(meaning)


def chain_lock_key(node: str) -> str:
    """The advisory lock every appender of ``node``'s chain holds (hashed by hashtext)."""
    return f"sealbox-audit:{node}"


def redact_dsn(dsn: str) -> str:
    """The DSN without its password, for messages."""
    try:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        parts = conninfo_to_dict(dsn)
    except Exception:
        return "postgresql://…"
    if "password" in parts:
        parts["password"] = "***"
    return make_conninfo(**{k: str(v) for k, v in parts.items() if v is not None})


class PostgresStorage(SqlStorage):
    """A vault in a PostgreSQL database."""

    dialect = Dialect(blob="BYTEA", serial_pk="BIGSERIAL PRIMARY KEY", placeholder="%s")

    def __init__(self, dsn: str, *, connect_timeout: int = 5) -> None:
        import psycopg

        self._psycopg = psycopg
        self.description = f"PostgreSQL {redact_dsn(dsn)}"
        self._dsn = dsn
        self._timeout = connect_timeout
        self._conn: Any = None
        self._connect()

    def _connect(self) -> None:
        psycopg = self._psycopg
        try:
            self._conn = psycopg.connect(self._dsn, connect_timeout=self._timeout, autocommit=True)
        except psycopg.Error:
            raise BackendUnavailable(
                f"cannot connect to {self.description}",
                hint="check that the database is up and the address and credentials are right",
            ) from None

    def _lock_clause(self) -> str:
        return " FOR UPDATE"

    @contextmanager
    def _tx(self, *, write: bool) -> Iterator[Tx]:
        psycopg = self._psycopg
        if self._conn is None or self._conn.closed or self._conn.broken:
            # Recover by ourselves once the database is back.
            self._connect()
        try:
            with self._conn.transaction(), self._conn.cursor() as cur:
                yield cur
        except psycopg.errors.UniqueViolation as exc:
            raise _unique_conflict(exc) from exc
        except psycopg.OperationalError as exc:
            raise BackendUnavailable(
                f"{self.description} is unavailable: {type(exc).__name__}"
            ) from None
        except psycopg.Error as exc:
            raise self._translate(exc) from None

    @contextmanager
    def _single(self, *, audit: bool = False) -> Iterator[Tx]:
        # The connection is in autocommit mode: one statement is its own transaction.
        psycopg = self._psycopg
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._connect()
        try:
            with self._conn.cursor() as cur:
                yield cur
        except psycopg.errors.UniqueViolation as exc:
            raise _unique_conflict(exc) from exc
        except psycopg.OperationalError:
            raise BackendUnavailable(f"{self.description} is unavailable") from None
        except psycopg.Error as exc:
            raise self._translate(exc) from None

    _feed: PostgresChangeFeed | None = None

    def change_feed(self) -> PostgresChangeFeed:
        if self._feed is None:
            self._feed = PostgresChangeFeed(self)
        return self._feed

    def notify(self, payload: str) -> None:
        with self._single() as cur:
            cur.execute("SELECT pg_notify(%s, %s)", (CHANGE_CHANNEL, payload))

    def _open_audit_chain(self, tx: Tx, node: str, *, wait: bool) -> tuple[int, str]:
        """An audit batch commits without waiting for the WAL flush (``synchronous_commit``
        off, this transaction only; set in the lock's statement, which saves a round trip).
        Like SQLite's ``synchronous=NORMAL`` for audit commits: a crash of sealbox loses
        nothing committed, a crash of the database host can lose the last moments (three
        ``wal_writer_delay`` periods, 600 ms by default). Every other write keeps the
        database's own setting. The head is read by a statement of its own, so that its
        snapshot is taken once the lock is held."""
        key = chain_lock_key(node)
        lock = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
        row = tx.execute(
            f"SELECT set_config('synchronous_commit', 'off', true), {lock}(hashtext(%s))",
            (key,),
        ).fetchone()
        if not wait and not row[1]:
            raise StorageBusy(f"audit chain {node!r} is being appended to by another process")
        return self._load_audit_head(node, tx)

    #: A lone event's INSERT, taking the chain lock in the same statement (no round trip
    #: more): the scalar subquery of the node column runs before the row is inserted, so
    #: the event waits for a write (or batch) appending to the chain to commit, instead of
    #: taking the position that write read as free under the lock. Without it a reader's
    #: event made a concurrent write's own event violate ``sb_audit_node_seq`` and the
    #: write failed (issue 17). The lock ends with the statement (autocommit) or with the
    #: transaction that also moves the head row.
    _INSERT_LONE = (
        "INSERT INTO sb_audit (at, actor, source, operation, path, version, outcome, reason,"
        " node, seq, event, prev, hash, link) VALUES (%s, %s, %s, %s, %s, %s, %s, %s,"
        " (SELECT %s::text FROM pg_advisory_xact_lock(hashtext(%s))), %s, %s, %s, %s, %s)"
    )

    def _insert_lone_event(self, tx: Tx, node: str, row: AuditRow) -> None:
        values = row[:14]
        tx.execute(self._INSERT_LONE, (*values[:9], chain_lock_key(node), *values[9:]))

    def _lock_audit_chain(self, tx: Tx, node: str, *, wait: bool = True) -> None:
        key = chain_lock_key(node)
        if wait:
            tx.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (key,))
            return
        row = tx.execute("SELECT pg_try_advisory_xact_lock(hashtext(%s))", (key,)).fetchone()
        if not row[0]:
            raise StorageBusy(f"audit chain {node!r} is being appended to by another process")

    def _translate(self, exc: Exception) -> SealboxError:
        return BackendUnavailable(f"storage error in {self.description}: {type(exc).__name__}")

    def _table_exists(self, tx: Tx, table: str) -> bool:
        row = tx.execute("SELECT to_regclass(%s)", (table,)).fetchone()
        return row is not None and row[0] is not None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


class PostgresChangeFeed:
    """Change notices through ``NOTIFY sealbox_changes`` (sent on the storage's own
    autocommit connection) and ``LISTEN`` (on a connection of the listener's own)."""

    persistent = True

    def __init__(self, storage: PostgresStorage) -> None:
        self._storage = storage
        self.origin = os.urandom(8).hex()

    def publish(self, payload: str) -> None:
        self._storage.notify(payload)

    def position(self) -> int | None:
        return None  # LISTEN hears what is sent after it; there is no history

    def listen(
        self,
        deliver: Callable[[str], None],
        keep_going: Callable[[], bool],
        ready: threading.Event,
        after: int | None = None,
    ) -> None:
        import psycopg

        try:
            with psycopg.connect(
                self._storage._dsn, autocommit=True, connect_timeout=self._storage._timeout
            ) as conn:
                conn.execute(f"LISTEN {CHANGE_CHANNEL}")
                ready.set()
                while keep_going():
                    for note in conn.notifies(timeout=1.0):
                        deliver(note.payload)
        finally:
            ready.clear()

    def close(self) -> None:
        """Nothing held: publishing uses the storage's connection."""
