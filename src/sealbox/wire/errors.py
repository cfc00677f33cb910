"""The native API's error body: ``{"error": {"code", "message", "request_id"}}``.

``code`` is the stable code of a :class:`~sealbox.errors.SealboxError` class (the SDK raises
the same class again); ``message`` never holds a secret value.
"""

from __future__ import annotations

from typing import Any

from sealbox.wire.fields import field, obj, text


def encode_error(code: str, message: str, request_id: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "request_id": request_id}}


def decode_error(data: Any) -> tuple[str, str]:
    """The error's code and message."""
    err = obj(field(obj(data), "error"), "field 'error'")
    return text(err, "code"), text(err, "message")
