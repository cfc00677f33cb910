"""PostgreSQL storage (``psycopg`` 3): the backend several servers share.

The current version of a secret is read ``FOR UPDATE`` inside the write transaction, so
concurrent writers serialise on the secret's row; the first write of a new secret is
guarded by the table's unique constraint and retried once on a race.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sealbox.errors import BackendUnavailable, Conflict, SealboxError
from sealbox.storage.sql import Dialect, SqlStorage, Tx


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
            raise Conflict("a concurrent write created the same secret; retry the write") from exc
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
            raise Conflict("a concurrent write took this position; retry") from exc
        except psycopg.OperationalError:
            raise BackendUnavailable(f"{self.description} is unavailable") from None
        except psycopg.Error as exc:
            raise self._translate(exc) from None

    def _lock_audit_chain(self, tx: Tx, node: str) -> None:
        tx.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"sealbox-audit:{node}",))

    def _translate(self, exc: Exception) -> SealboxError:
        return BackendUnavailable(f"storage error in {self.description}: {type(exc).__name__}")

    def _table_exists(self, tx: Tx, table: str) -> bool:
        row = tx.execute("SELECT to_regclass(%s)", (table,)).fetchone()
        return row is not None and row[0] is not None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
