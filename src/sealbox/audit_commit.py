"""How a serving process makes its audit events durable: one strategy, chosen once.

``Vault.serve()`` chooses ``Vault.audit_commit``, an :class:`AuditCommit`; the server's
audit barrier talks to it and to nothing else of the audit trail. Its implementations
(``audit/commit.py``):

* ``"spool"`` (SQLite): each event is appended to this process's spool file as it is
  recorded, before the operation returns: nothing is ever :attr:`~AuditCommit.pending`.
  The spooled events are the :attr:`~AuditCommit.backlog`, stored in the database by
  :meth:`~AuditCommit.store` about :attr:`~AuditCommit.store_every` seconds later.
* ``"group"`` (PostgreSQL, or ``audit_spool = false``): events are held in memory
  (:attr:`~AuditCommit.pending`) until :meth:`~AuditCommit.commit` writes them all in one
  transaction. The caller must commit before it lets any result of an operation out.
* ``"direct"`` (a vault that is not served: the CLI, an embedding application): each
  event is committed in its own transaction before its operation returns.

The rule either way: a response may leave once :attr:`~AuditCommit.pending` is 0.

This module is a leaf (adapters may import it; it imports nothing of sealbox's).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol

Kind = Literal["spool", "group", "direct"]


class AuditCommit(Protocol):
    @property
    def kind(self) -> Kind: ...

    @property
    def store_every(self) -> float:
        """Seconds the backlog may wait before :meth:`store` (0 when there is none)."""

    @property
    def pending(self) -> int:
        """Events recorded and not yet durable: no response may leave while any are."""

    def commit(self, *, wait: bool = True) -> None:
        """Make the pending events durable (one transaction); AuditUnavailable if not.

        ``wait=False``: StorageBusy at once (the events stay pending) when another
        process is writing, instead of blocking the caller until it is done.
        """

    @property
    def backlog(self) -> int:
        """Events durable (spooled) and not yet in the database."""

    def store(self, *, wait: bool = True) -> int:
        """Move the backlog into the database (one transaction); how many events moved.

        ``wait=False``: StorageBusy at once when another process is writing.
        """

    def on_backlog(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` after each event joins the backlog."""
