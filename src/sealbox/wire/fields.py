"""Reading a decoded JSON body field by field, with one error for anything unexpected."""

from __future__ import annotations

from datetime import datetime
from typing import Any


class WireError(ValueError):
    """A body is not what the sealbox API sends; the message names the field, never a value."""


def obj(data: Any, what: str = "body") -> dict[str, Any]:
    if not isinstance(data, dict):
        raise WireError(f"{what} is not a JSON object")
    return data


def field(data: dict[str, Any], key: str) -> Any:
    if key not in data:
        raise WireError(f"field {key!r} is missing")
    return data[key]


def text(data: dict[str, Any], key: str) -> str:
    value = field(data, key)
    if not isinstance(value, str):
        raise WireError(f"field {key!r} is not text")
    return value


def opt_text(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise WireError(f"field {key!r} is not text")
    return value


def integer(data: dict[str, Any], key: str) -> int:
    value = field(data, key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise WireError(f"field {key!r} is not an integer")
    return value


def opt_int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise WireError(f"field {key!r} is not an integer")
    return value


def flag(data: dict[str, Any], key: str, default: bool = False) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise WireError(f"field {key!r} is not true or false")
    return value


def texts(data: dict[str, Any], key: str) -> list[str]:
    """A list of strings (a missing or null field is an empty list)."""
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise WireError(f"field {key!r} is not a list of text")
    return value


def text_list(data: dict[str, Any], key: str) -> list[str]:
    """A list of strings that must be there."""
    field(data, key)
    return texts(data, key)


def items(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """A list of JSON objects."""
    value = field(data, key)
    if not isinstance(value, list):
        raise WireError(f"field {key!r} is not a list")
    return [obj(v, f"an item of {key!r}") for v in value]


def time(data: dict[str, Any], key: str) -> datetime:
    value = text(data, key)
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise WireError(f"field {key!r} is not an ISO 8601 time") from None


def opt_time(data: dict[str, Any], key: str) -> datetime | None:
    return None if data.get(key) is None else time(data, key)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
