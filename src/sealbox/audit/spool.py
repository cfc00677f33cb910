"""A server process's audit spool: each event reaches a file before its response leaves,
and the database in batches a few milliseconds later.

Why: an SQLite commit per read (the event's B-tree pages into the WAL) cost a sequential
server read about 80 µs, a quarter of the read; chaining the event (canonical JSON and an
HMAC) cost another 15. A record appended to a file costs one ``writev``, and gives what
that commit gave: with ``synchronous=NORMAL`` a WAL commit survives a killed process but not a
crashed machine, and so does a write into the page cache. The server drains the spool
into the database every :data:`DRAIN_EVERY` seconds, chaining the events there, off the
request path (``server/audit_barrier.py``); before each audit query, checkpoint and secret
write of its own; and when it stops.

Each spool belongs to one chain that only its process appends to: the process holds an
``flock`` on the file while it lives, so it numbers events from a head it keeps in memory.
A server's workers take slots ``0, 1, …`` of the configured node, that is chains ``NODE``,
``NODE#1``, … (docs/audit.md).

A spool file starts with :data:`MAGIC` and a 16-byte salt chosen by the process that
writes it; each record is ``<length: 4 bytes><counter: 8 bytes><tag: 16 bytes><payload>``.
The payload is ``marshal.dumps((seq, fields))``, the event as a flat tuple
(``events.Fields``: no dicts to build, and marshal costs a third of JSON; it is read back
only by this code, after its tag has been checked). The tag is GMAC under
``derive(chain key, "sealbox/audit/spool" || salt)`` with the counter as nonce, over the
previous record's tag (16 zero bytes for the first) and the payload: one AES-GCM call per
record where HMAC takes three, and a key that no other process uses, so counter nonces
never repeat under it.

A process killed with events spooled leaves them behind, and whoever takes the slot next
stores them: the records before the first one whose link fails (an edited, inserted,
deleted, reordered or forged record) are chained like any other event; the file, as found,
is kept as ``*.rejected`` evidence and an ``audit.recover`` event names the record. A last
record cut short by the kill is dropped (its request never got an answer).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import marshal
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from sealbox.audit.events import AuditKeys, Fields, event_from_fields
from sealbox.crypto import macs

if TYPE_CHECKING:
    from sealbox.storage.interface import AuditRow, Storage

#: How long an event may wait in the spool before the server stores it in the database.
DRAIN_EVERY = 0.02
#: Slots per node (server workers on one host sharing one vault file).
MAX_SLOTS = 64
#: Events spooled and not stored after which reads are refused (fail closed) rather than
#: let the spool grow while the database cannot take them.
MAX_BACKLOG = 100_000
#: A spool file starts with this and a 16-byte salt (the records' key is derived from it).
MAGIC = b"sealbox-spool-1\n"
_SALT = 16
_START = bytes(16)  # what the first record of a file links to
_RECORD = 4 + 8 + 16  # length, counter, tag


def _gmac(keys: AuditKeys, salt: bytes) -> macs.CounterGmac:
    return macs.CounterGmac(macs.derive(keys.chain_key, b"sealbox/audit/spool\0" + salt))


class Recovery(NamedTuple):
    """What a spool left by a process that did not stop cleanly held."""

    events: int  # events stored from it
    cut: bool  # its last line was cut short (dropped)
    problem: str | None  # the first line that failed its check, and where it was kept


def slot_node(node: str, slot: int) -> str:
    return node if slot == 0 else f"{node}#{slot}"


def _file_stem(node: str) -> str:
    readable = re.sub(r"[^A-Za-z0-9._-]", "_", node)[:80]
    return f"{readable}-{hashlib.sha256(node.encode()).hexdigest()[:10]}"


_OPEN = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW


def _claim(directory: Path, node: str) -> tuple[int, Path, int]:
    """Lock the first free slot's file: (slot, path, fd)."""
    directory.mkdir(mode=0o700, exist_ok=True)
    if directory.is_symlink():
        raise OSError(errno.ELOOP, f"{directory} is a symbolic link")
    directory.chmod(0o700)
    stem = _file_stem(node)
    for slot in range(MAX_SLOTS):
        path = directory / f"{stem}.{slot}.spool"
        fd = os.open(path, _OPEN, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.fchmod(fd, 0o600)
        except BlockingIOError:
            os.close(fd)
            continue
        except BaseException:
            os.close(fd)
            raise
        return slot, path, fd
    raise OSError(errno.EAGAIN, f"all {MAX_SLOTS} audit spool slots of {node} are taken")


def unstored(directory: Path) -> tuple[list[Path], list[Path]]:
    """Spool files that hold records and that no process owns (a server stopped without
    storing them: they are stored when a server takes the slot again), and spools kept
    aside by a recovery."""
    if not directory.is_dir():
        return [], []
    left = []
    for path in sorted(directory.glob("*.spool")):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            if os.fstat(fd).st_size <= len(MAGIC) + _SALT:
                continue
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            continue  # owned by a running server, which stores it
        finally:
            os.close(fd)
        left.append(path)
    return left, sorted(directory.glob("*.rejected"))


class AuditSpool:
    """The spool of one chain, owned by this process (see the module docstring)."""

    def __init__(self, storage: Storage, directory: Path, node: str, keys: AuditKeys) -> None:
        slot, self.path, self._fd = _claim(directory, node)
        self.node = slot_node(node, slot)
        self._storage = storage
        self._keys = keys
        # A key of this process's own (a fresh salt), so its counter nonces are new.
        salt = os.urandom(_SALT)
        self._gmac = _gmac(keys, salt)
        self._header = MAGIC + salt
        self._size = os.fstat(self._fd).st_size
        self._tag = _START
        #: (seq, event fields) spooled and not yet stored, oldest first.
        self.queue: list[tuple[int, Fields]] = []
        #: Called after each event is spooled (the server schedules a drain).
        self.on_pending: Callable[[], None] | None = None
        self.reload_head()

    def reload_head(self) -> None:
        """Continue from the stored head (after a write stored events of its own)."""
        self._head = self._storage.audit_head(self.node)
        self._next = self._head[0] + 1 + len(self.queue)

    # -- the request path ---------------------------------------------------------------------
    def append(self, fields: Fields) -> int:
        """Spool one event; its chain position. OSError (nothing kept) if the file fails."""
        if len(self.queue) >= MAX_BACKLOG:
            raise OSError(
                errno.ENOSPC, f"{MAX_BACKLOG} audit events wait for the database; none is taken"
            )
        seq = self._next
        payload = marshal.dumps((seq, fields))
        counter, tag = self._gmac.tag(self._tag + payload)
        head = len(payload).to_bytes(4, "big") + counter.to_bytes(8, "big") + tag
        parts = [self._header, head, payload] if not self._size else [head, payload]
        written = os.writev(self._fd, parts)
        if written != len(head) + len(payload) + (0 if self._size else len(self._header)):
            # A short write (a full disk) must not leave part of a record for the next
            # one to be appended to.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            raise OSError(errno.ENOSPC, "the audit spool took only part of an event")
        self._size += written
        self._tag = tag
        self._next = seq + 1
        self.queue.append((seq, fields))
        if self.on_pending is not None:
            self.on_pending()
        return seq

    # -- off the request path -----------------------------------------------------------------
    def drain(self, *, wait: bool = True) -> int:
        """Chain the spooled events and store them in one transaction; how many.

        ``wait=False``: :class:`~sealbox.errors.StorageBusy` at once when another process
        writes (the events stay spooled).
        """
        queue = self.queue
        if not queue:
            return 0
        rows = list(self._chained(queue))
        self._storage.store_audit_rows(rows, wait=wait)
        last = rows[-1]
        assert last.seq is not None
        self._head = (last.seq, last.hash)
        del queue[: len(rows)]
        if not queue:
            self._truncate()
        return len(rows)

    def _chained(self, queue: list[tuple[int, Fields]]) -> Iterator[AuditRow]:
        from sealbox.audit.sinks.db import db_row

        chain_key = self._keys.chain_key
        prev = self._head[1]
        for seq, fields in queue:
            row = db_row(event_from_fields(fields), chain_key, self.node, seq, prev)
            prev = row.hash
            yield row

    def _truncate(self) -> None:
        try:
            os.ftruncate(self._fd, 0)
        except OSError:
            return  # the stored records stay in the file; a recovery skips them
        self._size = 0
        self._tag = _START

    # -- a spool left behind ------------------------------------------------------------------
    def recover(self) -> Recovery:
        """Store what a previous owner of this slot spooled and did not store."""
        if not self._size:
            return Recovery(0, False, None)
        data = os.pread(self._fd, self._size, 0)
        stored = self._head[0]
        expected = stored + 1
        good: list[tuple[int, Fields]] = []
        problem: str | None = None
        for number, (seq, fields) in enumerate(self._records(data), 1):
            if seq < 0:
                problem = f"record {number} is not an intact spooled event"
                break
            if seq <= stored and not good:
                continue  # stored before the process stopped; only the truncation was lost
            if seq != expected:
                problem = f"record {number} holds seq {seq} where seq {expected} belongs"
                break
            good.append((seq, fields))
            expected += 1
        if problem is not None:
            problem = f"{problem}; the spool was kept as {self._set_aside(data)}"
        self.queue[:0] = good
        self._next = self._head[0] + 1 + len(self.queue)
        self.drain()
        self._truncate()
        return Recovery(len(good), self._cut, problem)

    _cut = False

    def _records(self, data: bytes) -> Iterator[tuple[int, Fields]]:
        """(seq, fields) of each record whose link holds; (-1, ()) for the first that does
        not. A last record cut short sets ``_cut``."""
        head = len(MAGIC) + _SALT
        if len(data) < head:
            self._cut = True  # killed while writing the header: no record was complete
            return
        if data[: len(MAGIC)] != MAGIC:
            yield -1, ()
            return
        gmac = _gmac(self._keys, data[len(MAGIC) : head])
        prev, at = _START, head
        while at < len(data):
            if len(data) - at < _RECORD:
                self._cut = True
                return
            length = int.from_bytes(data[at : at + 4], "big")
            counter = int.from_bytes(data[at + 4 : at + 12], "big")
            tag = data[at + 12 : at + _RECORD]
            end = at + _RECORD + length
            if end > len(data):
                self._cut = True
                return
            payload = data[at + _RECORD : end]
            if not gmac.check(counter, prev + payload, tag):
                yield -1, ()
                return
            try:
                # Only what the chain key vouched for (checked above) reaches marshal.
                seq, fields = marshal.loads(payload)  # noqa: S302
            except (ValueError, EOFError, TypeError):
                seq, fields = -1, None
            if not isinstance(seq, int) or not isinstance(fields, tuple) or len(fields) != 18:
                yield -1, ()
                return
            yield seq, fields
            prev, at = tag, end

    def _set_aside(self, data: bytes) -> Path:
        kept = self.path.with_name(f"{self.path.name}.{os.urandom(4).hex()}.rejected")
        fd = os.open(kept, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        return kept

    def close(self) -> None:
        """Release the slot (what is still spooled stays in the file for its next owner)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
