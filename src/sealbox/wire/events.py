"""The change stream's events (``GET /v1/events/{project}/{env}``, server-sent events).

``snapshot`` (the current version of every live secret) opens a stream, ``change`` follows
each write, and ``error`` ends it. Names and versions only, never a value.
"""

from __future__ import annotations

from typing import Any

from sealbox.model import ChangeEvent
from sealbox.wire.fields import WireError, obj, opt_text, text


def encode_snapshot(versions: dict[str, int]) -> dict[str, Any]:
    return {"versions": versions}


def decode_snapshot(data: Any) -> dict[str, int]:
    versions = obj(data, "a snapshot").get("versions")
    if not isinstance(versions, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in versions.values()
    ):
        raise WireError("field 'versions' is not an object of version numbers")
    return {str(k): v for k, v in versions.items()}


def encode_change(event: ChangeEvent) -> dict[str, Any]:
    return {"path": event.path, "version": event.version, "op": event.op}


def decode_change(data: Any) -> ChangeEvent:
    body = obj(data, "a change")
    parts = text(body, "path").split("/")
    if len(parts) != 3:
        raise WireError("field 'path' is not a secret path")
    version = body.get("version")
    return ChangeEvent(
        parts[0],
        parts[1],
        parts[2],
        version if isinstance(version, int) and not isinstance(version, bool) else None,
        opt_text(body, "op") or "write",
    )


def encode_stream_error(code: str, message: str) -> dict[str, Any]:
    """Why the server ends a stream (the token expired, the permission was withdrawn)."""
    return {"code": code, "message": message}


def decode_stream_error(data: Any) -> str:
    """The message of a stream's ``error`` event."""
    return opt_text(obj(data, "an error"), "message") or "the server ended the stream"
