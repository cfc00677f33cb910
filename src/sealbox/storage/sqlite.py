"""SQLite storage: the embedded default (stdlib ``sqlite3``, WAL, foreign keys).

Write transactions start with ``BEGIN IMMEDIATE`` so a writer takes the database's write
lock before reading the current version: two processes writing one secret serialise
instead of both computing the same next version. Write transactions run with
``synchronous=FULL``, so an acknowledged write survives a crash of the process or the
machine. Audit events run with ``synchronous=NORMAL``: in WAL mode their commits survive
a crash of the process (what the SIGKILL tests check) but not of the machine, and cost no
fsync on every read.

One connection does both. (A second connection for the audit events let each of its
commits invalidate the first one's page cache, so the next read of a secret went back to
the file: a third of the read's SQL time in the server.)
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING

from sealbox.errors import BackendUnavailable, Conflict, SealboxError, StorageBusy
from sealbox.storage.schema import Dialect
from sealbox.storage.sql import SqlStorage, Tx

if TYPE_CHECKING:
    from sealbox.storage.sqlite_serving import Checkpointer, SqliteChangeFeed

BUSY_TIMEOUT_MS = 10_000
#: Change notices kept; older ones are dropped (a listener that far behind resyncs).
CHANGES_KEPT = 10_000


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

    _checkpointer: Checkpointer | None = None

    dialect = Dialect(blob="BLOB", serial_pk="INTEGER PRIMARY KEY", placeholder="?")

    def __init__(self, path: Path, *, create: bool = False) -> None:
        self.path = Path(path)
        self.description = str(self.path)
        if not create and not self.path.exists():
            from sealbox.errors import NotInitialised

            raise NotInitialised(
                f"no vault at {self.path}",
                hint="initialise a vault there first",
                hint_key="init_vault",
            )
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not self.path.exists():
                # Create the file 0600 before SQLite opens it with the process umask.
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
                os.close(fd)
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
            self._conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as exc:
            raise _translate(exc, self.description) from exc

    @contextmanager
    def _tx(self, *, write: bool, durable: bool = True, wait: bool = True) -> Iterator[Tx]:
        conn = self._conn
        full = write and durable
        try:
            if full:
                conn.execute("PRAGMA synchronous = FULL")
            if wait:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            else:
                self._begin_now(write)
        except sqlite3.Error as exc:
            self._relax(full)
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
            if write:
                self._restart_wal_if_due()
        finally:
            self._relax(full)

    def _restart_wal_if_due(self) -> None:
        """After a commit: copy the last WAL frames when the checkpoint thread asks, so the
        next write starts the WAL over (see ``sqlite_serving.Checkpointer``)."""
        checkpointer = self._checkpointer
        if checkpointer is not None and checkpointer.restart_due:
            checkpointer.restart_due = False
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    _feed: SqliteChangeFeed | None = None

    def change_feed(self) -> SqliteChangeFeed:
        if self._feed is None:
            from sealbox.storage.sqlite_serving import SqliteChangeFeed

            self._feed = SqliteChangeFeed(self)
        return self._feed

    def record_change(self, payload: str) -> None:
        """Append a change notice (after the change committed; a lost notice costs a
        listener one live update, never data, so it is not fsynced)."""
        from datetime import datetime

        try:
            cur = self._conn.execute(
                "INSERT INTO sb_changes (at, payload) VALUES (?, ?)",
                (datetime.now(UTC).isoformat(), payload),
            )
            if cur.lastrowid and cur.lastrowid % 1000 == 0:
                self._conn.execute(
                    "DELETE FROM sb_changes WHERE id <= ?", (cur.lastrowid - CHANGES_KEPT,)
                )
        except sqlite3.Error as exc:
            raise _translate(exc, self.description) from exc

    def last_change(self) -> int:
        try:
            row = self._conn.execute("SELECT COALESCE(MAX(id), 0) FROM sb_changes").fetchone()
        except sqlite3.Error as exc:
            raise _translate(exc, self.description) from exc
        return int(row[0])

    def serve(self) -> None:
        """Checkpoint the WAL from a background thread instead of inside request commits.

        An automatic checkpoint runs inside the commit that crosses 1,000 WAL pages and
        copies them there: a stall of several milliseconds on the event loop every couple
        of hundred audit batches (the server's p99). A thread (``sqlite_serving.Checkpointer``)
        does that work on a connection of its own, without the GIL.
        """
        if self._checkpointer is not None:
            return
        from sealbox.storage.sqlite_serving import Checkpointer

        self._conn.execute("PRAGMA wal_autocheckpoint = 0")
        self._checkpointer = Checkpointer(self.path)
        self._checkpointer.start()

    def spool_dir(self) -> Path:
        """``<vault file>.audit-spool/``: a line written there survives what a
        ``synchronous=NORMAL`` commit survives (a killed process, not a crashed machine)
        at a fraction of its cost (see ``audit/spool.py``)."""
        return self.path.with_name(self.path.name + ".audit-spool")

    def _begin_now(self, write: bool) -> None:
        """BEGIN without SQLite's busy handler, which sleeps 1, 2, 5 ms… between tries."""
        conn = self._conn
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise StorageBusy(
                    f"{self.description} is being written by another process"
                ) from exc
            raise
        finally:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    def _relax(self, full: bool) -> None:
        if full:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA synchronous = NORMAL")

    def _audit_tx(self, *, wait: bool = True) -> AbstractContextManager[Tx]:
        return self._tx(write=True, durable=False, wait=wait)

    @contextmanager
    def _append_tx(self) -> Iterator[Tx]:
        try:
            with self._audit_tx() as tx:
                yield tx
        except BackendUnavailable as exc:
            if isinstance(exc.__cause__, sqlite3.IntegrityError):
                raise Conflict("a concurrent write took this position; retry") from exc
            raise

    @contextmanager
    def _single(self, *, audit: bool = False) -> Iterator[Tx]:
        try:
            yield self._conn
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
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        self._conn.close()
