"""``sealbox audit verify``: walk every chain and check it against heads and checkpoints."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from sealbox.audit.events import (
    LINK_HMAC,
    AuditKeys,
    ChainItem,
    ChainReport,
    checkpoint_message,
    head_valid,
    verify_chain,
)
from sealbox.crypto import macs

# NOTE: re-exported: the result is a model value (the SDK returns it too).
from sealbox.model import Verification as Verification  # noqa: PLC0414
from sealbox.storage.rows import GENESIS, AuditQuery, AuditRow, CheckpointRow, HeadRow

if TYPE_CHECKING:
    from sealbox.audit.spool import SpoolMark
    from sealbox.storage.interface import AuditStore, Storage

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
    seen: set[int] = set()
    for where, cp in checkpoints:
        msg = checkpoint_message(vault_id, sink, cp.node, cp.seq, cp.hash, cp.at, cp.prev_seq)
        try:
            sig = bytes.fromhex(cp.signature)
        except ValueError:
            sig = b""
        if public is None or not macs.signature_valid(public, msg, sig):
            findings.append(f"{where}: checkpoint of seq {cp.seq} modified (bad signature)")
            continue
        if cp.prev_seq > 0 and cp.prev_seq not in seen:
            findings.append(
                f"{label}: checkpoint of seq {cp.prev_seq} deleted (the {where} of seq "
                f"{cp.seq} names it as the one before)"
            )
        seen.add(cp.seq)
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


def _first_headed(items: Sequence[ChainItem]) -> int:
    """The seq of the chain's first keyed event recorded under signed heads (format 2,
    schema 7 on); 0 if none: every writer since keeps the head."""
    for it in items:
        rec = it.record
        if rec is not None and rec.get("link") == LINK_HMAC:
            fmt, seq = rec.get("format"), rec.get("seq")
            if isinstance(fmt, int) and fmt >= 2 and isinstance(seq, int):
                return seq
    return 0


def _check_head(
    report: ChainReport,
    head: HeadRow | None,
    headed: int,
    keys: AuditKeys,
    vault_id: str,
    checkpointed: set[int],
    findings: list[str],
    notices: list[str],
    label: str,
) -> None:
    """The chain must reach its signed head: a chain cut after it (or a head moved back,
    deleted, replaced or downgraded) is found; so is a deleted checkpoint the head names.
    ``headed``: the first event recorded under signed heads (0: a chain from before)."""
    if report.finding is not None:
        return
    if head is None or not head_valid(keys, vault_id, head):
        what = (
            "deleted"
            if head is None
            else ("not signed" if not head.signature else "modified (bad signature)")
        )
        if headed:
            findings.append(
                f"{label}: head {what} (the chain has events recorded under signed heads "
                f"from seq {headed} on)"
            )
        elif head is not None or report.last_keyed_seq:
            notices.append(
                f"{label}: no signed head yet (a chain from before schema 7; its next keyed "
                "event or `sealbox audit checkpoint` signs it)"
            )
        return
    if head.seq == 0 and head.hash == GENESIS:
        pass  # a spool opened on a chain with no event yet
    elif head.seq > report.last_seq:
        findings.append(
            f"{label}: tail truncated (it ends at seq {report.last_seq}; the signed head "
            f"records seq {head.seq} at {head.at})"
        )
    elif report.hashes.get(head.seq) != head.hash:
        findings.append(
            f"{label}: seq {head.seq} does not match the signed head (events up to it were "
            "rewritten)"
        )
    elif headed and head.since > headed:
        findings.append(
            f"{label}: head deleted or replaced before seq {head.since} (a writer found no "
            f"head signed by this vault and started a new one at seq {head.since}, but "
            f"events from seq {headed} on were recorded under signed heads)"
        )
    elif head.checkpoint_seq and head.checkpoint_seq not in checkpointed:
        findings.append(
            f"{label}: checkpoint of seq {head.checkpoint_seq} deleted (the signed head "
            "names it as the newest)"
        )


def _check_versions(storage: Storage, findings: list[str]) -> int:
    """Every stored version has its write event (``write``/``rollback``, or
    ``rotation.pending`` for the version a rotation created; allowed) in the database;
    how many versions were checked."""
    refs = storage.version_refs()
    if not refs:
        return 0
    # NOTE: a rotation's version is written by its create step, whose event (in the same
    # transaction, with the value's HMAC) is rotation.pending: without it every rotated
    # secret was reported as tampered.
    query = AuditQuery(
        operations=("write", "rollback", "rotation.pending"), outcomes=("allowed",), limit=None
    )
    written = {(r.path, r.version) for r in storage.query_audit(query)}
    missing = [f"{p} version {v}" for p, v in refs if (p, v) not in written]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        findings.append(
            f"secret {missing[0]}{more}: no write event in the audit trail (events deleted; "
            f"{len(missing)} of {len(refs)} stored versions are unaccounted for)"
        )
    return len(refs)


def verify_database(
    storage: Storage,
    keys: AuditKeys,
    public: bytes | None,
    vault_id: str,
    *,
    check_versions: bool = True,
) -> Verification:
    findings: list[str] = []
    notices: list[str] = []
    summary: list[str] = []
    heads = storage.audit_head_marks()
    checkpoints = storage.list_audit_checkpoints()
    nodes = storage.audit_nodes()
    for node in nodes:
        items = [_row_item(r) for r in storage.audit_chain(node)]
        report = verify_chain(items, keys.chain_key, node=node)
        label = f"db chain {node!r}"
        if report.finding:
            findings.append(f"{label}: {report.finding}")
        mine = [(f"db checkpoint {i + 1}", cp) for i, cp in enumerate(checkpoints)]
        mine = [(w, cp) for w, cp in mine if cp.node == node]
        highest = _check_checkpoints(report, mine, public, vault_id, "db", findings, label)
        head = heads.get(node)
        _check_head(
            report,
            head,
            _first_headed(items),
            keys,
            vault_id,
            {cp.seq for _, cp in mine},
            findings,
            notices,
            label,
        )
        _tail_notices(report, max(highest, head.seq if head else 0), label, notices)
        summary.append(
            f"{label}: {report.events} events, last seq {report.last_seq}, "
            f"last checkpoint at seq {highest or '-'}, signed head at seq "
            f"{head.seq if head and head.signature else '-'}"
        )
    if check_versions:
        checked = _check_versions(storage, findings)
        summary.append(f"secret versions with their write events: {checked} checked")
    else:
        notices.append(
            "the db sink is not configured here: secret versions were not checked against "
            "their write events"
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


#: How a recovery's ``audit.recover`` event and an ``audit.accept`` event name a file.
_FILE = re.compile(r"\[file: ([^\]\s]+)\]")
ACCEPT = "audit.accept"


def named_file(reason: str) -> str | None:
    found = _FILE.search(reason)
    return found.group(1) if found else None


class SpoolReport(NamedTuple):
    """Spools verify accounts for: what needs an operator (file name -> what is wrong),
    what was accepted, and what is worth knowing."""

    flagged: dict[str, str]
    accepted: dict[str, AuditRow]
    notices: list[str]


def spool_report(
    storage: AuditStore, keys: AuditKeys | None, directory: Path | None
) -> SpoolReport:
    """Rejected spools, spools whose recovery found them missing, pending spools a stopped
    server left (their records checked, nothing stored) and open spools whose file is gone;
    each rejected or missing one stays flagged until an ``audit.accept`` event names it."""
    from sealbox.audit.spool import owned_contents, spool_marks, spool_missing

    flagged: dict[str, str] = {}
    notices: list[str] = []
    events = storage.query_audit(
        AuditQuery(operations=("audit.recover", ACCEPT), limit=None, newest_first=False)
    )
    accepted = {}
    for row in events:
        name = named_file(row.reason)
        if name is None:
            continue
        if row.operation == ACCEPT and row.outcome == "allowed":
            accepted[name] = row
        elif row.operation == "audit.recover" and row.outcome == "error":
            flagged[name] = f"{row.reason} (audit.recover, chain {row.node!r} seq {row.seq})"
    if directory is not None and directory.is_dir():
        for path in sorted(directory.glob("*.rejected")):
            flagged.setdefault(
                path.name, f"{path}: a spool that failed its check at a server start"
            )
        markers = spool_marks(storage)
        for path in sorted(directory.glob("*.spool")):
            data = owned_contents(path)
            mark = markers.pop(path.name, None)
            if data is None:
                continue  # its server runs and stores it
            if keys is None:
                notices.append(f"{path}: a spool a stopped server left (unchecked: sealed)")
                continue
            problem, notice = _left_spool(storage, keys, path, data, mark)
            if problem is not None:
                flagged[path.name] = problem
            elif notice is not None:
                notices.append(notice)
        for name, mark in markers.items():
            flagged.setdefault(name, spool_missing(mark))
    return SpoolReport(flagged, accepted, notices)


def _left_spool(
    storage: AuditStore, keys: AuditKeys, path: Path, data: bytes, mark: SpoolMark | None
) -> tuple[str | None, str | None]:
    """(problem, notice) of a spool file no process owns."""
    from sealbox.audit.spool import check_spool, header_salt

    check = check_spool(storage, keys, data, mark) if data or mark else None
    if check is not None and check.problem is not None:
        chain = check.node or "?"
        return (
            f"{path}: {check.problem} (a spool of chain {chain!r} that its server left, "
            "altered since)"
        ), None
    if mark is not None and data and header_salt(data) != mark.salt:
        return f"{path}: its header is not the one its server opened (the file was replaced)", None
    if check is not None and check.good:
        cut = " (a last record cut short)" if check.cut else ""
        return None, (
            f"{path}: {len(check.good)} events a stopped server spooled and did not store yet, "
            f"intact{cut} (the next server start stores them)"
        )
    if mark is not None:
        return None, (
            f"{path}: a server stopped without closing this spool (its head last moved at "
            f"{mark.at}); it holds no unstored events (what it spooled after its last drain, "
            "~20 ms, cannot be accounted for)"
        )
    return None, None


def spool_findings(report: SpoolReport) -> tuple[list[str], list[str]]:
    """(findings, notices): a flagged spool is a finding until it was accepted."""
    findings, notices = [], list(report.notices)
    for name, what in sorted(report.flagged.items()):
        ok = report.accepted.get(name)
        if ok is None:
            findings.append(f"{what}; after review: sealbox audit verify --accept-rejected {name}")
        else:
            notices.append(f"{name}: accepted by {ok.actor} at {ok.at} (rejected or missing spool)")
    return findings, notices
