"""A server process's audit spool: each event reaches a file before its response leaves,
and the database in batches a few milliseconds later.

Why: an SQLite commit per read (the event's B-tree pages into the WAL) cost a sequential
server read about 80 µs, a quarter of the read; chaining the event (canonical JSON and an
HMAC) cost another 15. A record appended to a file costs one ``writev``, and gives what
that commit gave: with ``synchronous=NORMAL`` a WAL commit survives a killed process but not a
crashed machine, and so does a write into the page cache. The server drains the spool
into the database every :data:`DRAIN_EVERY` seconds, chaining the events there, off the
request path (``server/fastpath/barrier.py``); before each audit query, checkpoint and secret
write of its own; and when it stops.

Each spool belongs to one chain that only its process appends to: the process holds an
``flock`` on the file while it lives, so it numbers events from a head it keeps in memory.
A server's workers take slots ``0, 1, …`` of the configured node, that is chains ``NODE``,
``NODE#1``, … (docs/audit.md).

A spool file starts with :data:`MAGIC`, a 16-byte salt chosen by the process that writes
it, and the name of its chain; each record is ``<length: 4 bytes><counter: 8 bytes><tag:
16 bytes><payload>``. The payload is ``marshal.dumps((seq, fields))``, the event as a flat
tuple (``events.Fields``: no dicts to build, and marshal costs a third of JSON; it is read
back only by this code, after its tag has been checked). The tag is GMAC under
``derive(chain key, "sealbox/audit/spool" || salt || chain)`` with the counter as nonce,
over the previous record's tag (16 zero bytes for the first) and the payload: one AES-GCM
call per record where HMAC takes three, and a key that no other process uses, so counter
nonces never repeat under it.

A process killed with events spooled leaves them behind, and the next server process to
start on the vault stores them in their own chain (whatever its own port or host name):
the records before the first one whose link fails (an edited, inserted, deleted,
reordered or forged record) are chained like any other event; the file, as found, is kept
as ``*.rejected`` evidence and an ``audit.recover`` event names the record. A last record
cut short by the kill is dropped (its request never got an answer).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import marshal
import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from sealbox.audit.events import AuditKeys, Fields, event_from_fields
from sealbox.crypto import macs

if TYPE_CHECKING:
    from sealbox.storage.interface import AuditStore
    from sealbox.storage.rows import AuditRow, SignHead

#: The signer of a chain head for events up to a time (``AuditRecorder.head_for``).
HeadFor = Callable[..., "SignHead | None"]

#: How long an event may wait in the spool before the server stores it in the database.
DRAIN_EVERY = 0.02
#: Slots per node (server workers on one host sharing one vault file).
MAX_SLOTS = 64
#: A drained spool file is emptied once it holds more than this; until then it keeps the
#: drained records, which the database's mark of the last drain vouches for: a spool cut
#: (or emptied) below that mark is found.
KEEP_BYTES = 1 << 20
#: Events spooled and not stored after which reads are refused (fail closed) rather than
#: let the spool grow while the database cannot take them.
MAX_BACKLOG = 100_000
#: A spool file starts with this and a 16-byte salt (the records' key is derived from it).
MAGIC = b"sealbox-spool-1\n"
_SALT = 16
_START = bytes(16)  # what the first record of a file links to
_RECORD = 4 + 8 + 16  # length, counter, tag


def _gmac(keys: AuditKeys, salt: bytes, node: str) -> macs.CounterGmac:
    label = b"sealbox/audit/spool\0" + salt + node.encode()
    return macs.CounterGmac(macs.derive(keys.chain_key, label))


def _header(salt: bytes, node: str) -> bytes:
    name = node.encode()
    return MAGIC + salt + len(name).to_bytes(2, "big") + name


def _parse_header(data: bytes) -> tuple[bytes, str, int] | None:
    """(salt, node, where the records start), or None if ``data`` is no whole header."""
    fixed = len(MAGIC) + _SALT + 2
    if len(data) < fixed or data[: len(MAGIC)] != MAGIC:
        return None
    end = fixed + int.from_bytes(data[fixed - 2 : fixed], "big")
    if len(data) < end:
        return None
    try:
        node = data[fixed:end].decode()
    except UnicodeDecodeError:
        return None
    return data[len(MAGIC) : len(MAGIC) + _SALT], node, end


def header_salt(data: bytes) -> str | None:
    """The hex salt of a spool's header (None if it has no whole header)."""
    head = _parse_header(data)
    return head[0].hex() if head is not None else None


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


