"""Known values: exact leaks of the secrets sealbox manages, every version.

Each value (8 bytes or longer: shorter ones would match by chance) is looked for as is, in
standard and URL-safe base64 (at the three byte alignments, so a value inside a longer base64
stream is found too), URL-encoded, in lower- and upper-case hex, and JSON-escaped (a JSON log
line writes a non-ASCII value as ``\u00e9`` escapes, a quote or backslash escaped). All
patterns go into one RE2 alternation compiled in Latin-1 mode (byte semantics), a single pass
linear in the text; see ``docs/scanner.md`` for the measurements behind this choice. A finding
names the secret's path and version, never its value.
"""

from __future__ import annotations

import base64
import binascii
import json
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import re2

from sealbox.errors import InvalidInput
from sealbox.model import SecretValue
from sealbox.scan.detectors.interface import Hit
from sealbox.scan.findings import DetectorKind, Severity
from sealbox.scan.text import ScanText

RULE_ID = "sealbox-known-value"
#: Values shorter than this are skipped: 7 bytes and fewer match ordinary text too often.
MIN_VALUE_BYTES = 8
#: Shortest encoded fragment worth matching (a base64 slice of an aligned value).
MIN_PATTERN_BYTES = 8
MAX_MEM = 256 << 20
MAX_HITS = 200
_LATIN1: int = re2.Options.Encoding.LATIN1  # type: ignore[attr-defined]


class KnownValue(Protocol):
    """What the vault yields for each version of each secret."""

    @property
    def path(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def value(self) -> SecretValue: ...


@dataclass(frozen=True)
class _Label:
    path: str
    version: int
    encoding: str


def _b64_slices(value: bytes, alphabet: str) -> Iterator[tuple[bytes, str]]:
    """Base64 of ``value`` at offsets 0, 1, 2 inside a stream: the characters that depend
    only on the value's bytes."""
    for k in range(3):
        raw = b"\0" * k + value
        enc = (
            base64.urlsafe_b64encode(raw) if alphabet == "base64url" else base64.b64encode(raw)
        ).rstrip(b"=")
        first = -(-8 * k // 6)  # ceil(8k/6)
        last = (8 * (k + len(value))) // 6  # exclusive
        piece = enc[first:last]
        if k == 0:
            yield enc, alphabet  # whole value, unpadded (also matches the padded form)
        if len(piece) >= MIN_PATTERN_BYTES and piece != enc:
            yield piece, f"{alphabet}, offset {k}"


def encodings(value: bytes) -> Iterator[tuple[bytes, str]]:
    """Every byte pattern under which ``value`` is looked for, with the encoding's name."""
    yield value, "exact"
    yield from _b64_slices(value, "base64")
    yield from _b64_slices(value, "base64url")
    for name, quoted in (
        ("url-encoded", urllib.parse.quote_from_bytes(value, safe="").encode()),
        ("url-encoded", urllib.parse.quote_plus(value, safe="").encode()),
    ):
        if quoted != value:
            yield quoted, name
    hexed = binascii.hexlify(value)
    yield hexed, "hex"
    yield hexed.upper(), "hex"
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return  # a JSON string cannot hold it
    for ascii_only in (True, False):
        escaped = json.dumps(text, ensure_ascii=ascii_only)[1:-1].encode()
        if escaped != value:
            yield escaped, "json-escaped"


class KnownValuesDetector:
    """Finds exact (and encoded) occurrences of known secret values."""

    def __init__(self, values: Iterable[KnownValue]) -> None:
        table: dict[bytes, list[_Label]] = {}
        count = 0
        for item in values:
            raw = item.value.reveal_bytes()
            if len(raw) < MIN_VALUE_BYTES:
                continue
            count += 1
            for pattern, enc in encodings(raw):
                labels = table.setdefault(pattern, [])
                label = _Label(item.path, item.version, enc)
                if label not in labels:
                    labels.append(label)
        self._table = table
        self.values_count = count
        self._regex: re2._Regexp[bytes] | None = None
        if table:
            options = re2.Options()
            options.encoding = _LATIN1
            options.max_mem = MAX_MEM
            options.log_errors = False
            options.never_capture = True
            # Longest first so that leftmost-first alternation prefers the longest pattern.
            alternation = b"|".join(
                re2.escape(p) for p in sorted(table, key=lambda p: (-len(p), p))
            )
            try:
                self._regex = re2.compile(alternation, options)
            except re2.error as exc:
                raise InvalidInput("known-value matcher could not be built") from exc

    def __repr__(self) -> str:
        return f"KnownValuesDetector(values={self.values_count})"

    def keywords(self) -> dict[str, list[str]]:
        """No prefilter: the alternation itself is the single pass."""
        return {}

    def detect(self, text: ScanText, triggered: frozenset[str]) -> Iterator[Hit]:
        """Hits of known values in ``text``."""
        if self._regex is None:
            return
        data = text.data
        for n, m in enumerate(self._regex.finditer(data)):
            if n >= MAX_HITS:
                break
            start, end = m.span()
            labels = self._table.get(data[start:end])
            if not labels:
                continue
            first = labels[0]
            names = sorted({f"{lb.path} v{lb.version}" for lb in labels})
            shown = ", ".join(names[:3]) + (f" (+{len(names) - 3} more)" if len(names) > 3 else "")
            yield Hit(
                rule_id=RULE_ID,
                description=f"Value of managed secret {shown} ({first.encoding})",
                severity=Severity.CRITICAL,
                kind=DetectorKind.KNOWN,
                start=start,
                end=end,
                secret=data[start:end],
                label=f"{first.path}@v{first.version}",
            )
