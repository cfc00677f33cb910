"""The default sink: the vault's own database (queryable; one chain per node)."""

from __future__ import annotations

import json

from sealbox.audit.events import AuditKeys, Event, canonical, chain
from sealbox.storage.interface import AuditRow, Storage


class DbSink:
    name = "db"

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    def write(self, event: Event, keys: AuditKeys | None, node: str) -> Event:
        chain_key = keys.chain_key if keys is not None else None

        def build(seq: int, prev: str) -> AuditRow:
            rec = chain(event, chain_key, node=node, seq=seq, prev=prev)
            return AuditRow(
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
                canonical(rec).decode(),
                prev,
                rec["hash"],
                rec["link"],
            )

        row = self._storage.append_audit_event(node, build)
        record: Event = json.loads(row.event)
        return record
