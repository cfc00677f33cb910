"""Generic assignments: ``password = "…"``, ``api_key: …``, ``SECRET=…`` in dotenv, YAML,
JSON, properties files and code, scored by entropy and context.

A candidate is kept when its key names a secret, its value is not a placeholder or template
(:mod:`sealbox.scan.placeholders`), not an expression (an unquoted right-hand side in program
source is code, not a literal), not a path, URL, number or plain word, and its Shannon entropy
reaches :data:`MIN_ENTROPY`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import re2

from sealbox.scan.detectors.interface import Hit
from sealbox.scan.findings import DetectorKind, Severity
from sealbox.scan.placeholders import is_placeholder
from sealbox.scan.rules import shannon_entropy
from sealbox.scan.text import ScanText

RULE_ID = "generic-secret-assignment"
DESCRIPTION = "Secret-looking value assigned to a password, token, secret or key"
#: Passwords are short and human-made; tokens and keys are long and random. Values under the
#: token thresholds are mostly truncated examples, ids or hashes in documentation.
MIN_LENGTH = 8
MIN_ENTROPY = 3.0
MIN_TOKEN_LENGTH = 16
MIN_TOKEN_ENTROPY = 3.5
MAX_LENGTH = 256
MAX_HITS = 200

_KEY_WORDS = (
    r"passw(?:or)?d|passphrase|pwd|secret|token|api[_.\-]?key|access[_.\-]?key|"
    r"auth[_.\-]?key|private[_.\-]?key|signing[_.\-]?key|encryption[_.\-]?key|"
    r"master[_.\-]?key|credentials?"
)
_PATTERN = (
    r"(?im)(?:^|[^A-Za-z0-9_.\-])"
    r"([A-Za-z0-9_.\-]{0,40}(?:" + _KEY_WORDS + r")[A-Za-z0-9_.\-]{0,40})"  # 1: key
    r"[\"'\]]?[ \t]*(?:=|:=|:|=>|\?=)[ \t]*(?:[rbuf](?:[\"'`]))?"
    r"([\"'`]?)"  # 2: opening quote
    r"([^\s\"'`]{" + str(MIN_LENGTH) + "," + str(MAX_LENGTH) + r"})"  # 3: value
    r"([\"'`]?)"  # 4: closing quote
)
KEYWORDS = ("pass", "pwd", "secret", "token", "key", "credential")

# Keys that name something about a secret rather than holding it.
_BENIGN_KEY = re.compile(
    r"(?:^|[_.\-])(?:name|names|id|ids|type|types|url|uri|path|file|filename|dir|len|length|"
    r"size|count|field|fields|prompt|header|label|policy|param|params|regex|pattern|env|var|"
    r"hash|format|mode|enabled|required|timeout|expiry|expires|expiration|ttl|endpoint|"
    r"method|class|mock|store|provider|source|key_name|index|prefix|suffix|version|ref|"
    r"reset|strength|min|max|limit|placeholder|description|help|error|message|validator)$",
    re.IGNORECASE,
)
_PASSWORD_KEY = re.compile(r"(?i)passw(?:or)?d|passphrase|pwd")
_WORDISH = re.compile(r"[a-z_.\-]+|[A-Z_.\-]+|\d+(?:\.\d+)*|[A-Za-z]+(?:[_.\-][A-Za-z]+)*")
_PATHISH = re.compile(r"^(?:[./~]|[A-Za-z]:\\|[a-z][a-z0-9+.\-]*://)")
_TRAILING = b",;)]}>"


class GenericDetector:
    """Scores ``key = value`` assignments whose key names a secret."""

    def __init__(self) -> None:
        options = re2.Options()
        options.max_mem = 64 << 20
        options.log_errors = False
        self._regex = re2.compile(_PATTERN.encode(), options)

    def keywords(self) -> dict[str, list[str]]:
        """Keyword -> the one generic check."""
        return {kw: [RULE_ID] for kw in KEYWORDS}

    def detect(self, text: ScanText, triggered: frozenset[str]) -> Iterator[Hit]:
        """Hits of secret-looking assignments."""
        if RULE_ID not in triggered:
            return
        data = text.data
        is_code = text.is_code
        n = 0
        for m in self._regex.finditer(data):
            key = m.group(1).decode("utf-8", "replace")
            quote = m.group(2)
            raw = m.group(3)
            start, end = m.span(3)
            if quote:
                if m.group(4) != quote:
                    continue  # the value runs on past a space: a phrase or an expression
            else:
                if is_code:
                    continue  # unquoted right-hand side in source code is an expression
                if is_placeholder(raw.decode("utf-8", "replace")):
                    continue
                stripped = raw.rstrip(_TRAILING)
                end -= len(raw) - len(stripped)
                raw = stripped
            value = raw.decode("utf-8", "replace")
            ent = _score(key, value)
            if ent is None:
                continue
            n += 1
            if n > MAX_HITS:
                break
            yield Hit(
                rule_id=RULE_ID,
                description=DESCRIPTION,
                severity=Severity.MEDIUM,
                kind=DetectorKind.GENERIC,
                start=start,
                end=end,
                secret=data[start:end],
                entropy=ent,
            )


def _score(key: str, value: str) -> float | None:
    """Entropy of ``value`` when it passes every check, else None."""
    if len(value) < MIN_LENGTH:
        return None
    last = key.rsplit(".", 1)[-1]
    if _BENIGN_KEY.search(last):
        return None
    if _WORDISH.fullmatch(value) or _PATHISH.match(value):
        return None
    if is_placeholder(value):
        return None
    ent = shannon_entropy(value)
    if _PASSWORD_KEY.search(key):
        return ent if ent >= MIN_ENTROPY else None
    if len(value) < MIN_TOKEN_LENGTH or ent < MIN_TOKEN_ENTROPY:
        return None
    return ent


def score_value(key: str, value: str) -> float | None:
    """Public for tests: the entropy of ``value`` if ``key = value`` would be reported."""
    return _score(key, value)
