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
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sealbox.errors import BackendUnavailable, Conflict, SealboxError
from sealbox.storage.sql import Dialect, SqlStorage, Tx

BUSY_TIMEOUT_MS = 10_000
#: Seconds between the WAL checkpoints of a serving process (see SqliteStorage.serve).
CHECKPOINT_INTERVAL = 0.25
#: WAL length (pages) at which the checkpoint thread makes the WAL start over.
WAL_RESTART_PAGES = 8000


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


class _Checkpointer(threading.Thread):
    """Keeps a serving database's WAL short, from a thread of its own.

    Every :data:`CHECKPOINT_INTERVAL` seconds a PASSIVE checkpoint copies the WAL's pages
    into the database (it blocks nobody). But the WAL only starts over when a checkpoint
    has copied *every* frame before the next write, which never happens while writes keep
    coming: unbounded, it reached 580 MB in 15 s of reads, and every commit and page
    lookup grew slower with it. So once the WAL holds :data:`WAL_RESTART_PAGES` pages the
    thread sets :attr:`restart_due`, and the serving connection, right after its next
    audit commit, checkpoints the few pages written since (:meth:`SqliteStorage._audit_tx`);
    its next write starts the WAL over. (A RESTART checkpoint from this thread does the
    same but holds the write lock meanwhile, and SQLite's busy handler makes a waiting
    writer sleep 1, 2, 5 ms…: the server's p99.)
    """

    def __init__(self, path: Path) -> None:
        super().__init__(name="sealbox-wal-checkpoint", daemon=True)
        self._path = path
        self._stop_event = threading.Event()
        self.runs = 0
        self.restart_due = False

    def run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while not self._stop_event.wait(CHECKPOINT_INTERVAL):
                try:
                    if conn is None:
                        conn = sqlite3.connect(self._path, isolation_level=None)
                        conn.execute("PRAGMA busy_timeout = 100")
                    self.checkpoint(conn)
                except sqlite3.Error:
                    # The next round tries again; the WAL only grows meanwhile.
                    if conn is not None:
                        conn.close()
                    conn = None
        finally:
            if conn is not None:
                conn.close()

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        _busy, log, _done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.runs += 1
        if log >= WAL_RESTART_PAGES:
            self.restart_due = True

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


class SqliteStorage(SqlStorage):
    """A vault in one SQLite file."""

    _checkpointer: _Checkpointer | None = None

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
    def _tx(self, *, write: bool, durable: bool = True) -> Iterator[Tx]:
        conn = self._conn
        full = write and durable
        try:
            if full:
                conn.execute("PRAGMA synchronous = FULL")
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
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
        finally:
            self._relax(full)

    def serve(self) -> None:
        """Checkpoint the WAL from a background thread instead of inside request commits.

        An automatic checkpoint runs inside the commit that crosses 1,000 WAL pages and
        copies them there: a stall of several milliseconds on the event loop every couple
        of hundred audit batches (the server's p99). The thread (:class:`_Checkpointer`)
        does that work on a connection of its own, without the GIL.
        """
        if self._checkpointer is not None:
            return
        self._conn.execute("PRAGMA wal_autocheckpoint = 0")
        self._checkpointer = _Checkpointer(self.path)
        self._checkpointer.start()

    def _relax(self, full: bool) -> None:
        if full:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA synchronous = NORMAL")

    @contextmanager
    def _audit_tx(self) -> Iterator[Tx]:
        with self._tx(write=True, durable=False) as tx:
            yield tx
        checkpointer = self._checkpointer
        if checkpointer is not None and checkpointer.restart_due:
            checkpointer.restart_due = False
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

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
