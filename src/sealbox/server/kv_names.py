"""Reversible mapping between Vault KV v2 paths and sealbox ``project/env/NAME`` addresses.

A KV path ``<project>/<env>/<rest…>`` names the sealbox secret ``NAME = encode(rest)`` in
``project/env``. ``rest`` is any text (it may hold ``/``, ``-``, ``.``, spaces, non-ASCII);
a secret name must be an environment-variable name (``[A-Za-z_][A-Za-z0-9_]*``). So:

* ``rest`` that already is a valid name and does not start with ``__`` maps to itself
  (``stripe`` -> ``stripe``, ``DATABASE_URL`` -> ``DATABASE_URL``);
* anything else becomes ``__`` followed by ``rest`` with every character outside
  ``[A-Za-z0-9]`` escaped: ``/`` -> ``__``, any other byte of its UTF-8 form -> ``_`` and
  two lowercase hex digits (``-`` -> ``_2d``, ``.`` -> ``_2e``, ``_`` -> ``_5f``).
  ``api-keys/stripe`` -> ``__api_2dkeys__stripe``.

Decoding reverses it: a name starting with ``__`` is decoded, any other is taken as is.
The escaped forms always start with ``__`` and the plain ones never do, and after the
prefix an ``_`` is followed either by ``_`` or by two hex digits, so the mapping is
injective. Empty segments (``a//b``), ``.`` and ``..`` segments are refused.
"""

from __future__ import annotations

import re

from sealbox.errors import InvalidInput
from sealbox.model import MAX_NAME, NAME_RE

PREFIX = "__"
_ESCAPE = re.compile(r"__|_([0-9a-f]{2})|[A-Za-z0-9]")


def check_rest(rest: str) -> str:
    if not rest:
        raise InvalidInput("the KV path names no secret after <project>/<env>/")
    for segment in rest.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidInput("KV paths may not hold empty, '.' or '..' segments")
    if "\x00" in rest:
        raise InvalidInput("KV paths may not hold NUL characters")
    if not rest.isascii():
        try:
            rest.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate has no UTF-8 form: it could never round-trip through a URL.
            raise InvalidInput("KV paths must be valid Unicode (no lone surrogates)") from None
    return rest


def encode(rest: str) -> str:
    """The sealbox secret name for the KV path part after ``<project>/<env>/``."""
    check_rest(rest)
    if NAME_RE.match(rest) and not rest.startswith(PREFIX):
        name = rest
    else:
        out = [PREFIX]
        for ch in rest:
            if ch == "/":
                out.append("__")
            elif ch.isascii() and ch.isalnum():
                out.append(ch)
            else:
                out.extend(f"_{b:02x}" for b in ch.encode("utf-8"))
        name = "".join(out)
    if len(name) > MAX_NAME:
        raise InvalidInput(f"the KV path is too long once mapped to a secret name (> {MAX_NAME})")
    return name


def decode(name: str) -> str:
    """The KV path part for a sealbox secret name (the inverse of :func:`encode`)."""
    if not name.startswith(PREFIX):
        return name
    body = name[len(PREFIX) :]
    out = bytearray()
    pos = 0
    while pos < len(body):
        m = _ESCAPE.match(body, pos)
        if m is None:
            # Not produced by encode(): show the stored name unchanged rather than fail.
            return name
        piece = m.group(0)
        if piece == "__":
            out += b"/"
        elif m.group(1) is not None:
            out.append(int(m.group(1), 16))
        else:
            out += piece.encode()
        pos = m.end()
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        return name
