"""Audit rows as flat, JSON-friendly dicts, and the answers built from them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sealbox.storage.rows import AuditRow


def flat_event(row: AuditRow) -> dict[str, Any]:
    """One event for display: identity, source, operation, path, versions, outcome."""
    try:
        rec = json.loads(row.event) if row.event else {}
    except ValueError:
        rec = {}
    if not isinstance(rec, dict):
        rec = {}
    ident: dict[str, Any] = rec["identity"] if isinstance(rec.get("identity"), dict) else {}
    src: dict[str, Any] = rec["source"] if isinstance(rec.get("source"), dict) else {}
    return {
        "at": row.at,
        "time": row.at,
        "actor": row.actor,
        "identity": row.actor,
        "identity_id": ident.get("id"),
        "auth_method": ident.get("auth_method"),
        "token_accessor": ident.get("token_accessor"),
        "source": row.source,
        "remote_addr": src.get("remote_addr"),
        "user_agent": src.get("user_agent"),
        "hostname": src.get("hostname"),
        "pid": src.get("pid"),
        "operation": row.operation,
        "path": row.path,
        "version": row.version,
        "versions": rec.get("versions") or [],
        "outcome": row.outcome,
        "reason": row.reason,
        "request_id": rec.get("request_id"),
        "node": row.node,
        "seq": row.seq,
    }


def touches(event: dict[str, Any], path: str, version: int | None) -> bool:
    """Whether an event handed out ``path`` (at ``version``, if given)."""
    for v in event["versions"]:
        if v.get("path") == path and (version is None or v.get("version") == version):
            return True
    return False


@dataclass(frozen=True)
class Access:
    """A secret's last access: when, by whom, how."""

    path: str
    time: str
    identity: str
    operation: str
    source: str


@dataclass(frozen=True)
class Reader:
    """An identity that received a secret's value in a window."""

    identity: str
    sources: tuple[str, ...]
    first: str
    last: str
    count: int
    versions: tuple[int, ...]
