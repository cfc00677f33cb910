"""The audit barrier: no response starts before its request's audit events are durable
by the rule of the vault's :class:`~sealbox.audit_commit.AuditCommit` (the one thing of
the audit trail it talks to).

Group commit: many requests, one transaction, nothing sent early. The strategy holds
audit events in memory (``pending``). Before a response starts, its request awaits
:meth:`AuditBarrier.wait`: the first waiter schedules one flush with ``call_soon``, so
every request that reached its response by then shares that flush (one INSERT
transaction instead of one per request). If the flush fails, every
waiter gets the error and answers 503 — fail closed: no value leaves before the event
that records its reading is stored.

Another process writing the database (a second worker, the CLI) does not block the event
loop: the flush tries without waiting (``StorageBusy``), and tries again
:data:`BUSY_RETRY` seconds later, so requests arriving meanwhile join the batch. (SQLite's
own busy handler sleeps 1, 2, 5 ms… with the whole loop stopped.) After
:data:`BUSY_PATIENCE` seconds of that it waits for the lock like any other write.

The spool (SQLite): the events do not wait for a commit at all: each is appended to this
process's spool file as it is recorded, so :meth:`AuditBarrier.wait` finds nothing
pending and only makes sure a drain of the backlog into the database is scheduled (the
strategy's ``store_every`` seconds later, one transaction for every event spooled by
then; a busy database is tried again :data:`DRAIN_RETRY` seconds later).

Each waiter awaits a future of its own (not one shared future behind ``asyncio.shield``,
which costs a second future and a second loop turn per request): a cancelled request
cancels only its own wait, and the flush wakes each waiter with one callback.
"""

from __future__ import annotations

import asyncio
import time

from sealbox.audit_commit import AuditCommit
from sealbox.errors import SealboxError, StorageBusy

BUSY_RETRY = 0.0002
BUSY_PATIENCE = 2.0
DRAIN_RETRY = 0.001
#: After a drain failed for another reason than a busy database (a full disk, say).
DRAIN_BACKOFF = 1.0


class AuditBarrier:
    def __init__(self, commit: AuditCommit) -> None:
        self._commit = commit
        self._waiters: list[asyncio.Future[None]] = []
        self._busy_since: float | None = None
        self.flushes = 0
        self.flushed = 0
        self.busy = 0
        self._drain_scheduled = False
        self.drains = 0
        self.drained = 0
        self.drain_errors = 0
        commit.on_backlog(self.schedule_drain)

    def counts(self) -> tuple[int, int, int, int, int, int, int]:
        """(flushes, requests woken by them, busy retries, drains, events drained, drain
        errors, events spooled now), for the metrics."""
        return (
            self.flushes,
            self.flushed,
            self.busy,
            self.drains,
            self.drained,
            self.drain_errors,
            self._commit.backlog,
        )

    async def wait(self) -> None:
        waiters = self._waiters
        if not waiters and not self._commit.pending:
            return
        loop = asyncio.get_running_loop()
        if not waiters:
            loop.call_soon(self._flush)
        future: asyncio.Future[None] = loop.create_future()
        waiters.append(future)
        await future

    def schedule_drain(self) -> None:
        """An event was spooled: store it (and whatever joins it) store_every from now."""
        if self._drain_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # spooled outside a request (start-up): the next request's drain takes it
        self._drain_scheduled = True
        loop.call_later(self._commit.store_every, self._drain)

    def _drain(self) -> None:
        """Store the spooled events (on the loop: the storage connection is the loop's)."""
        delay = 0.0
        try:
            count = self._commit.store(wait=False)
        except StorageBusy:
            self.busy += 1
            delay = DRAIN_RETRY
        except Exception as exc:
            # Still spooled (the requests were answered safely): try again later.
            self.drain_errors += 1
            _warn_drain(exc)
            delay = DRAIN_BACKOFF
        else:
            self.drains += 1
            self.drained += count
        if delay or self._commit.backlog:
            asyncio.get_running_loop().call_later(delay or self._commit.store_every, self._drain)
        else:
            self._drain_scheduled = False

    def _flush(self) -> None:
        now = time.monotonic()
        patient = self._busy_since is None or now - self._busy_since < BUSY_PATIENCE
        try:
            self._commit.commit(wait=not patient)
        except StorageBusy:
            self.busy += 1
            if self._busy_since is None:
                self._busy_since = now
            asyncio.get_running_loop().call_later(BUSY_RETRY, self._flush)
            return
        except BaseException as exc:
            self._wake(exc)
        else:
            self._wake(None)

    def _wake(self, exc: BaseException | None) -> None:
        waiters, self._waiters = self._waiters, []
        self._busy_since = None
        self.flushes += 1
        self.flushed += len(waiters)
        if exc is not None:
            for future in waiters:
                if not future.done():
                    future.set_exception(exc)
        else:
            for future in waiters:
                if not future.done():
                    future.set_result(None)


def _warn_drain(exc: Exception) -> None:
    import logging

    # The type and code only: an unexpected error's message could quote anything.
    code = exc.code if isinstance(exc, SealboxError) else type(exc).__name__
    logging.getLogger("sealbox.audit").warning(
        "storing spooled audit events failed (%s); they stay in the spool", code
    )
