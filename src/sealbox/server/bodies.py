"""Typed request bodies: every field a route takes, declared once with its type.

:func:`typed_body` reads the body with :func:`~sealbox.server.http.json_body` (size limit,
a JSON object, no unknown field, no missing required field) and then checks every field
that is present against its declared :class:`Kind` — ``null`` included. A null is never
read as "absent": ``{"policies": null}`` once meant "no policies" and wiped the only
admin's (issue 10). Routes then read fields through :class:`Body`, which cannot hand out
a value of the wrong type.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, assert_never

from starlette.requests import Request

from sealbox.auth.methods.interface import Field, FieldKind
from sealbox.errors import InvalidInput
from sealbox.server.http import json_body, json_int


class Kind(Enum):
    """The JSON type of a field; the value is how an error names it."""

    STR = "a string"
    STR_LIST = "a list of strings"
    INT = "an integer"
    BOOL = "true or false"

    def holds(self, value: Any) -> bool:
        match self:
            case Kind.STR:
                return isinstance(value, str)
            case Kind.STR_LIST:
                return isinstance(value, list) and all(isinstance(v, str) for v in value)
            case Kind.INT:
                return json_int(value) is not None
            case Kind.BOOL:
                return isinstance(value, bool)


def kind_of(kind: FieldKind) -> Kind:
    """The JSON kind of a login method's declared field."""
    match kind:
        case FieldKind.STR:
            return Kind.STR
        case FieldKind.STR_LIST:
            return Kind.STR_LIST
        case FieldKind.INT:
            return Kind.INT
        case FieldKind.BOOL:
            return Kind.BOOL
        case _:
            assert_never(kind)


def declared(fields: Iterable[Field]) -> tuple[dict[str, Kind], dict[str, Kind]]:
    """(required, optional) kinds of declared fields, for :func:`typed_body`."""
    fields = tuple(fields)
    required = {f.name: kind_of(f.kind) for f in fields if f.required}
    optional = {f.name: kind_of(f.kind) for f in fields if not f.required}
    return required, optional


@dataclass(frozen=True)
class Body:
    """A checked body: a field is either absent or of its declared kind."""

    data: Mapping[str, Any]

    def text(self, key: str) -> str:
        """A required string field (:func:`typed_body` checked it is there)."""
        value: str = self.data[key]
        return value

    def opt_text(self, key: str) -> str | None:
        value: str | None = self.data.get(key)
        return value

    def opt_texts(self, key: str) -> list[str] | None:
        value: list[str] | None = self.data.get(key)
        return None if value is None else list(value)

    def opt_int(self, key: str) -> int | None:
        return json_int(self.data.get(key))

    def flag(self, key: str) -> bool:
        """A boolean field; absent is false."""
        return bool(self.data.get(key, False))

    def has(self, key: str) -> bool:
        return key in self.data


async def typed_body(
    request: Request,
    required: Mapping[str, Kind] | None = None,
    optional: Mapping[str, Kind] | None = None,
) -> Body:
    """The request's JSON body, every field present and of its kind (else 400 naming it)."""
    required = required or {}
    optional = optional or {}
    data = await json_body(request, required=required, optional=optional)
    for key, value in data.items():
        kind = required.get(key) or optional[key]
        if not kind.holds(value):
            got = "null" if value is None else type(value).__name__
            raise InvalidInput(f"field {key!r} must be {kind.value}, not {got}")
    return Body(data)
