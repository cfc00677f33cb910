"""Post-match checks of provider rules: a rule's optional ``check = "<name>"`` (rules.toml)
names one of :data:`CHECKS`, run on each match the regex and entropy floor accepted.

A check sees only candidates (a handful per file), so it can do what RE2 cannot — decode a
value, look at its shape — without adding work per line.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable

#: A word, capitalised or not, or CamelCase words: ``Authentication``, ``AccessToken``…
_WORDS_SHAPED = re.compile(rb"[A-Z]?[a-z]+(?:[A-Z][a-z]+)*")
#: …each of which reads as one: it has a vowel and no run of five consonants
#: (``qzvnmtkrwplxcbhd`` is random letters).
_HUMP = re.compile(rb"[A-Z]?[a-z]+")
_VOWEL = re.compile(rb"[aeiouy]")
_CONSONANTS = re.compile(rb"[^aeiouy]{5}")


def basic_credentials(value: bytes) -> bool:
    """Whether ``value`` is base64 of ``user:password`` (RFC 7617): it decodes to UTF-8 text
    holding a ``:``. A truncated or unpadded value is decoded as far as whole quads go."""
    body = value.rstrip(b"=")
    body = body[: len(body) - len(body) % 4] or body
    body += b"=" * (-len(body) % 4)
    try:
        text = base64.b64decode(body, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return False
    return ":" in text and text.isprintable()


def bearer_token(value: bytes) -> bool:
    """Whether ``value`` can be a bearer token: not dictionary-shaped words
    (``Bearer Authentication``, ``Bearer AccessTokenRequired``)."""
    if _WORDS_SHAPED.fullmatch(value) is None:
        return True
    for hump in _HUMP.findall(value):
        low = hump.lower()
        if _VOWEL.search(low) is None or _CONSONANTS.search(low) is not None:
            return True
    return False


def http_credentials(match: bytes, value: bytes) -> bool:
    """``Basic <value>`` must be :func:`basic_credentials`; ``Bearer <value>`` a
    :func:`bearer_token`. The scheme is the last one named in the match before the value."""
    head = match[: match.rfind(value)].lower() if value in match else match.lower()
    if head.rfind(b"basic") > head.rfind(b"bearer"):
        return basic_credentials(value)
    return bearer_token(value)


#: check name -> (whole match, secret) -> keep the match.
CHECKS: dict[str, Callable[[bytes, bytes], bool]] = {
    "http-credentials": http_credentials,
}
