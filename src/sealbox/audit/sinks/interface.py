"""The Sink Protocol: where audit events go (the database, a JSONL file, a stream)."""

from __future__ import annotations

from typing import Protocol

from sealbox.audit.events import AuditKeys, Event


class Sink(Protocol):
    """Accepts an event or raises (any ``OSError`` or ``SealboxError`` is a refusal).

    Chained sinks (database, file) add the chain fields themselves and return the
    record they stored; stream sinks return None.
    """

    name: str

    def write(self, event: Event, keys: AuditKeys | None, node: str) -> Event | None: ...