def _claim(directory: Path, node: str) -> tuple[int, Path, int, bool]:
    """Lock the first free slot's file: (slot, path, fd, whether the file was there)."""
    directory.mkdir(mode=0o700, exist_ok=True)
    if directory.is_symlink():
        raise OSError(errno.ELOOP, f"{directory} is a symbolic link")
    directory.chmod(0o700)
    stem = _file_stem(node)
    for slot in range(MAX_SLOTS):
        path = directory / f"{stem}.{slot}.spool"
        existed = os.path.lexists(path)
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
        return slot, path, fd, existed
    raise OSError(errno.EAGAIN, f"all {MAX_SLOTS} audit spool slots of {node} are taken")


def owned_contents(path: Path) -> bytes | None:
    """A spool file's bytes if no process owns it (b"" when empty); None while its
    server holds it (or it cannot be read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return os.pread(fd, os.fstat(fd).st_size, 0)
    except OSError:
        return None  # owned by a running server, which stores it
    finally:
        os.close(fd)


class AuditSpool:
    """The spool of one chain, owned by this process (see the module docstring)."""

    def __init__(
        self,
        storage: AuditStore,
        directory: Path,
        node: str,
        keys: AuditKeys,
        head_for: HeadFor | None = None,
    ) -> None:
        slot, self.path, self._fd, self._existed = _claim(directory, node)
        self.node = slot_node(node, slot)
        self._storage = storage
        self._keys = keys
        self._head_for = head_for
        # A key of this process's own (a fresh salt), so its counter nonces are new.
        salt = self._salt = os.urandom(_SALT)
        self._gmac = _gmac(keys, salt, self.node)
        self._header = _header(salt, self.node)
        self._size = os.fstat(self._fd).st_size
        self._tag = _START
        #: (seq, event fields, where its record ends in the file) spooled and not yet
        #: stored, oldest first.
        self.queue: list[tuple[int, Fields, int]] = []
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
        self.queue.append((seq, fields, self._size))
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
        batch = queue[:]
        rows = list(_chained(self._keys, self.node, self._head[1], batch))
        last = rows[-1]
        assert last.seq is not None
        end = batch[-1][2]
        # Emptied after this drain when it grew large: the mark then says "nothing kept"
        # (were it to say where the records end, a kill before the truncation would not
        # matter either: the file is only ever longer than the mark).
        empty = end > KEEP_BYTES and len(queue) == len(batch)
        head_for = self._head_for
        try:
            self._storage.store_audit_rows(
                rows,
                wait=wait,
                head=head_for(
                    last.at, spool=self._mark(0, 0) if empty else self._mark(last.seq, end)
                )
                if head_for is not None
                else None,
            )
        except BaseException:
            # NOTE: a failure after the commit (a lost COMMIT answer, an interrupt) must
            # not leave stored events queued: every later drain would insert them again,
            # fail on the (node, seq) index, and hold back every event after them. Only
            # this process appends to this chain, so the head says whether they are stored.
            if not self._stored(last.seq, last.hash):
                raise
        self._head = (last.seq, last.hash)
        del queue[: len(rows)]
        if empty and not queue:
            self._truncate()
        return len(rows)

    def _stored(self, seq: int, hash_: str) -> bool:
        """Whether the chain's stored head is exactly (seq, hash_); False if unknown."""
        try:
            return self._storage.audit_head(self.node) == (seq, hash_)
        except Exception:
            return False

    def _truncate(self) -> None:
        try:
            os.ftruncate(self._fd, 0)
        except OSError:
            return  # the stored records stay in the file; a recovery skips them
        self._size = 0
        self._tag = _START

    # -- a spool left behind ------------------------------------------------------------------
    def recover(self) -> list[tuple[str, Recovery]]:
        """Store what a previous owner of this slot spooled and did not store, and what
        spools no process owns hold (a server killed and started again on another port or
        host name leaves its spool under another name): ``(chain, what was found)`` each.

        A spool that a chain's signed head says is open, and whose file is gone (or holds
        less than its last drain left), is a problem too: its unstored events were lost.
        Then this spool's own chain head is signed saying it is open.
        """
        found = []
        marks = spool_marks(self._storage)
        own = marks.pop(self.path.name, None)
        if own is not None and not self._existed:
            found.append((own.node, Recovery(0, False, spool_missing(own))))
        elif self._size or (own is not None and own.size):
            found.append((self.node, _recover(self._storage, self._keys, self._fd, self.path, own)))
            self._size = 0
        closed = set()  # chains whose spool this start stored (or found missing)
        live = set()
        for path in sorted(self.path.parent.glob("*.spool")):
            if path == self.path:
                continue
            try:
                fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # its owner lives: skip it
                mark = marks.pop(path.name, None)
                if os.fstat(fd).st_size or (mark is not None and mark.size):
                    node = _node_of(fd) or (mark.node if mark is not None else path.name)
                    found.append((node, _recover(self._storage, self._keys, fd, path, mark)))
                if mark is not None:
                    closed.add(mark.node)
            except BlockingIOError:
                live.add(path.name)
            finally:
                os.close(fd)
        for name, mark in marks.items():
            if name not in live:
                found.append((mark.node, Recovery(0, False, spool_missing(mark))))
                closed.add(mark.node)
        for node in sorted(closed - {self.node}):
            self._sign_mark(node, "")
        self._sign_mark(self.node, self._mark(0, 0))
        self.reload_head()
        return found

    def _mark(self, seq: int, size: int) -> str:
        """This spool's state for its chain's signed head."""
        return f"{self.path.name} {self._salt.hex()} {seq} {size}"

    def _sign_mark(self, node: str, spool: str) -> None:
        sign = self._head_for(_now(), spool=spool) if self._head_for is not None else None
        if sign is not None:
            self._storage.mark_audit_head(node, sign)

    def close(self) -> None:
        """Release the slot (what is still spooled stays in the file for its next owner;
        an emptied spool is signed closed: a clean stop leaves nothing to account for)."""
        if self._fd < 0:
            return
        try:
            if not self.queue:
                self._truncate()
            if not self._size:
                self._sign_mark(self.node, "")
        finally:
            os.close(self._fd)
            self._fd = -1


