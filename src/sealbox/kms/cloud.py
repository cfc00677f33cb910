"""What the cloud KMS families (``aws-kms``, ``gcp-kms``, ``azure-keyvault``) share: option
checking for ``sealbox kms add`` and the wording of their errors.

No SDK is imported here: each family imports its own SDK inside its module, which the
registry imports only when a vault uses that kind.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from sealbox.errors import InvalidInput

#: The longest piece of a service's own error text an error message quotes.
QUOTE = 160


def check_options(
    kind: str, options: Mapping[str, str], *, required: Iterable[str], optional: Iterable[str]
) -> dict[str, str]:
    """``options`` with surrounding blanks removed; InvalidInput naming an unknown, missing
    or empty option."""
    allowed = set(required) | set(optional)
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise InvalidInput(
            f"unknown option(s) for a {kind} key provider: {', '.join(u[:40] for u in unknown)}"
            f" (known: {', '.join(sorted(allowed))})"
        )
    cleaned = {k: str(v).strip() for k, v in options.items()}
    missing = [name for name in required if not cleaned.get(name)]
    if missing:
        raise InvalidInput(f"a {kind} key provider needs the option(s): {', '.join(missing)}")
    empty = [k for k, v in cleaned.items() if not v]
    if empty:
        raise InvalidInput(
            f"option(s) {', '.join(sorted(empty))} of a {kind} key provider are empty"
        )
    return cleaned


def check_url(kind: str, option: str, value: str, *, https_only: bool = False) -> str:
    """``value`` if it is an http(s) URL with a host (and no credentials in it)."""
    parts = urlsplit(value)
    schemes = ("https",) if https_only else ("http", "https")
    if parts.scheme not in schemes or not parts.hostname:
        raise InvalidInput(
            f"option {option} of a {kind} key provider must be an {' or '.join(schemes)} URL"
        )
    if parts.username or parts.password:
        raise InvalidInput(
            f"option {option} of a {kind} key provider must not carry credentials: the"
            " provider's SDK finds them itself"
        )
    return value.rstrip("/")


def flag(kind: str, option: str, value: str | None) -> bool:
    """A true/false option."""
    if value is None:
        return False
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise InvalidInput(f"option {option} of a {kind} key provider must be true or false")


def context_text(context: bytes) -> str:
    """``context`` as text a KMS accepts in a string field (unpadded base64url)."""
    return base64.urlsafe_b64encode(context).rstrip(b"=").decode("ascii")


def quote(text: object) -> str:
    """A service's error text, shortened and on one line, for an error message. (Services
    do not echo plaintext or ciphertext in errors; the length cap is a second guard.)"""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= QUOTE else flat[: QUOTE - 1] + "…"
