"""An identity's login settings, and the Vault fields (AppRole roles, userpass users) that set them.

Vault's clients write a role or a user as a bag of fields (``bao write
auth/approle/role/x token_policies=a,b secret_id_num_uses=1``: every value a string; hvac:
JSON types). :func:`parse_fields` checks such a bag against what sealbox supports and turns
it into :class:`LoginFields`; a field sealbox does not implement is refused by name (400),
never silently ignored: a role written with ``secret_id_bound_cidrs`` would otherwise look
bound to a network while it is not.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sealbox.errors import InvalidInput

#: What AppRole roles and userpass users store of their own (seconds or a count; absent
#: means sealbox's default: 1 h token TTL, 24 h max TTL, secret ids of unlimited uses and
#: no expiry).
SETTING_KEYS = ("token_ttl", "token_max_ttl", "secret_id_num_uses", "secret_id_ttl")
_DURATIONS = ("token_ttl", "token_max_ttl", "secret_id_ttl")
#: The longest duration a field takes (a token never lives longer than a year anyway).
_MAX_SECONDS = 365 * 86400

_TOKEN_FIELDS = frozenset(
    {"token_policies", "policies", "token_ttl", "token_max_ttl", "token_type"}
)
ROLE_FIELDS = _TOKEN_FIELDS | {"secret_id_num_uses", "secret_id_ttl", "bind_secret_id"}
USER_FIELDS = _TOKEN_FIELDS | {"password"}
#: Fields accepted with Vault's default value only (what sealbox always does).
_DEFAULT_ONLY: dict[str, object] = {
    "bind_secret_id": True,
    "token_type": ("service", "default"),
}
#: Vault fields sealbox knows and does not implement, and why (the 400 says it).
UNSUPPORTED = {
    "secret_id_bound_cidrs": "sealbox does not bind secret ids to networks",
    "token_bound_cidrs": "sealbox does not bind tokens to networks",
    "bound_cidr_list": "sealbox does not bind secret ids to networks",
    "period": "sealbox has no periodic tokens",
    "token_period": "sealbox has no periodic tokens",
    "token_explicit_max_ttl": "use token_max_ttl",
    "token_num_uses": "sealbox tokens have no use count",
    "token_no_default_policy": "sealbox has no default policy",
    "local_secret_ids": "sealbox has no performance replication",
    "bind_secret_id": "a role id alone never logs in on sealbox",
    "token_type": "sealbox issues service tokens only",
    "allowed_client_keys": "not supported",
    "alias_metadata": "not supported",
}
_DURATION_RE = re.compile(r"(\d+)(s|m|h|d)")


def parse_vault_duration(field: str, value: object) -> int:
    """Seconds from Vault's duration forms: ``3600``, ``"3600"``, ``"1h"``, ``"1h30m"``;
    ``0`` means sealbox's default."""
    if isinstance(value, bool):
        raise InvalidInput(f"field {field!r} must be a duration, not a boolean")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str) and value.strip().isdigit():
        seconds = int(value.strip())
    elif isinstance(value, str) and value.strip():
        text = value.strip().lower()
        parts = _DURATION_RE.findall(text)
        if "".join(n + u for n, u in parts) != text:
            raise InvalidInput(
                f"field {field!r}: invalid duration {text[:40]!r}"
                " (use seconds, or a number and s, m, h or d, e.g. 1h30m)"
            )
        scale = {"s": 1, "m": 60, "h": 3600, "d": 86400}
        seconds = sum(int(n) * scale[u] for n, u in parts)
    else:
        raise InvalidInput(f"field {field!r} must be a duration (seconds, or e.g. 1h)")
    if seconds < 0 or seconds > _MAX_SECONDS:
        raise InvalidInput(f"field {field!r} must be between 0 and {_MAX_SECONDS} seconds")
    return seconds


def _count(field: str, value: object) -> int:
    if isinstance(value, bool):
        raise InvalidInput(f"field {field!r} must be a number, not a boolean")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or value < 0:
        raise InvalidInput(f"field {field!r} must be a whole number, 0 or more")
    return value


def _policy_list(field: str, value: object) -> list[str]:
    """A list, or a comma-separated string (the CLI's ``token_policies=a,b``)."""
    if isinstance(value, str):
        items = [p.strip() for p in value.split(",")]
    elif isinstance(value, list) and all(isinstance(p, str) for p in value):
        items = [p.strip() for p in value]
    else:
        raise InvalidInput(f"field {field!r} must be a list of policy names")
    # NOTE: sealbox has no "default" policy (Vault attaches one to every token): dropped.
    return [p for p in dict.fromkeys(items) if p and p != "default"]


def _default_only(field: str, value: object) -> None:
    allowed = _DEFAULT_ONLY[field]
    ok = value in allowed if isinstance(allowed, tuple) else value == allowed
    if field == "bind_secret_id" and isinstance(value, str):
        ok = value.strip().lower() == "true"
    if not ok:
        raise InvalidInput(f"unsupported value for field {field!r}: {UNSUPPORTED[field]}")


@dataclass(frozen=True)
class LoginFields:
    """A checked write: the policies (None: not given), the password (userpass; None: not
    given) and the settings given (only those keys)."""

    policies: list[str] | None
    password: str | None
    settings: dict[str, int]

    def __repr__(self) -> str:
        return f"LoginFields(policies={self.policies!r}, settings={self.settings!r}, password=***)"


def parse_fields(body: Mapping[str, Any], allowed: frozenset[str]) -> LoginFields:
    """Check a role's or a user's fields; unknown and unsupported ones are a 400 naming
    them (all of them, so one round trip fixes a request)."""
    unsupported = sorted(k for k in body if k not in allowed and k in UNSUPPORTED)
    unknown = sorted(k for k in body if k not in allowed and k not in UNSUPPORTED)
    if unsupported or unknown:
        parts = [f"{k!r} ({UNSUPPORTED[k]})" for k in unsupported] + [repr(k) for k in unknown]
        raise InvalidInput("unsupported field(s): " + ", ".join(parts))
    for field in _DEFAULT_ONLY:
        if field in body:
            _default_only(field, body[field])
    if "token_policies" in body and "policies" in body:
        raise InvalidInput("give token_policies or its old name policies, not both")
    policies = None
    for field in ("token_policies", "policies"):
        if field in body:
            policies = _policy_list(field, body[field])
    password = body.get("password")
    if password is not None and (not isinstance(password, str) or not password):
        raise InvalidInput("field 'password' must be a non-empty string")
    settings = {k: parse_vault_duration(k, body[k]) for k in _DURATIONS if k in body}
    if "secret_id_num_uses" in body:
        settings["secret_id_num_uses"] = _count("secret_id_num_uses", body["secret_id_num_uses"])
    return LoginFields(policies, password, settings)


def merged(stored: str, changes: Mapping[str, int]) -> dict[str, int]:
    """The stored settings with the changes applied (0 removes one: sealbox's default);
    a token TTL above the max TTL is refused."""
    current = load(stored)
    for key, value in changes.items():
        if value:
            current[key] = value
        else:
            current.pop(key, None)
    ttl, max_ttl = current.get("token_ttl"), current.get("token_max_ttl")
    if ttl and max_ttl and ttl > max_ttl:
        raise InvalidInput("token_ttl must not be longer than token_max_ttl")
    return current


def load(stored: str) -> dict[str, int]:
    found = json.loads(stored or "{}")
    return {k: int(v) for k, v in found.items() if k in SETTING_KEYS}


def seconds(settings: Mapping[str, int], key: str) -> timedelta | None:
    value = settings.get(key)
    return timedelta(seconds=value) if value else None
