"""Group commit of audit events: many requests, one transaction, nothing sent early.

The server's vault holds audit events in memory (``Vault.defer_audit``). Before a
response starts, its request awaits :meth:`AuditBarrier.wait`: the first waiter schedules
one flush with ``call_soon``, so every request that reached its response by then shares
that flush (one INSERT transaction instead of one per request). If the flush fails, every
waiter gets the error and answers 503 — fail closed: no value leaves before the event
that records its reading is stored.

Each waiter awaits a future of its own (not one shared future behind ``asyncio.shield``,
which costs a second future and a second loop turn per request): a cancelled request
cancels only its own wait, and the flush wakes each waiter with one callback.
"""

from __future__ import annotations

import asyncio

from sealbox.vault import Vault


class AuditBarrier:
    def __init__(self, vault: Vault) -> None:
        self._vault = vault
        self._waiters: list[asyncio.Future[None]] = []
        self.flushes = 0

    async def wait(self) -> None:
        waiters = self._waiters
        loop = asyncio.get_running_loop()
        if not waiters:
            if not self._vault.audit_pending:
                return
            loop.call_soon(self._flush)
        future: asyncio.Future[None] = loop.create_future()
        waiters.append(future)
        await future

    def _flush(self) -> None:
        waiters, self._waiters = self._waiters, []
        self.flushes += 1
        try:
            self._vault.flush_audit()
        except BaseException as exc:
            for future in waiters:
                if not future.done():
                    future.set_exception(exc)
        else:
            for future in waiters:
                if not future.done():
                    future.set_result(None)
