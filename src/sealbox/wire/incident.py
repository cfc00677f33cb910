"""The body of ``POST /v1/incident``'s answer: an :class:`~sealbox.model.IncidentReport`,
in the shape of its ``to_json()`` (the same JSON ``sealbox incident --json`` prints).

Names, versions, identities and places only: a report never carries a value (not the
leaked one the request may have sent, nor any version's).
"""

from __future__ import annotations

from typing import Any

from sealbox.errors import InvalidInput
from sealbox.model import Classification, IncidentReport, Reader, SecretMeta, SecretRef
from sealbox.wire.fields import (
    WireError,
    field,
    integer,
    items,
    obj,
    opt_text,
    text,
    text_list,
    time,
)


def encode_report(report: IncidentReport) -> dict[str, Any]:
    return report.to_json()


def _versions(body: dict[str, Any], key: str) -> tuple[int, ...]:
    value = field(body, key)
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise WireError(f"field {key!r} is not a list of integers")
    return tuple(value)


def _reader(data: dict[str, Any]) -> Reader:
    return Reader(
        identity=text(data, "identity"),
        source=text(data, "source"),
        hostname=opt_text(data, "hostname"),
        remote_addr=opt_text(data, "remote_addr"),
        reads=integer(data, "reads"),
        first_at=text(data, "first_at"),
        last_at=text(data, "last_at"),
        versions=_versions(data, "versions"),
    )


def _classification(body: dict[str, Any]) -> Classification | None:
    value = opt_text(body, "classification")
    if value is None:
        return None
    try:
        return Classification(value)
    except ValueError:
        raise WireError("field 'classification' is not a known classification") from None


def _matched(body: dict[str, Any]) -> bool | None:
    value = field(body, "value_matched")
    if value is not None and not isinstance(value, bool):
        raise WireError("field 'value_matched' is not true, false or null")
    return value


def decode_report(data: Any) -> IncidentReport:
    body = obj(data, "incident report")
    versions = []
    for v in items(body, "versions"):
        versions.append((integer(v, "version"), opt_text(v, "stage")))
    also = tuple((text(h, "secret"), integer(h, "version")) for h in items(body, "also_holding"))
    meta = SecretMeta(
        owner=opt_text(body, "owner"),
        contact=opt_text(body, "contact"),
        upstream=opt_text(body, "upstream"),
        classification=_classification(body),
        depends_on=tuple(text_list(body, "depends_on")),
    )
    try:
        ref = SecretRef.parse(text(body, "secret"))
    except InvalidInput:
        raise WireError("field 'secret' is not a secret path") from None
    return IncidentReport(
        ref=ref,
        reason=text(body, "reason"),
        at=time(body, "at"),
        current_version=integer(body, "current_version"),
        versions=tuple(versions),
        affected=_versions(body, "affected_versions"),
        value_matched=_matched(body),
        also_holding=also,
        readers=tuple(_reader(r) for r in items(body, "readers")),
        meta=meta,
        redeploy=tuple(text_list(body, "redeploy")),
        actions=tuple(text_list(body, "actions")),
    )
