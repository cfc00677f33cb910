"""Audit events as data: canonical JSON, the chain link, and chain verification.

An event is a plain dict (cheap to build on the hot path) with a fixed set of fields
(see ``docs/audit.md``). A *chained* record adds ``node``, ``seq``, ``prev``, ``link`` and
``hash``, where::

    hash = HMAC-SHA256(chain_key, bytes.fromhex(prev) || canonical(record without hash))

(``link = "hmac"``) or, for an event written by a process that never unlocked the vault
(listing a locked vault, a denied attempt), ``SHA-256(prev || canonical(...))``
(``link = "sha256"``). A keyed link covers everything before it, so an unkeyed event can
only be rewritten while no keyed event or checkpoint follows it. Verification here is
shared by every chained sink (the database and JSONL files).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from sealbox.crypto import macs
from sealbox.storage.rows import GENESIS

if TYPE_CHECKING:
    from sealbox.storage.rows import HeadRow

#: 2 from schema 7: recorded by a writer that keeps its chain's signed head (audit/verify.py).
EVENT_FORMAT = 2
LINK_HMAC = "hmac"
LINK_SHA256 = "sha256"
OUTCOMES = ("allowed", "denied", "error")
#: Operations that hand a secret value to someone: the answer to "who read it?".
VALUE_READS = frozenset({"read", "reveal", "run", "export", "scan.values"})

Event = dict[str, Any]


def canonical(obj: Any) -> bytes:
    """Canonical JSON: sorted keys, no spaces, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


#: An event as a flat tuple (what a server's spool keeps; audit/spool.py): time, id,
#: request_id, identity id, name, auth_method, token_accessor, source kind, remote_addr,
#: user_agent, hostname, pid, operation, path, version, ((path, version, value_hmac), ...),
#: outcome, reason.
Fields = tuple[Any, ...]


def event_from_fields(f: Fields) -> Event:
    """The event a :data:`Fields` tuple stands for."""
    (
        at,
        event_id,
        request_id,
        identity_id,
        name,
        auth_method,
        accessor,
        kind,
        remote_addr,
        user_agent,
        hostname,
        pid,
        operation,
        path,
        version,
        versions,
        outcome,
        reason,
    ) = f
    return {
        "format": EVENT_FORMAT,
        "id": event_id,
        "time": at,
        "request_id": request_id,
        "identity": {
            "id": identity_id,
            "name": name,
            "auth_method": auth_method,
            "token_accessor": accessor,
        },
        "source": {
            "kind": kind,
            "remote_addr": remote_addr,
            "user_agent": user_agent,
            "hostname": hostname,
            "pid": pid,
        },
        "operation": operation,
        "path": path,
        "version": version,
        "versions": [{"path": p, "version": v, "value_hmac": h} for p, v, h in versions],
        "outcome": outcome,
        "reason": reason,
    }


class AuditKeys(NamedTuple):
    """Sub-keys of a vault's audit key: one for value HMACs, one for the chain."""

    value_key: bytes
    chain_key: bytes

    @classmethod
    def from_audit_key(cls, key: bytes) -> AuditKeys:
        return cls(
            macs.derive(key, b"sealbox/audit/value-hmac"),
            macs.derive(key, b"sealbox/audit/chain"),
        )

    @property
    def head_key(self) -> bytes:
        """The sub-key chain heads are MACed under (derived from the chain key)."""
        return _head_key(self.chain_key)

    def value_hmac(self, value: bytes) -> str:
        """The HMAC an event carries in place of a value (and `sealbox audit hash` prints)."""
        return _mac_key(self.value_key).mac(value).hex()

    def __repr__(self) -> str:
        return "AuditKeys(***)"


@functools.lru_cache(maxsize=8)
def _head_key(chain_key: bytes) -> bytes:
    return macs.derive(chain_key, b"sealbox/audit/head")


@functools.lru_cache(maxsize=8)
def _mac_key(key: bytes) -> macs.MacKey:
    # A server MACs every read's value and chain link under the same two keys.
    return macs.MacKey(key)


def link_hash(chain_key: bytes | None, record: Event) -> str:
    """The chain hash of a record (its ``hash`` field excluded)."""
    body = {k: v for k, v in record.items() if k != "hash"}
    data = bytes.fromhex(str(record["prev"])) + canonical(body)
    if record.get("link") == LINK_HMAC:
        if chain_key is None:
            raise ValueError("an HMAC link needs the chain key")
        return macs.mac(chain_key, data).hex()
    return macs.sha256(data).hex()


def chain_encoded(
    event: Event, chain_key: bytes | None, *, node: str, seq: int, prev: str
) -> tuple[Event, bytes]:
    """``event`` as the next record of a chain, and the canonical bytes its hash covers.

    The record gets ``hash``; the bytes are the record without it (encoded once).
    """
    record = {
        **event,
        "node": node,
        "seq": seq,
        "prev": prev,
        "link": LINK_HMAC if chain_key is not None else LINK_SHA256,
    }
    body = canonical(record)
    data = bytes.fromhex(prev) + body
    if chain_key is not None:
        record["hash"] = _mac_key(chain_key).mac(data).hex()
    else:
        record["hash"] = macs.sha256(data).hex()
    return record, body


def chain(event: Event, chain_key: bytes | None, *, node: str, seq: int, prev: str) -> Event:
    """``event`` as the next record of a chain (a new dict with the chain fields)."""
    return chain_encoded(event, chain_key, node=node, seq=seq, prev=prev)[0]


def link_ok(chain_key: bytes, record: Event) -> bool:
    try:
        expected = link_hash(chain_key, record)
        found = record.get("hash")
        return isinstance(found, str) and macs.equal(expected.encode(), found.encode())
    except (KeyError, ValueError, TypeError):
        return False


