"""The default sink: the vault's own database (queryable; one chain per node).

The ``event`` column holds the canonical record *without* its hash (exactly the bytes the
hash covers, encoded once on the hot path); the ``hash`` column holds the hash.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sealbox.audit.events import AuditKeys, Event, chain_encoded
from sealbox.storage.rows import AuditRow, SignHead

if TYPE_CHECKING:
    from sealbox.storage.interface import AuditWriter


def db_row(event: Event, chain_key: bytes | None, node: str, seq: int, prev: str) -> AuditRow:
    """``event`` chained at ``seq`` after ``prev``, as a database row."""
    return chained_row(event, chain_key, node, seq, prev)[1]


def chained_row(
    event: Event, chain_key: bytes | None, node: str, seq: int, prev: str
) -> tuple[Event, AuditRow]:
    """The chained record and its database row."""
    rec, body = chain_encoded(event, chain_key, node=node, seq=seq, prev=prev)
    return rec, AuditRow(
        rec["time"],
        rec["identity"]["name"],
        rec["source"]["kind"],
        rec["operation"],
        rec["path"],
        rec["version"],
        rec["outcome"],
        rec["reason"],
        node,
        seq,
        body.decode(),
        prev,
        rec["hash"],
        rec["link"],
    )


class DbSink:
    name = "db"

    def __init__(self, storage: AuditWriter) -> None:
        self._storage = storage
        #: Set by the recorder: the signer of the chain's head for an event at a time
        #: (None without the keys; the head then stays where the last keyed commit left it).
        self.head_for: Callable[[str], SignHead | None] | None = None

    def write(self, event: Event, keys: AuditKeys | None, node: str) -> Event:
        chain_key = keys.chain_key if keys is not None else None
        stored: list[Event] = []

        def build(seq: int, prev: str) -> AuditRow:
            rec, row = chained_row(event, chain_key, node, seq, prev)
            stored.append(rec)
            return row

        head = self.head_for(event["time"]) if self.head_for is not None else None
        self._storage.append_audit_event(node, build, head)
        return stored[-1]
