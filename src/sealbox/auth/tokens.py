"""sealbox tokens: random, prefixed and checksummed, stored only as a SHA-256.

Format: ``sbx_<kind>_<body><check>`` where kind is ``s`` (service/machine), ``p``
(personal) or ``r`` (recovery), body is 32 random bytes in unpadded URL-safe base64
(43 characters) and check is the first 4 bytes of SHA-256(prefix + body), base64 (6
characters). The prefix lets the scanner find leaked tokens; the checksum lets it (and
the server, before any lookup) reject look-alikes without false positives.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

from sealbox.errors import AuthenticationFailed

# NOTE: re-exported: a minted token is a value the SDK returns too (wire/accounts.py).
from sealbox.wire.accounts import NewToken as NewToken  # noqa: PLC0414
from sealbox.wire.accounts import token_hash as token_hash  # noqa: PLC0414

TOKEN_RE = re.compile(r"sbx_([spr])_([A-Za-z0-9_-]{43})([A-Za-z0-9_-]{6})\Z")
KINDS = {"s": "service", "p": "personal", "r": "recovery"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _check(prefix: str, body: str) -> str:
    return _b64(hashlib.sha256((prefix + body).encode()).digest()[:4])


def mint(kind: str = "s") -> NewToken:
    if kind not in KINDS:
        raise ValueError(f"unknown token kind {kind!r}")
    prefix = f"sbx_{kind}_"
    body = _b64(os.urandom(32))
    value = prefix + body + _check(prefix, body)
    return NewToken(value, token_hash(value), os.urandom(12).hex())


def well_formed(value: str) -> bool:
    """Shape and checksum, compared in constant time."""
    m = TOKEN_RE.match(value)
    if m is None:
        return False
    prefix = f"sbx_{m.group(1)}_"
    return hmac.compare_digest(_check(prefix, m.group(2)), m.group(3))


def require_well_formed(value: str) -> str:
    if not well_formed(value):
        raise AuthenticationFailed("invalid token")
    return token_hash(value)
