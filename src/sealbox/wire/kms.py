"""The body of ``GET /v1/sys/kms``: a :class:`~sealbox.model.KmsStatus` (the same JSON
``sealbox kms status --json`` prints). Names, kinds, key ids, KEK ids and counts only:
never key material, a provider's credentials or its config."""

from __future__ import annotations

from typing import Any

from sealbox.model import KekInfo, KmsStatus, ProviderStatus
from sealbox.wire.fields import WireError, field, integer, items, obj, text, text_list


def encode_status(status: KmsStatus) -> dict[str, Any]:
    return {
        "keks": [k._asdict() for k in status.keks],
        "providers": [
            {
                **p._asdict(),
                "wraps": list(p.wraps),
                "opens": list(p.opens),
                "missing": list(p.missing),
            }
            for p in status.providers
        ],
        "problems": list(status.problems),
    }


def _reachable(data: dict[str, Any]) -> bool | None:
    value = field(data, "reachable")
    if value is not None and not isinstance(value, bool):
        raise WireError("field 'reachable' is not a boolean or null")
    return value


def _active(data: dict[str, Any]) -> bool:
    value = field(data, "active")
    if not isinstance(value, bool):
        raise WireError("field 'active' is not a boolean")
    return value


def decode_status(data: Any) -> KmsStatus:
    body = obj(data)
    keks = tuple(
        KekInfo(text(k, "kek_id"), text(k, "created_at"), _active(k), integer(k, "versions"))
        for k in items(body, "keks")
    )
    providers = tuple(
        ProviderStatus(
            text(p, "name"),
            text(p, "kind"),
            text(p, "key_id"),
            _reachable(p),
            text(p, "error"),
            tuple(text_list(p, "wraps")),
            tuple(text_list(p, "opens")),
            tuple(text_list(p, "missing")),
        )
        for p in items(body, "providers")
    )
    return KmsStatus(keks, providers, tuple(text_list(body, "problems")))
