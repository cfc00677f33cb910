"""Provider rules detector: runs the rules whose keywords occurred in the text."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator

import re2

from sealbox.scan.checks import CHECKS
from sealbox.scan.detectors.interface import Hit
from sealbox.scan.findings import Confidence, DetectorKind
from sealbox.scan.rules import Rule, RuleSet, shannon_entropy
from sealbox.scan.text import ScanText

#: A rule that matches more often than this in one text is stopped there (minified or
#: generated files); the engine reports a note.
MAX_MATCHES_PER_RULE = 200


class RuleDetector:
    """Finds provider credentials with the compiled rules of a :class:`RuleSet`."""

    def __init__(self, rules: RuleSet) -> None:
        self._rules = {r.id: r for r in rules.rules}

    def keywords(self) -> dict[str, list[str]]:
        """Keyword -> ids of the rules it enables."""
        out: dict[str, list[str]] = {}
        for rule in self._rules.values():
            for kw in rule.keywords:
                out.setdefault(kw, []).append(rule.id)
        return out

    def detect(self, text: ScanText, triggered: frozenset[str]) -> Iterator[Hit]:
        """Hits of every triggered rule."""
        for rid in sorted(triggered):
            rule = self._rules.get(rid)
            if rule is not None:
                yield from self.detect_rule(rule, text.data)

    @staticmethod
    def detect_rule(rule: Rule, data: bytes) -> Iterator[Hit]:
        """Hits of one rule in ``data`` (no keyword check)."""
        for n, m in enumerate(rule.regex.finditer(data)):
            if n >= MAX_MATCHES_PER_RULE:
                break
            start, end = m.span(rule.secret_group)
            if start < 0 or end <= start:
                continue
            secret = data[start:end]
            ent = None
            conf = rule.confidence
            if rule.entropy is not None:
                ent = shannon_entropy(secret)
                if ent < rule.entropy:
                    # a password in a URL or connection string is human-made: below the
                    # rule's floor it is still reported, one step less sure
                    if rule.category not in VALUE_CATEGORIES or ent < VALUE_MIN_ENTROPY:
                        continue
                    conf = Confidence.MEDIUM
            if rule.check is not None and not CHECKS[rule.check](m.group(0), secret):
                continue  # e.g. "Basic Authorization": a word, not credentials
            if rule.category == "private-key":
                conf = min(conf, private_key_confidence(data, m.start(), m.end()), key=_rank)
            elif rule.category in VALUE_CATEGORIES:
                judged = value_confidence(secret, data, m)
                if judged is None:
                    continue
                conf = min(conf, judged, key=_rank)
            yield Hit(
                rule_id=rule.id,
                description=rule.description,
                severity=rule.severity,
                kind=DetectorKind.RULE,
                start=start,
                end=end,
                secret=secret,
                entropy=ent,
                confidence=conf,
            )


def _rank(c: Confidence) -> int:
    return c.rank


#: Rule categories whose secret is a free-form value (a password in a URL or connection
#: string): placeholders and fixtures there are judged like generic values.
VALUE_CATEGORIES = frozenset(["url-credential", "connection-string", "generic"])
#: …and below this entropy (bits/char) such a value is dropped even there.
VALUE_MIN_ENTROPY = 1.5
_ENV_NAME = re.compile(rb"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")
_EXAMPLE_HOST = re.compile(
    rb"@(?:[\w-]+\.)*(?:example|invalid|test)(?:\.[a-z]{2,6})?(?:[:/]|$)", re.IGNORECASE
)


def value_confidence(secret: bytes, data: bytes, m: re2._Match[bytes]) -> Confidence | None:
    """None for a placeholder (``user:password@``, ``${PASS}``) or an env-var name; low for an
    obvious fixture (``p%40ssword``, ``Test@12345``) or credentials on an example/test host
    (``user:pw@example.com``); else high."""
    from urllib.parse import unquote

    from sealbox.scan.detectors.generic import is_fixture
    from sealbox.scan.placeholders import is_placeholder

    value = unquote(secret.decode("utf-8", "replace"))
    if _ENV_NAME.match(secret):
        return None
    if is_placeholder(value):
        # a random value that merely embeds EXAMPLE/FAKE is a documented stand-in: low
        return Confidence.LOW if len(value) >= 16 and shannon_entropy(value) >= 3.5 else None
    around = data[m.start(0) : m.end(0) + 80].split(b"\n", 1)[0]
    if is_fixture(value) or _EXAMPLE_HOST.search(around):
        return Confidence.LOW
    return Confidence.HIGH


#: How far past a private-key header its body is looked for.
KEY_WINDOW = 700
_B64_RUN = re.compile(rb"[A-Za-z0-9+/=]{16,}")
_ENCRYPTED = re.compile(rb"ENCRYPTED|Proc-Type:\s*4,ENCRYPTED|DEK-Info:|Encryption:\s*(?!none)\S+")
_OPENSSH_MAGIC = b"openssh-key-v1\x00"


def private_key_confidence(data: bytes, start: int, end: int) -> Confidence:
    """How usable the private key whose header spans ``[start, end)`` looks.

    Low when it is encrypted (``ENCRYPTED PRIVATE KEY``, ``Proc-Type: 4,ENCRYPTED``, a
    passphrase-protected OpenSSH key, a PuTTY key with ``Encryption:`` other than none) or when
    no key body follows the header (a header string in code that parses or builds keys).
    """
    nl = data.find(b"\n", start, end)
    header_end = nl if nl >= 0 else end
    header = data[max(0, start - 40) : header_end]
    window = data[header_end : max(end, header_end) + KEY_WINDOW]
    if b"ENCRYPTED" in header or _ENCRYPTED.search(window[:200]):
        return Confidence.LOW
    runs = _B64_RUN.findall(window)
    body = b"".join(runs)
    if len(body) < 48 or shannon_entropy(body) < 4.5:
        return Confidence.LOW  # no body, or a made-up one (s3cr3ts3cr3t…)
    if re.search(rb"\.\.\.|\xe2\x80\xa6|<[a-z ]+>", window[:400]):
        return Confidence.LOW  # an elided body in docs: MIIE… then "..."
    if b"OPENSSH" in header:
        blob = body[:64]
        try:
            raw = base64.b64decode(blob[: len(blob) - len(blob) % 4])
        except (binascii.Error, ValueError):
            return Confidence.MEDIUM
        if raw.startswith(_OPENSSH_MAGIC):
            n = int.from_bytes(raw[15:19], "big")
            if raw[19 : 19 + n] != b"none":
                return Confidence.LOW
    return Confidence.HIGH
