"""Filling in a role's statements and username template; making passwords.

Statements name the lease's user as ``{{name}}``, its password as ``{{password}}`` and its
expiry as ``{{expiration}}``; they are split into single statements here (at ``;`` outside
quotes and dollar-quoted bodies), because a MySQL connection runs one at a time. What is
filled in is safe inside quotes by construction: a user name is ``[a-z0-9_-]``, a password
``[A-Za-z0-9]``, an expiry a timestamp, so a filled-in value can never end a quoted string.
"""

from __future__ import annotations

import re
import secrets
import string
import time
from collections.abc import Iterable, Mapping
from datetime import datetime

from sealbox.errors import InvalidInput

PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_]+)\s*\}\}")
#: The placeholders each kind of statement may use.
CREATION_VARS = frozenset({"name", "password", "expiration"})
RENEWAL_VARS = frozenset({"name", "expiration"})
REVOCATION_VARS = frozenset({"name"})
TEMPLATE_VARS = frozenset({"role", "identity", "project", "env", "random", "unix_time"})
DEFAULT_TEMPLATE = "v-{{identity}}-{{role}}-{{random}}"
#: Characters of the random part of a user name (lowercase: PostgreSQL folds unquoted names,
#: MySQL compares them case-sensitively; lowercase means one spelling everywhere).
RANDOM_ALPHABET = string.ascii_lowercase + string.digits
RANDOM_LENGTH = 16  # ~82 bits: unique without a check
PASSWORD_ALPHABET = string.ascii_letters + string.digits
PASSWORD_LENGTH = 32
_UNSAFE = re.compile(r"[^a-z0-9_-]+")


def placeholders(text: str) -> set[str]:
    return {m.group(1) for m in PLACEHOLDER_RE.finditer(text)}


def check_statements(
    text: str, *, what: str, allowed: frozenset[str], required: Iterable[str] = ()
) -> list[str]:
    """The single statements of ``text``; InvalidInput for an unknown or missing
    placeholder, or for no statement at all."""
    used = placeholders(text)
    unknown = sorted(used - allowed)
    if unknown:
        shown = ", ".join("{{" + u + "}}" for u in unknown)
        known = ", ".join("{{" + a + "}}" for a in sorted(allowed))
        raise InvalidInput(f"the {what} statements use {shown}: they may use {known}")
    missing = [r for r in required if r not in used]
    if missing:
        raise InvalidInput(
            f"the {what} statements must use " + " and ".join("{{" + m + "}}" for m in missing)
        )
    parts = split_statements(text)
    if not parts:
        raise InvalidInput(f"the {what} statements are empty")
    return parts


def render(text: str, values: Mapping[str, str]) -> str:
    """``text`` with each ``{{key}}`` replaced (the keys were checked when the role was made)."""
    return PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], text)


def split_statements(text: str) -> list[str]:
    """Single statements, split at ``;`` outside '…', "…", `…` and $tag$…$tag$."""
    out: list[str] = []
    buf: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"`":
            end = i + 1
            while end < n:
                if text[end] == ch:
                    if end + 1 < n and text[end + 1] == ch:  # a doubled quote
                        end += 2
                        continue
                    break
                if text[end] == "\\" and ch != '"':  # MySQL escapes inside '…' and `…`
                    end += 1
                end += 1
            buf.append(text[i : end + 1])
            i = end + 1
            continue
        if ch == "$":
            m = re.match(r"\$[A-Za-z_]*\$", text[i:])
            if m:
                tag = m.group(0)
                close = text.find(tag, i + len(tag))
                stop = n if close < 0 else close + len(tag)
                buf.append(text[i:stop])
                i = stop
                continue
        if ch == ";":
            out.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
        i += 1
    out.append("".join(buf))
    return [s.strip() for s in out if s.strip()]


def check_template(template: str) -> str:
    used = placeholders(template)
    unknown = sorted(used - TEMPLATE_VARS)
    if unknown:
        known = ", ".join("{{" + v + "}}" for v in sorted(TEMPLATE_VARS))
        raise InvalidInput(
            f"the username template uses {', '.join('{{' + u + '}}' for u in unknown)}:"
            f" it may use {known}"
        )
    if "random" not in used:
        # Without it two leases could be given the same user, and one's revocation
        # would end the other's.
        raise InvalidInput("the username template must use {{random}}: each lease's user is new")
    return template


def username(
    template: str, values: Mapping[str, str], *, max_len: int, random_part: str | None = None
) -> str:
    """A user name from ``template``: lowercase ``[a-z0-9_-]``, at most ``max_len``
    characters, its random part always whole (so two leases never share a user, however
    much else is cut)."""
    rand = random_part or "".join(secrets.choice(RANDOM_ALPHABET) for _ in range(RANDOM_LENGTH))
    filled = {**values, "unix_time": str(int(time.time())), "random": "\x00"}
    text = render(template, {k: v if k == "random" else _safe(v) for k, v in filled.items()})
    text = _safe_keep_marker(text)
    name = text.replace("\x00", rand)
    if len(name) <= max_len:
        return name
    # Too long: cut the rest, keep the random part whole, at the end.
    rest = text.replace("\x00", "")
    keep = max(0, max_len - len(rand) - 1)
    head = rest[:keep].rstrip("-_")
    return f"{head}-{rand}" if head else rand[:max_len]


def _safe(text: str) -> str:
    return _UNSAFE.sub("_", text.lower())


def _safe_keep_marker(text: str) -> str:
    return "\x00".join(_safe(part) for part in text.split("\x00"))


def password() -> str:
    """A password of letters and digits with each class present (some servers' password
    policies ask for it), safe inside any quotes."""
    while True:
        value = "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))
        if (
            any(c.islower() for c in value)
            and any(c.isupper() for c in value)
            and any(c.isdigit() for c in value)
        ):
            return value


def expiration(at: datetime) -> str:
    """An expiry as both databases read it: ``2026-12-02 03:00:00+0000`` (UTC)."""
    return at.strftime("%Y-%m-%d %H:%M:%S+0000")
