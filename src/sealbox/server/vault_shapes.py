"""Vault's shapes for tokens: the ``lookup`` record, the ``auth`` block, the envelope.

Pure functions from sealbox's token listing entries (:class:`~sealbox.auth.service.TokenInfo`)
to what Vault answers, so ``hvac`` and the ``bao`` CLI read sealbox tokens as Vault's.
Differences (documented in docs/server.md, "Vault compatibility: tokens and sys"):
``creation_ttl`` is the span from creation to the current expiry (sealbox does not keep
the first TTL once a token is renewed), ``explicit_max_ttl`` is the token's max TTL (every
sealbox token has one), ``num_uses`` is always 0 and ``type`` always ``service``.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sealbox.errors import InvalidInput
from sealbox.model import parse_duration
from sealbox.wire.accounts import TokenInfo

_GO_DURATION = re.compile(r"(?:\d+[smhd])+\Z")
_PART = re.compile(r"(\d+)([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(value: Any, field: str) -> timedelta | None:
    """A Vault duration field: seconds (an integer or digits) or ``1h30m``; absent, null,
    0 or ``""`` is None (Vault's "the default")."""
    if value is None or value in ("", 0):
        return None
    if isinstance(value, bool):
        raise InvalidInput(f"field {field!r} must be a duration (e.g. 3600 or 1h)")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str) and value.strip().isdigit():
        seconds = int(value.strip())
    elif isinstance(value, str) and _GO_DURATION.match(value.strip().lower()):
        seconds = sum(int(n) * _UNIT[u] for n, u in _PART.findall(value.strip().lower()))
    else:
        raise InvalidInput(f"field {field!r} must be a duration (e.g. 3600 or 1h)")
    if seconds == 0:
        return None
    if seconds < 0:
        raise InvalidInput(f"field {field!r} must be positive")
    return parse_duration(f"{seconds}s")  # the native bounds apply


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def rfc3339(text: str) -> str:
    """A stored ISO time as Vault writes times (UTC, ``Z``, nanosecond digits as Go)."""
    return _when(text).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def seconds_left(info: TokenInfo, now: datetime) -> int:
    return max(0, int((_when(info.expires_at) - now).total_seconds()))


def token_path(info: TokenInfo) -> str:
    """Vault's ``path`` of a token: where it was made."""
    if info.auth_method in ("token", "bootstrap"):
        return "auth/token/create"
    return f"auth/{info.auth_method}/login"


def lookup_record(
    info: TokenInfo,
    entity_id: str,
    now: datetime,
    *,
    token: str | None = None,
    policies: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Vault's token record (``data`` of ``lookup``/``lookup-self``). ``id`` is the token
    itself, given only to a caller that sent it; otherwise ``""``."""
    created = _when(info.created_at)
    return {
        "accessor": info.accessor,
        "creation_time": int(created.timestamp()),
        "creation_ttl": int((_when(info.expires_at) - created).total_seconds()),
        "display_name": info.display,
        "entity_id": entity_id,
        "expire_time": rfc3339(info.expires_at),
        "explicit_max_ttl": int((_when(info.max_expires_at) - created).total_seconds()),
        "id": token or "",
        "issue_time": rfc3339(info.created_at),
        "meta": {"identity": info.identity},
        "num_uses": 0,
        "orphan": info.parent is None,
        "path": token_path(info),
        "policies": list(info.policies if policies is None else policies),
        "renewable": True,
        "ttl": seconds_left(info, now),
        "type": "service",
    }


def auth_block(
    info: TokenInfo,
    entity_id: str,
    now: datetime,
    *,
    token: str | None,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Vault's ``auth`` block (login, ``create``, ``renew``): ``client_token`` is the
    token when the caller is entitled to it (it made or sent it), else ``""``;
    ``metadata`` as the login method gives it (default ``{"identity": …}``)."""
    return {
        "client_token": token or "",
        "accessor": info.accessor,
        "policies": list(info.policies),
        "token_policies": list(info.policies),
        "metadata": metadata if metadata is not None else {"identity": info.identity},
        "lease_duration": seconds_left(info, now),
        "renewable": True,
        "entity_id": entity_id,
        "token_type": "service",
        "orphan": info.parent is None,
        "mfa_requirement": None,
        "num_uses": 0,
    }


def envelope(
    data: Any = None, *, auth: Any = None, warnings: list[str] | None = None
) -> dict[str, Any]:
    """Vault's answer around ``data`` or ``auth``."""
    return {
        "request_id": os.urandom(16).hex(),
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": data,
        "wrap_info": None,
        "warnings": warnings or None,
        "auth": auth,
    }


# -- mounts -------------------------------------------------------------------------------------
#: The mount sealbox lists when ``kv_mounts`` is ``["*"]`` (any name is served).
DEFAULT_KV_MOUNT = "secret"
_MOUNT_CONFIG = {"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": False}


def kv_mount(mount: str) -> dict[str, Any]:
    """A KV mount as Vault describes one (``sys/mounts``, ``sys/internal/ui/mounts``)."""
    return {
        "accessor": f"kv_sealbox_{mount[:32]}",
        "config": dict(_MOUNT_CONFIG),
        "description": "sealbox secrets (KV v2 compatible)",
        "external_entropy_access": False,
        "local": False,
        "options": {"version": "2"},
        "plugin_version": "",
        "running_plugin_version": "",
        "running_sha256": "",
        "seal_wrap": False,
        "type": "kv",
        "uuid": "",
    }


def kv_mount_names(configured: tuple[str, ...]) -> list[str]:
    """The KV mounts a listing names: the configured ones (``*``: :data:`DEFAULT_KV_MOUNT`)."""
    return [DEFAULT_KV_MOUNT if m == "*" else m for m in configured]


def builtin_mount(kind: str, description: str) -> dict[str, Any]:
    """``sys/`` or an auth method, in the same shape as a KV mount."""
    entry = kv_mount(kind)
    entry.update(accessor=f"{kind}_sealbox", description=description, options=None, type=kind)
    if kind == "system":
        entry["config"]["passthrough_request_headers"] = ["Accept"]
    elif kind != "kv":
        entry["config"]["token_type"] = "default-service"  # noqa: S105 - an auth mount's
    return entry


def tune(entry: dict[str, Any]) -> dict[str, Any]:
    """A mount's ``tune`` answer (its config, description and options)."""
    return {
        **entry["config"],
        "description": entry["description"],
        "options": entry["options"],
    }
