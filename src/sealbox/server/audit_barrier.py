"""Group commit of audit events: many requests, one transaction, nothing sent early.

The server's vault holds audit events in memory (``Vault.defer_audit``). Before a
response starts, its request awaits :meth:`AuditBarrier.wait`: the first waiter schedules
one flush with ``call_soon``, so every request that reached its response by then shares
that flush (one INSERT transaction instead of one per request). If the flush fails, every
waiter gets the error and answers 503 — fail closed: no value leaves before the event
that records its reading is stored.
"""

from __future__ import annotations

import asyncio

from sealbox.vault import Vault


class AuditBarrier:
    def __init__(self, vault: Vault) -> None:
        self._vault = vault
        self._next: asyncio.Future[None] | None = None
        self.flushes = 0

    async def wait(self) -> None:
        if self._next is None:
            if not self._vault.audit_pending:
                return
            loop = asyncio.get_running_loop()
            self._next = loop.create_future()
            loop.call_soon(self._flush)
        await asyncio.shield(self._next)

    def _flush(self) -> None:
        future, self._next = self._next, None
        assert future is not None
        self.flushes += 1
        try:
            self._vault.flush_audit()
        except BaseException as exc:
            future.set_exception(exc)
            # Every waiter re-raises it; nobody may leave it unretrieved.
            future.exception()
        else:
            future.set_result(None)
