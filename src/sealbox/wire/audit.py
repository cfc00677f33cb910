"""Bodies of ``/v1/audit/…``: events found, a value's HMAC, verification and checkpoints."""

from __future__ import annotations

from typing import Any

from sealbox.model import CheckpointRow, Verification
from sealbox.wire.fields import WireError, integer, items, obj, text, text_list


def encode_events(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Audit events (``audit log``, ``who-read``) as the core reports them: plain JSON."""
    return {"events": events}


def decode_events(data: Any) -> list[dict[str, Any]]:
    return [dict(e) for e in items(obj(data), "events")]


def encode_hmac(hmac: str) -> dict[str, Any]:
    return {"hmac": hmac}


def decode_hmac(data: Any) -> str:
    return text(obj(data), "hmac")


def encode_verification(result: Verification) -> dict[str, Any]:
    return {"findings": result.findings, "notices": result.notices, "summary": result.summary}


def decode_verification(data: Any) -> Verification:
    body = obj(data)
    return Verification(
        text_list(body, "findings"), text_list(body, "notices"), text_list(body, "summary")
    )


_TEXT_FIELDS = ("node", "hash", "at", "signature", "key_id")


def encode_checkpoints(rows: list[CheckpointRow]) -> dict[str, Any]:
    return {"checkpoints": [r._asdict() for r in rows]}


def _checkpoint(data: dict[str, Any]) -> CheckpointRow:
    unknown = set(data) - set(CheckpointRow._fields)
    if unknown:
        raise WireError(f"a checkpoint has unknown field(s): {', '.join(sorted(unknown))[:200]}")
    fields = {k: text(data, k) for k in _TEXT_FIELDS}
    prev_seq = integer(data, "prev_seq") if "prev_seq" in data else -1
    return CheckpointRow(seq=integer(data, "seq"), prev_seq=prev_seq, **fields)


def decode_checkpoints(data: Any) -> list[CheckpointRow]:
    return [_checkpoint(c) for c in items(obj(data), "checkpoints")]