class ChainItem(NamedTuple):
    """One position of a stored chain, as a verifier sees it."""

    position: str  # e.g. "row 17" or "audit.jsonl line 5"
    record: Event | None
    problem: str | None = None  # found before the chain check (e.g. a column disagrees)
    cut: bool = False  # a line cut short by a crash while it was written


class ChainReport(NamedTuple):
    node: str
    events: int
    last_seq: int
    last_hash: str
    last_keyed_seq: int
    finding: str | None
    notices: tuple[str, ...]
    hashes: dict[int, str]


def verify_chain(
    items: Sequence[ChainItem],
    chain_key: bytes,
    *,
    node: str,
    prev: str = GENESIS,
    seq: int = 0,
) -> ChainReport:
    """Walk a chain in stored order; the first tampered position stops the walk."""
    expected, prev_hash = seq + 1, prev
    before: tuple[str, str] | None = None  # (position, prev) of the last accepted record
    hashes: dict[int, str] = {}
    notices: list[str] = []
    finding: str | None = None
    count, last_keyed = 0, 0
    n = len(items)

    def next_record(i: int) -> Event | None:
        for j in range(i + 1, n):
            if not items[j].cut:
                return items[j].record
        return None

    for i, item in enumerate(items):
        pos = item.position
        if item.cut:
            notices.append(f"{pos}: a line cut short (a crash while writing it); skipped")
            continue
        rec = item.record
        if item.problem or rec is None:
            finding = f"{pos}: event modified ({item.problem or 'not a JSON event'})"
            break
        rseq, rprev = rec.get("seq"), rec.get("prev")
        good = link_ok(chain_key, rec)
        if good and rec.get("link") != LINK_HMAC and rec.get("versions"):
            # NOTE: an event that carries value HMACs was recorded with the keys in hand;
            # an unkeyed link on it means the chain was rewritten by someone without them.
            finding = f"{pos}: event seq {rseq} modified (unkeyed link on an event with values)"
            break
        if rseq == expected and rprev == prev_hash and good:
            before = (pos, prev_hash)
            prev_hash = str(rec["hash"])
            hashes[expected] = prev_hash
            if rec.get("link") == LINK_HMAC:
                last_keyed = expected
            expected += 1
            count += 1
            continue
        nxt = next_record(i)
        if not isinstance(rseq, int):
            finding = f"{pos}: event modified (no sequence number)"
        elif rseq == expected:
            if (
                nxt is not None
                and nxt.get("seq") == expected
                and nxt.get("prev") == prev_hash
                and link_ok(chain_key, nxt)
            ):
                finding = f"{pos}: event inserted (a second seq {rseq} that is not in the chain)"
            elif rprev != prev_hash:
                finding = f"{pos}: event seq {rseq} modified (its link to the previous is broken)"
            else:
                finding = f"{pos}: event seq {rseq} modified"
        elif rseq > expected:
            if nxt is not None and nxt.get("seq") == expected:
                finding = (
                    f"{pos}: events reordered (seq {rseq} stands where seq {expected} belongs)"
                )
            else:
                missing = (
                    f"seq {expected}" if rseq == expected + 1 else f"seq {expected}-{rseq - 1}"
                )
                finding = f"{pos}: event deleted ({missing} missing before seq {rseq})"
        elif rseq == expected - 1 and before is not None and rprev == before[1] and good:
            finding = f"{before[0]}: event inserted (seq {rseq} appears twice; this one is forged)"
        else:
            finding = f"{pos}: events reordered (seq {rseq} found after seq {expected - 1})"
        break
    return ChainReport(
        node, count, expected - 1, prev_hash, last_keyed, finding, tuple(notices), hashes
    )


def checkpoint_message(
    vault_id: str, sink: str, node: str, seq: int, hash_: str, at: str, prev: int = -1
) -> bytes:
    """What a checkpoint signs; ``prev`` (schema 7 on) is the seq of the node's checkpoint
    before it, so a deleted checkpoint leaves a gap."""
    body: dict[str, object] = {
        "vault": vault_id,
        "sink": sink,
        "node": node,
        "seq": seq,
        "hash": hash_,
        "time": at,
    }
    if prev >= 0:
        body["prev"] = prev
    return canonical(body)


def head_message(
    vault_id: str,
    node: str,
    seq: int,
    hash_: str,
    at: str,
    checkpoint_seq: int,
    since: int,
    spool: str = "",
) -> bytes:
    """What a chain's head row signs (moved with every commit of the chain's events)."""
    return canonical(
        {
            "kind": "head",
            "vault": vault_id,
            "node": node,
            "seq": seq,
            "hash": hash_,
            "time": at,
            "checkpoint": checkpoint_seq,
            "since": since,
            "spool": spool,
        }
    )


def head_tag(keys: AuditKeys, message: bytes) -> str:
    """A head's MAC: HMAC-SHA256 under the audit key's head sub-key (~2 µs; a process
    that writes events holds the keys, and verify needs them for the chain anyway)."""
    return _mac_key(keys.head_key).mac(message).hex()


def head_valid(keys: AuditKeys | None, vault_id: str, head: HeadRow) -> bool:
    """Whether a stored head row carries this vault's MAC."""
    if keys is None or not head.signature:
        return False
    msg = head_message(
        vault_id,
        head.node,
        head.seq,
        head.hash,
        head.at,
        head.checkpoint_seq,
        head.since,
        head.spool,
    )
    try:
        tag = bytes.fromhex(head.signature)
    except ValueError:
        return False
    return _mac_key(keys.head_key).verify(msg, tag)
