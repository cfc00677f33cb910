"""What only a serving process needs of SQLite: the WAL checkpoint thread and the change
feed's listener. (Kept apart so that ``sealbox run`` never imports ``threading``.)"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sealbox.storage.sqlite import SqliteStorage

#: Seconds between the WAL checkpoints of a serving process (see SqliteStorage.serve).
CHECKPOINT_INTERVAL = 0.25
#: WAL length (pages) at which the checkpoint thread makes the WAL start over.
WAL_RESTART_PAGES = 8000
#: Seconds between a change listener's looks at ``sb_changes`` (SqliteChangeFeed).
POLL_INTERVAL = 0.05


class Checkpointer(threading.Thread):
    """Keeps a serving database's WAL short, from a thread of its own.

    Every :data:`CHECKPOINT_INTERVAL` seconds a PASSIVE checkpoint copies the WAL's pages
    into the database (it blocks nobody). But the WAL only starts over when a checkpoint
    has copied *every* frame before the next write, which never happens while writes keep
    coming: unbounded, it reached 580 MB in 15 s of reads, and every commit and page
    lookup grew slower with it. So once the WAL holds :data:`WAL_RESTART_PAGES` pages the
    thread sets :attr:`restart_due`, and the serving connection, right after its next
    commit, checkpoints the few pages written since (``SqliteStorage._tx``); its next
    write starts the WAL over. (A RESTART checkpoint from this thread does the
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
                        # mode=rw: never create a database where one was removed.
                        uri = f"{self._path.resolve().as_uri()}?mode=rw"
                        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
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
            # Once more at once: the serving connection then has only the frames of the
            # last moment to copy on its event loop, not those of a whole interval.
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            self.restart_due = True

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


class SqliteChangeFeed:
    """Change notices through the ``sb_changes`` table, polled every :data:`POLL_INTERVAL`.

    SQLite has no NOTIFY; the table is the only channel that reaches every process on the
    file (server workers, a second server, the CLI). Publishing is one INSERT after the
    write has committed; listening is one indexed SELECT per interval, on a read-only
    connection of the listener's own, and only while someone listens.
    """

    persistent = False

    def __init__(self, storage: SqliteStorage) -> None:
        self._storage = storage
        self.origin = os.urandom(8).hex()

    def publish(self, payload: str) -> None:
        self._storage.record_change(payload)

    def position(self) -> int | None:
        return self._storage.last_change()

    def listen(
        self,
        deliver: Callable[[str], None],
        keep_going: Callable[[], bool],
        ready: threading.Event,
        after: int | None = None,
    ) -> None:
        # mode=ro: a listener must never create a database where one was removed.
        uri = f"{self._storage.path.resolve().as_uri()}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        try:
            last = after
            if last is None:
                last = int(
                    conn.execute("SELECT COALESCE(MAX(id), 0) FROM sb_changes").fetchone()[0]
                )
            ready.set()
            while keep_going():
                rows = conn.execute(
                    "SELECT id, payload FROM sb_changes WHERE id > ? ORDER BY id LIMIT 1000",
                    (last,),
                ).fetchall()
                for change_id, payload in rows:
                    last = int(change_id)
                    deliver(str(payload))
                if len(rows) < 1000:
                    time.sleep(POLL_INTERVAL)
        finally:
            ready.clear()
            conn.close()

    def close(self) -> None:
        """Nothing held: publishing uses the storage's connection."""
