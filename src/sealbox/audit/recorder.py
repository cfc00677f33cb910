"""Records audit events to the configured sinks, failing closed.

An event names who did what to which path and version(s), through which system, and how
it ended; values appear only as HMACs under the vault's audit key. If no sink accepts an
event the operation is refused with :class:`~sealbox.errors.AuditUnavailable` (unless the
recorder was built with the unsafe ``fail_open=True``, for development).
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from sealbox.audit.events import AuditKeys, Event, Fields, checkpoint_message, event_from_fields
from sealbox.caller import Actor
from sealbox.errors import AuditUnavailable, SealboxError, Sealed, StorageBusy

if TYPE_CHECKING:
    from sealbox.audit.sinks.interface import Sink
    from sealbox.audit.spool import AuditSpool
    from sealbox.kms.interface import KeyRing
    from sealbox.storage.interface import AuditStore
    from sealbox.storage.rows import CheckpointRow, HeadRow, SignHead


def _warn(message: str, *args: object) -> None:
    # NOTE: logging is imported only when there is something to say (~2 ms of start-up).
    import logging

    logging.getLogger("sealbox.audit").warning(message, *args)


#: A lone event (an embedded process's: no drain, no batch) moves its chain's signed
#: head at most this often; :meth:`AuditRecorder.close` moves it over the rest.
HEAD_EVERY = 0.02
#: A checkpoint is signed automatically every this many events of a node's chain (when
#: the recorder holds the keys).
CHECKPOINT_EVERY = 1000
DEFAULT_NODE = "local"
#: Value HMACs remembered (per secret version; see ``_value_hmac``).
HMAC_CACHE = 4096


#: (path, version, value) of a secret version an operation touched; the value is only
#: used to compute its HMAC and is never stored.
Touched = tuple[str, int, bytes | None]


class AuditRecorder:
    def __init__(
        self,
        storage: AuditStore,
        *,
        sinks: Sequence[Sink] | None = None,
        node: str = DEFAULT_NODE,
        fail_open: bool = False,
    ) -> None:
        self._storage = storage
        if sinks is None:
            from sealbox.audit.sinks.db import DbSink

            sinks = [DbSink(storage)]
        if not sinks:
            raise AuditUnavailable("no audit sink is configured", hint="configure [audit] sinks")
        self.sinks = list(sinks)
        for sink in self.sinks:
            if sink.name == "db" and hasattr(sink, "head_for"):
                sink.head_for = self._lone_head
        self.node = node
        self.fail_open = fail_open
        self._provider: KeyRing | None = None
        self._vault_id = ""
        self._keys: AuditKeys | None = None
        #: node -> the head row this process stored last (trusted without a check).
        self._heads_written: dict[str, HeadRow] = {}
        self._head_moved = -HEAD_EVERY  # monotonic time a lone event last moved the head
        self._unheaded = False  # lone events appended since
        #: node -> seq of its newest checkpoint (what a signed head names; loaded lazily).
        self._checkpoints: dict[str, int] | None = None
        #: Server mode: events wait in memory until :meth:`flush` writes them in one
        #: transaction (group commit); the server flushes before any response leaves.
        self.deferred = False
        #: Server mode on a backend that spools (SQLite): the database sink appends each
        #: event to this process's spool file, and :meth:`drain` stores them in batches.
        self._spool: AuditSpool | None = None
        #: Spooling, and the database is the only sink: events need no dict on the way.
        self._spool_only = False
        self._checkpoint_due = False
        self._checkpoint_at = ""
        self._pending: list[tuple[Event, AuditKeys | None, str, str, str]] = []
        self._hmacs: dict[tuple[str, int, int, int], str] = {}
        # Event ids: a random prefix per recorder and a counter (unique without a
        # getrandom() call per event on a server's read path).
        self._id_prefix = os.urandom(8).hex()
        self._ids = itertools.count(1)

    def use_keys(self, provider: KeyRing, vault_id: str) -> None:
        """The vault was unlocked: key events and HMAC values from now on."""
        if self._provider is not provider:
            self._provider, self._vault_id, self._keys = provider, vault_id, None
            self._hmacs.clear()

    def audit_keys(self) -> AuditKeys | None:
        """The audit keys if this process unlocked the vault, else None."""
        if self._keys is None and self._provider is not None:
            from sealbox.audit.keys import load_audit_keys

            self._keys = load_audit_keys(self._storage, self._provider, self._vault_id)
        return self._keys

    def head_for(
        self, at: str, checkpoint: int | None = None, spool: str | None = None
    ) -> SignHead | None:
        """The signer of a chain head committed with events up to time ``at`` (or by a
        checkpoint of that seq, or naming the chain's spool state ``spool``: else the
        stored head's is carried over); None when this process holds no keys (its unkeyed
        events then stay after the signed head).

        Called once per commit of events (a drain, a batch, a write, a lone event), never
        per event of a batch. The head is MACed under the audit key (HMAC-SHA256, ~2 µs:
        an Ed25519 signature, and the import it needs, would cost an embedded CLI process
        ~15 ms); checkpoints stay signed for whoever verifies with the public key only.
        """
        keys = self._keys if self._keys is not None else self.audit_keys()
        if keys is None:
            return None
        if self._checkpoints is None:
            self._checkpoints = self._newest_checkpoints()
        vault_id, checkpoints, written = self._vault_id, self._checkpoints, self._heads_written

        def sign(node: str, seq: int, hash_: str, start: int, stored: HeadRow | None) -> HeadRow:
            from sealbox.audit.events import head_message, head_tag, head_valid
            from sealbox.storage.rows import HeadRow

            cp = checkpoints.get(node, 0) if checkpoint is None else checkpoint
            if stored is not None and (
                stored == written.get(node) or head_valid(keys, vault_id, stored)
            ):
                since = stored.since or 1
                cp = max(cp, stored.checkpoint_seq)
                carried = stored.spool
            else:
                # No head, or one this vault did not sign: a new line of heads starts
                # at this commit's first event (verify reports one that should not).
                since, carried = start + 1, ""
            sp = carried if spool is None else spool
            msg = head_message(vault_id, node, seq, hash_, at, cp, since, sp)
            row = HeadRow(node, seq, hash_, at, cp, head_tag(keys, msg), since, sp)
            written[node] = row
            return row

        return sign

    def _lone_head(self, at: str) -> SignHead | None:
        """The head signer for a lone event's own transaction, if one is due: an
        embedded process commits each event alone, and a loop of reads must not pay a
        signature each (the rest are covered by the next due one, or by :meth:`close`)."""
        now = time.monotonic()
        if now - self._head_moved < HEAD_EVERY:
            self._unheaded = True
            return None
        sign = self.head_for(at)
        if sign is not None:
            self._head_moved, self._unheaded = now, False
        return sign

    def _newest_checkpoints(self) -> dict[str, int]:
        newest: dict[str, int] = {}
        for cp in self._storage.list_audit_checkpoints():
            newest[cp.node] = max(newest.get(cp.node, 0), cp.seq)
        return newest

    def require_keys(self) -> AuditKeys:
        keys = self.audit_keys()
        if keys is None:
            raise Sealed("the audit keys need the vault unlocked")
        return keys

    def record(
        self,
        *,
        at: str,
        actor: Actor,
        operation: str,
        path: str,
        version: int | None = None,
        outcome: str = "allowed",
        reason: str = "",
        touched: Sequence[Touched] = (),
        immediate: bool = False,
    ) -> None:
        """Record an event (held in memory in server mode unless ``immediate``)."""
        # NOTE: a server's read runs this on cold caches, where every call and lookup
        # costs several times what it does in a loop: hence the flat code.
        keys = self._keys if self._keys is not None else self.audit_keys()
        event_id = f"{self._id_prefix}{next(self._ids):08x}"
        identity, source, identity_id, auth_method, accessor, remote, agent, host, pid, rid = actor
        if len(touched) == 1:
            p, v, value = touched[0]
            versions: tuple[tuple[str, int, str | None], ...] = (
                (p, v, self._value_hmac(keys, p, v, value) if keys is not None else None),
            )
        else:
            versions = tuple(
                (p, v, self._value_hmac(keys, p, v, value) if keys is not None else None)
                for p, v, value in touched
            )
        fields: Fields = (
            at,
            event_id,
            rid or event_id,
            identity_id or None,
            identity,
            auth_method or None,
            accessor,
            source,
            remote,
            agent,
            host,
            pid,
            operation,
            path,
            version,
            versions,
            outcome,
            reason,
        )
        spool = self._spool
        if spool is not None and self._spool_only and not immediate:
            # A server's read path: the flat event goes to the spool, nothing else.
            try:
                seq = spool.append(fields)
            except OSError as exc:
                _warn("audit sink db refused an event: %s", _describe(exc))
                self._refused(operation, path)
                return
            if seq % CHECKPOINT_EVERY == 0:
                # Signed once the drain has stored it, off the request path.
                self._checkpoint_due, self._checkpoint_at = True, at
            return
        event = event_from_fields(fields)
        if self.deferred and not immediate:
            self._pending.append((event, keys, at, operation, path))
            return
        if immediate:
            # Inside the caller's storage transaction: a checkpoint (its own
            # transaction) waits for :meth:`after_commit`.
            self._checkpoint_due |= self._write(event, keys, at, operation, path, batch=True)
            return
        self._write(event, keys, at, operation, path, fields=fields)

    def _value_hmac(
        self, keys: AuditKeys, path: str, version: int, value: bytes | None
    ) -> str | None:
        """The value's HMAC, remembered per version: a server reads the same versions over
        and over, and versions never change.

        The key holds the value's length and its ``hash()`` (SipHash under this process's
        random key), never the value: a version number reused after a purge gets a new
        entry unless its new value also collides in 64 bits.
        """
        if value is None:
            return None
        key = (path, version, len(value), hash(value))
        cache = self._hmacs
        found = cache.get(key)
        if found is None:
            if len(cache) >= HMAC_CACHE:
                cache.clear()
            found = cache[key] = keys.value_hmac(value)
        return found

    def after_commit(self, at: str) -> None:
        """Make a checkpoint that fell due inside a storage transaction."""
        if self._checkpoint_due:
            self._checkpoint_due = False
            try:
                self.checkpoint(at, nodes=(self.node,))
            except SealboxError as exc:  # pragma: no cover - a later checkpoint covers it
                _warn("periodic audit checkpoint failed: %s", exc.code)

    def spool(self) -> list[str] | None:
        """Server mode: spool the database sink's events (see ``audit/spool.py``) if the
        backend has a place for a spool. None if it has not; else the problems found in
        spools that stopped processes had left (each stored as far as it was intact)."""
        directory = self._storage.spool_dir()
        if directory is None or self._spool is not None:
            return None
        if not any(sink.name == "db" for sink in self.sinks):
            return None  # nothing to store later: the sinks are written as events come
        from sealbox.audit.spool import AuditSpool

        keys = self.require_keys()
        try:
            spool = AuditSpool(self._storage, directory, self.node, keys, self.head_for)
        except OSError as exc:
            raise AuditUnavailable(
                f"cannot open an audit spool in {directory}: {exc.strerror or exc}",
                hint="make the vault's directory writable by the server, or set "
                "audit_spool = false (SEALBOX_AUDIT_SPOOL=0) to commit events instead",
            ) from None
        try:
            found = spool.recover()
        except OSError as exc:
            spool.close()
            raise AuditUnavailable(
                f"cannot read the audit spool {spool.path}: {exc.strerror or exc}"
            ) from None
        except BaseException:
            spool.close()
            raise
        self._spool, self.node = spool, spool.node
        self._spool_only = len(self.sinks) == 1
        problems = []
        for chain, left in found:
            if left.events or left.cut:
                _warn(
                    "stored %d audit event(s) a stopped process had spooled for chain %s%s",
                    left.events,
                    chain,
                    "; dropped a record cut short by a crash" if left.cut else "",
                )
            if left.problem:
                _warn("the audit spool of chain %s failed its check: %s", chain, left.problem)
                problems.append(left.problem)
        return problems

    def drain(self, *, wait: bool = True) -> int:
        """Store the spooled events (one transaction), then a checkpoint that fell due."""
        spool = self._spool
        if spool is None:
            return 0
        count = spool.drain(wait=wait)
        if self._checkpoint_due and not spool.queue:
            self.after_commit(self._checkpoint_at)
        return count

    def settle(self) -> None:
        """Before a query, checkpoint or write of this process: spooled events are stored."""
        if self._spool is not None and self._spool.queue:
            self.drain()

    def after_write(self) -> None:
        """A write stored its own event in its transaction: the spool continues after it."""
        if self._spool is not None:
            self._spool.reload_head()

    def when_spooled(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after each event is spooled."""
        if self._spool is not None:
            self._spool.on_pending = callback

    @property
    def spooled(self) -> int:
        spool = self._spool
        return len(spool.queue) if spool is not None else 0

    def close(self) -> None:
        """Store what is spooled (or leave it for the slot's next owner) and let go."""
        spool, self._spool = self._spool, None
        self._spool_only = False
        if spool is None:
            if self._unheaded:
                self._unheaded = False
                from datetime import UTC, datetime

                sign = self.head_for(datetime.now(UTC).isoformat())
                if sign is not None:
                    try:
                        self._storage.mark_audit_head(self.node, sign)
                    except SealboxError as exc:  # the events stand; only the mark lags
                        _warn("the audit head of %s was not moved: %s", self.node, exc.code)
            return
        try:
            spool.drain()
        except SealboxError as exc:
            _warn("spooled audit events stay in %s for the next start: %s", spool.path, exc.code)
        finally:
            spool.close()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def flush(self, *, wait: bool = True) -> None:
        """Write every deferred event, the database's in one transaction.

        Raises :class:`AuditUnavailable` (nothing of the batch kept) when the events could
        not be recorded; the server then answers 503 to every request of the batch. With
        ``wait=False``, a database another writer holds raises
        :class:`~sealbox.errors.StorageBusy` at once and the events stay pending.
        """
        pending, self._pending = self._pending, []
        if not pending:
            return
        due_checkpoint = False
        try:
            # StorageBusy can only come from starting the batch: no sink has seen an event.
            head = self.head_for(pending[-1][2])
            with self._storage.audit_batch(self.node, wait=wait, head=head):
                for event, keys, at, operation, path in pending:
                    due_checkpoint |= self._write(event, keys, at, operation, path, batch=True)
        except StorageBusy:
            self._pending = pending + self._pending
            raise
        if due_checkpoint:
            try:
                self.checkpoint(pending[-1][2], nodes=(self.node,))
            except SealboxError as exc:  # pragma: no cover - a later checkpoint covers it
                _warn("periodic audit checkpoint failed: %s", exc.code)

    def _write(
        self,
        event: Event,
        keys: AuditKeys | None,
        at: str,
        operation: str,
        path: str,
        *,
        batch: bool = False,
        fields: Fields | None = None,
    ) -> bool:
        """Hand one event to every sink; True when a checkpoint is due (batch mode)."""
        accepted = 0
        db_record: Event | None = None
        spool = None if batch or fields is None else self._spool
        for sink in self.sinks:
            try:
                if spool is not None and fields is not None and sink.name == "db":
                    stored: Event | None = {"seq": spool.append(fields)}
                else:
                    stored = sink.write(event, keys, self.node)
            except (OSError, SealboxError, ValueError) as exc:
                _warn("audit sink %s refused an event: %s", sink.name, _describe(exc))
                continue
            accepted += 1
            if sink.name == "db":
                db_record = stored
        if not accepted:
            self._refused(operation, path)
            return False
        due = (
            db_record is not None
            and keys is not None
            and int(db_record["seq"]) % CHECKPOINT_EVERY == 0
        )
        if due and batch:
            return True  # after the batch commits
        if due and self._spool is not None:
            # Signed once the drain has stored it, off the request path.
            self._checkpoint_due, self._checkpoint_at = True, at
            return False
        if due:
            try:
                self.checkpoint(at, nodes=(self.node,))
            except SealboxError as exc:  # pragma: no cover - a later checkpoint covers it
                _warn("periodic audit checkpoint failed: %s", exc.code)
        return False

    def _refused(self, operation: str, path: str) -> None:
        """No sink accepted an event: refuse the operation (unless unsafely failing open)."""
        if self.fail_open:
            _warn(
                "UNSAFE: no audit sink accepted the %s event for %s; continuing because "
                "audit_fail_open is set",
                operation,
                path,
            )
            return
        raise AuditUnavailable(
            f"the {operation} of {path} was refused: no audit sink accepted its event",
            hint="free disk space or fix the audit sinks ([audit] sinks in config.toml); "
            "failing open exists for development only",
            hint_key="audit_sinks",
        )

    def checkpoint(self, at: str, nodes: Sequence[str] | None = None) -> list[CheckpointRow]:
        """Sign chain heads now: every database chain's (or those of ``nodes``), and the
        file sinks'. Each checkpoint names the node's previous one, and the node's head
        row is signed again naming it (so deleting the newest checkpoint is found too)."""
        from sealbox.audit.keys import key_id, load_signing_key, verify_key
        from sealbox.audit.sinks.jsonl import JsonlSink, append_line, last_state
        from sealbox.crypto import macs
        from sealbox.storage.rows import CheckpointRow

        self.settle()
        if self._provider is None:
            raise Sealed("signing a checkpoint needs the vault unlocked")
        private = load_signing_key(self._storage, self._provider, self._vault_id)
        public = verify_key(self._storage)
        assert public is not None
        kid = key_id(public)
        made = []
        newest = self._newest_checkpoints()
        for node, (seq, hash_) in sorted(self._storage.audit_heads().items()):
            if nodes is not None and node not in nodes:
                continue
            prev = newest.get(node, 0)
            msg = checkpoint_message(self._vault_id, "db", node, seq, hash_, at, prev)
            row = CheckpointRow(node, seq, hash_, at, macs.sign(private, msg).hex(), kid, prev)
            self._storage.add_audit_checkpoint(row, self.head_for(at, checkpoint=seq))
            newest[node] = seq
            made.append(row)
        self._checkpoints = newest
        for sink in self.sinks:
            if isinstance(sink, JsonlSink):
                state = last_state(sink.path)
                if state is None:
                    continue
                seq, hash_ = state
                msg = checkpoint_message(self._vault_id, "file", self.node, seq, hash_, at)
                append_line(
                    sink.path,
                    {
                        "kind": "checkpoint",
                        "node": self.node,
                        "seq": seq,
                        "hash": hash_,
                        "time": at,
                        "signature": macs.sign(private, msg).hex(),
                        "key_id": kid,
                    },
                )
        return made


def _describe(exc: Exception) -> str:
    if isinstance(exc, SealboxError):
        return exc.code
    if isinstance(exc, OSError):
        return f"{exc.strerror or type(exc).__name__}"
    return type(exc).__name__
