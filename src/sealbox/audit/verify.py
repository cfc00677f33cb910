"""``sealbox audit verify``: walk every chain and check it against heads and checkpoints."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from sealbox.audit.events import AuditKeys, ChainItem, ChainReport, checkpoint_message, verify_chain
from sealbox.crypto import macs
from sealbox.storage.interface import AuditRow, CheckpointRow, Storage

#: Columns a query reads, and the record fields they must equal.
_COLUMNS = (
    ("at", ("time",)),
    ("actor", ("identity", "name")),
    ("source", ("source", "kind")),
    ("operation", ("operation",)),
    ("path", ("path",)),
    ("version", ("version",)),
    ("outcome", ("outcome",)),
    ("reason", ("reason",)),
    ("node", ("node",)),
    ("seq", ("seq",)),
    ("prev", ("prev",)),
    ("hash", ("hash",)),
    ("link", ("link",)),
)


class Verification(NamedTuple):
    findings: list[str]  # tampering: verify exits 7 on the first
    notices: list[str]  # worth knowing, not tampering (crash-cut lines, unkeyed tails)
    summary: list[str]


def _field(record: dict[str, object], keys: tuple[str, ...]) -> object:
    value: object = record
    for k in keys:
        value = value.get(k) if isinstance(value, dict) else None
    return value


def _row_item(row: AuditRow) -> ChainItem:
    pos = f"row {row.id} (seq {row.seq})"
    try:
        record = json.loads(row.event)
    except ValueError:
        return ChainItem(pos, None, "the stored record is not JSON")
    if not isinstance(record, dict):
        return ChainItem(pos, None, "the stored record is not an object")
    if "hash" in record:
        return ChainItem(pos, record, "the stored record carries its own hash")
    record["hash"] = row.hash  # the column holds it; the record is what it covers
    for column, keys in _COLUMNS:
        if getattr(row, column) != _field(record, keys):
            return ChainItem(pos, record, f"column {column} differs from the chained record")
    return ChainItem(pos, record)


def _check_checkpoints(
    report: ChainReport,
    checkpoints: Sequence[tuple[str, CheckpointRow]],
    public: bytes | None,
    vault_id: str,
    sink: str,
    findings: list[str],
    label: str,
) -> int:
    """Checkpoint findings for one chain; returns the highest checkpointed seq."""
    highest = 0
    for where, cp in checkpoints:
        msg = checkpoint_message(vault_id, sink, cp.node, cp.seq, cp.hash, cp.at)
        try:
            sig = bytes.fromhex(cp.signature)
        except ValueError:
            sig = b""
        if public is None or not macs.signature_valid(public, msg, sig):
            findings.append(f"{where}: checkpoint of seq {cp.seq} modified (bad signature)")
            continue
        highest = max(highest, cp.seq)
        if report.finding is None and cp.seq > report.last_seq:
            findings.append(
                f"{label}: tail truncated (it ends at seq "
                f"{report.last_seq}; a checkpoint signed seq {cp.seq} at {cp.at})"
            )
        elif report.finding is None and report.hashes.get(cp.seq) != cp.hash:
            findings.append(
                f"{label}: seq {cp.seq} does not match its checkpoint "
                "(events up to it were rewritten)"
            )
    return highest


def verify_database(
    storage: Storage, keys: AuditKeys, public: bytes | None, vault_id: str
) -> Verification:
    findings: list[str] = []
    notices: list[str] = []
    summary: list[str] = []
    heads = storage.audit_head_marks()
    checkpoints = storage.list_audit_checkpoints()
    for node in storage.audit_nodes():
        items = [_row_item(r) for r in storage.audit_chain(node)]
        report = verify_chain(items, keys.chain_key, node=node)
        if report.finding:
            findings.append(f"db chain {node!r}: {report.finding}")
        head = heads.get(node)
        if report.finding is None and head is not None and head[0] > report.last_seq:
            findings.append(
                f"db chain {node!r}: tail truncated (it ends at seq {report.last_seq}; the "
                f"head records seq {head[0]})"
            )
        mine = [(f"db checkpoint {i + 1}", cp) for i, cp in enumerate(checkpoints)]
        mine = [(w, cp) for w, cp in mine if cp.node == node]
        highest = _check_checkpoints(
            report, mine, public, vault_id, "db", findings, f"db chain {node!r}"
        )
        _tail_notices(report, highest, f"db chain {node!r}", notices)
        summary.append(
            f"db chain {node!r}: {report.events} events, last seq {report.last_seq}, "
            f"last checkpoint at seq {highest or '-'}"
        )
    unchained = storage.count_unchained_audit()
    if unchained:
        notices.append(f"{unchained} events were recorded before the chain existed (unverified)")
    return Verification(findings, notices, summary)


def _tail_notices(report: ChainReport, highest: int, label: str, notices: list[str]) -> None:
    notices.extend(f"{label}: {n}" for n in report.notices)
    if report.finding is None and report.last_seq > max(highest, report.last_keyed_seq):
        after = report.last_seq - max(highest, report.last_keyed_seq)
        notices.append(
            f"{label}: the last {after} event(s) follow the last keyed event and checkpoint "
            "(recorded by processes that never unlocked the vault)"
        )


def verify_file(path: Path, keys: AuditKeys, public: bytes | None, vault_id: str) -> Verification:
    from sealbox.audit.sinks.jsonl import chain_items, checkpoint_lines

    findings: list[str] = []
    notices: list[str] = []
    items = list(chain_items(path))
    first = next((it.record for it in items if it.record is not None), None)
    start_seq, start_prev = 0, "0" * 64
    if first is not None and isinstance(first.get("seq"), int) and first["seq"] > 1:
        start_seq, start_prev = int(first["seq"]) - 1, str(first.get("prev"))
        notices.append(
            f"{path.name}: the chain starts at seq {first['seq']} (earlier files were removed)"
        )
    node = str(first.get("node", "")) if first else ""
    report = verify_chain(items, keys.chain_key, node=node, prev=start_prev, seq=start_seq)
    if report.finding:
        findings.append(f"file {path}: {report.finding}")
    cps = []
    for where, obj in checkpoint_lines(path):
        try:
            cps.append(
                (
                    f"file {where}",
                    CheckpointRow(
                        str(obj["node"]),
                        int(obj["seq"]),
                        str(obj["hash"]),
                        str(obj["time"]),
                        str(obj["signature"]),
                        str(obj.get("key_id", "")),
                    ),
                )
            )
        except (KeyError, TypeError, ValueError):
            findings.append(f"file {where}: checkpoint modified (malformed)")
    highest = _check_checkpoints(report, cps, public, vault_id, "file", findings, f"file {path}")
    _tail_notices(report, highest, f"file {path}", notices)
    summary = [
        f"file {path}: {report.events} events, last seq {report.last_seq}, "
        f"last checkpoint at seq {highest or '-'}"
    ]
    return Verification(findings, notices, summary)
