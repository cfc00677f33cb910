"""SQLite storage: the embedded default (stdlib ``sqlite3``, WAL, foreign keys).

Write transactions start with ``BEGIN IMMEDIATE`` so a writer takes the database's write
lock before reading the current version: two processes writing one secret serialise
instead of both computing the same next version. ``synchronous=FULL`` makes an
acknowledged write survive a crash of the process or the machine.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sealbox.errors import BackendUnavailable, Conflict, SealboxError
from sealbox.storage.sql import Dialect, SqlStorage, Tx

BUSY_TIMEOUT_MS = 10_000


def _translate(exc: sqlite3.Error, description: str) -> SealboxError:
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return BackendUnavailable(
            f"the vault {description} is locked by another process", hint="try again in a moment"
        )
    if "readonly" in text or "read-only" in text:
        return BackendUnavailable(f"the vault {description} is read-only")
    if "unable to open" in text:
        return BackendUnavailable(f"cannot open the vault {description}")
    if "not a database" in text or "malformed" in text:
        return BackendUnavailable(
            f"the vault {description} is not a sealbox database or is corrupt"
        )
    return BackendUnavailable(f"storage error in {description}: {type(exc).__name__}")


class SqliteStorage(SqlStorage):
    """A vault in one SQLite file."""

    dialect = Dialect(blob="BLOB", serial_pk="INTEGER PRIMARY KEY", placeholder="?")

    def __init__(self, path: Path, *, create: bool = False) -> None:
        self.path = Path(path)
        self.description = str(self.path)
        if not create and not self.path.exists():
            from sealbox.errors import NotInitialised

            raise NotInitialised(f"no vault at {self.path}", hint="create one with `sealbox init`")
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not self.path.exists():
                # Create the file 0600 before SQLite opens it with the process umask.
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
                os.close(fd)
        self._audit_conn: sqlite3.Connection | None = None
        try:
            self._conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                timeout=BUSY_TIMEOUT_MS / 1000,
                check_same_thread=False,
            )
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = self._conn.execute("PRAGMA journal_mode").fetchone()[0]
            if mode != "wal":
                # A read-only vault stays in its mode; writes will say read-only.
                with contextlib.suppress(sqlite3.OperationalError):
                    self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error as exc:
            raise _translate(exc, self.description) from exc

    @contextmanager
    def _tx(self, *, write: bool, conn: sqlite3.Connection | None = None) -> Iterator[Tx]:
        conn = conn or self._conn
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.Error as exc:
            raise _translate(exc, self.description) from exc
        try:
            yield conn
        except sqlite3.IntegrityError as exc:
            conn.execute("ROLLBACK")
            raise _translate(exc, self.description) from exc
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise _translate(exc, self.description) from exc
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        else:
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise _translate(exc, self.description) from exc

    @contextmanager
    def _audit_tx(self) -> Iterator[Tx]:
        # NOTE: audit events go through a second connection with synchronous=NORMAL. In
        # WAL mode its commits survive a crash of the process (what the SIGKILL tests
        # check) but not of the machine, and cost no fsync on every read; secret writes
        # keep synchronous=FULL so an acknowledged version is never lost.
        with self._tx(write=True, conn=self._audit_connection()) as tx:
            yield tx

    def _audit_connection(self) -> sqlite3.Connection:
        if self._audit_conn is None:
            try:
                conn = sqlite3.connect(
                    self.path,
                    isolation_level=None,
                    timeout=BUSY_TIMEOUT_MS / 1000,
                    check_same_thread=False,
                )
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                conn.execute("PRAGMA synchronous = NORMAL")
            except sqlite3.Error as exc:
                raise _translate(exc, self.description) from exc
            self._audit_conn = conn
        return self._audit_conn

    @contextmanager
    def _single(self, *, audit: bool = False) -> Iterator[Tx]:
        conn = self._audit_connection() if audit else self._conn
        try:
            yield conn
        except sqlite3.IntegrityError as exc:
            raise Conflict("a concurrent write took this position; retry") from exc
        except sqlite3.Error as exc:
            raise _translate(exc, self.description) from exc

    def _table_exists(self, tx: Tx, table: str) -> bool:
        row = tx.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        return row is not None

    def close(self) -> None:
        self._conn.close()
        if self._audit_conn is not None:
            self._audit_conn.close()