class SpoolMark(NamedTuple):
    """What a chain's signed head says of the spool it is written through."""

    node: str
    file: str
    salt: str
    seq: int  # its last drain stored this seq, the file then holding it up to byte size
    size: int  # 0: nothing kept (just opened, or emptied since)
    at: str  # when the head said so


def spool_marks(storage: AuditStore) -> dict[str, SpoolMark]:
    """Open spools by file name, as the chains' heads record them."""
    marks = {}
    for head in storage.audit_head_marks().values():
        parts = head.spool.split(" ")
        if len(parts) == 4 and parts[2].isdigit() and parts[3].isdigit():
            file, salt, seq, size = parts
            marks[file] = SpoolMark(head.node, file, salt, int(seq), int(size), head.at)
    return marks


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat()


def spool_missing(mark: SpoolMark) -> str:
    return (
        f"{mark.file}: the audit spool of chain {mark.node} (open at {mark.at}) is missing: "
        "a server stopped without closing it and the file was removed, so the events it "
        f"had not stored yet are lost [file: {mark.file}]"
    )


def _chained(
    keys: AuditKeys, node: str, prev: str, queue: Sequence[tuple[int, Fields, int]]
) -> Iterator[AuditRow]:
    """The database rows of spooled events, chained after ``prev``."""
    from sealbox.audit.sinks.db import db_row

    chain_key = keys.chain_key
    for seq, fields, _ in queue:
        row = db_row(event_from_fields(fields), chain_key, node, seq, prev)
        prev = row.hash
        yield row


def _node_of(fd: int) -> str | None:
    head = _parse_header(os.pread(fd, len(MAGIC) + _SALT + 2 + 4096, 0))
    return head[1] if head is not None else None


class SpoolCheck(NamedTuple):
    """What a spool file holds, checked record by record (nothing stored)."""

    node: str
    good: list[tuple[int, Fields, int]]  # the intact records after the chain's stored head
    cut: bool  # its last record was cut short (a kill while writing it)
    problem: str | None  # the first record that fails its check, with its byte offset


