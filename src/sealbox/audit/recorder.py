"""Records audit events to the vault's own storage.

An event names who did what to which path and version, and how it ended. It never holds
a secret value. If the event cannot be written the operation fails (fail closed).
"""

from __future__ import annotations

from typing import NamedTuple

from sealbox.storage.interface import AuditRow, Storage


class Actor(NamedTuple):
    """Who is acting and through which front end."""

    identity: str
    source: str


class AuditRecorder:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage

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
    ) -> None:
        self._storage.append_audit(
            AuditRow(at, actor.identity, actor.source, operation, path, version, outcome, reason)
        )