def check_spool(
    storage: AuditStore, keys: AuditKeys, data: bytes, mark: SpoolMark | None = None
) -> SpoolCheck:
    """Check a spool's records against its chain key and the chain's stored head, and,
    given the database's ``mark`` of its last drain, that it was not cut below it."""
    head = _parse_header(data)
    good: list[tuple[int, Fields, int]] = []
    if head is None:
        if MAGIC.startswith(data[: len(MAGIC)]) and len(data) < len(MAGIC) + _SALT + 2 + 256:
            return SpoolCheck("", good, True, _below(mark, data, None))  # killed in the header
        return SpoolCheck("", good, False, "its header is not a sealbox spool's (byte 0)")
    salt, node, start = head
    stored, _ = storage.audit_head(node)
    expected = stored + 1
    marked: int | None = None  # the seq of the record that ends where the mark says
    cut = False
    problem = None
    for number, (offset, seq, fields) in enumerate(
        _records(_gmac(keys, salt, node), data, start), 1
    ):
        if seq == -2:
            cut = True
            break
        if seq < 0:
            problem = f"record {number} (byte {offset}) is not an intact spooled event"
            break
        end = offset + _RECORD + len(marshal.dumps((seq, fields)))
        if mark is not None and end == mark.size:
            marked = seq
        if seq <= stored and not good:
            continue  # stored before the process stopped; only the truncation was lost
        if seq != expected:
            problem = (
                f"record {number} (byte {offset}) holds seq {seq} where seq {expected} belongs"
            )
            break
        good.append((seq, fields, end))
        expected += 1
    if problem is None and mark is not None and mark.size and marked != mark.seq:
        problem = _below(mark, data, marked)
    return SpoolCheck(node, good, cut, problem)


def _below(mark: SpoolMark | None, data: bytes, marked: int | None) -> str | None:
    """The spool holds less than its last drain left in it (None: it does not)."""
    if mark is None or not mark.size or (marked is not None and marked == mark.seq):
        return None
    return (
        f"cut short: it ends at byte {len(data)}, but its last drain stored seq {mark.seq} "
        f"with the file holding it up to byte {mark.size}"
        if len(data) < mark.size
        else f"no record ends at byte {mark.size} with seq {mark.seq}, where its last drain "
        "left one"
    )


def _recover(
    storage: AuditStore, keys: AuditKeys, fd: int, path: Path, mark: SpoolMark | None = None
) -> Recovery:
    """Store the intact records of a spool nobody is writing (its lock is held), in its
    chain; keep the file aside if a record fails its check, or if it holds less than its
    last drain left (``mark``); empty the spool."""
    data = os.pread(fd, os.fstat(fd).st_size, 0)
    found = check_spool(storage, keys, data, mark)
    good, node = found.good, found.node
    if good:
        prev = storage.audit_head(node)[1]
        # The head moves when the recovering process signs the chain's spool closed.
        storage.store_audit_rows(list(_chained(keys, node, prev, good)))
    problem = found.problem
    if problem is not None:
        kept = _set_aside(path, data)
        problem = f"{path.name}: {problem}; the spool was kept as {kept} [file: {kept.name}]"
    os.ftruncate(fd, 0)
    return Recovery(len(good), found.cut, problem)


def _records(gmac: macs.CounterGmac, data: bytes, at: int) -> Iterator[tuple[int, int, Fields]]:
    """(offset, seq, fields) of each record whose link holds; seq -1 for the first that
    does not, -2 for a last record cut short."""
    prev = _START
    while at < len(data):
        if len(data) - at < _RECORD:
            yield at, -2, ()
            return
        length = int.from_bytes(data[at : at + 4], "big")
        counter = int.from_bytes(data[at + 4 : at + 12], "big")
        tag = data[at + 12 : at + _RECORD]
        end = at + _RECORD + length
        if end > len(data):
            yield at, -2, ()
            return
        payload = data[at + _RECORD : end]
        if not gmac.check(counter, prev + payload, tag):
            yield at, -1, ()
            return
        try:
            # Only what the chain key vouched for (checked above) reaches marshal.
            seq, fields = marshal.loads(payload)  # noqa: S302
        except (ValueError, EOFError, TypeError):
            seq, fields = -1, None
        if not isinstance(seq, int) or not isinstance(fields, tuple) or len(fields) != 18:
            yield at, -1, ()
            return
        yield at, seq, fields
        prev, at = tag, end


def _set_aside(path: Path, data: bytes) -> Path:
    kept = path.with_name(f"{path.name}.{os.urandom(4).hex()}.rejected")
    fd = os.open(kept, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    return kept
