"""Values produced by the scanner: findings, notes and the result of one scan.

A :class:`Finding` never holds the secret itself: only a redacted form (first and last
characters) and a fingerprint (rule + path + secret) that identifies it in baselines and in
history scans. The secret stays inside the process that saw it.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field


class Severity(enum.Enum):
    """How bad a leak of this kind is."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Order for sorting: critical first."""
        return _RANK[self]


_RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


class Confidence(enum.Enum):
    """How sure the scanner is that a finding is a real secret (from the rule and context).

    ``high``: a provider format or a strong value in a plain assignment; ``medium``: a value
    that passes its key class' floors; ``low``: reported only on request (``--min-confidence
    low``): encrypted or body-less private keys, weak values in docs, templates and fixtures.
    """

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        """0 (low) … 2 (high)."""
        return _CONF_RANK[self]

    def at_least(self, other: Confidence) -> bool:
        """Whether this confidence reaches ``other``."""
        return _CONF_RANK[self] >= _CONF_RANK[other]

    def lower(self) -> Confidence:
        """One step down (low stays low)."""
        return _CONF_ORDER[max(0, _CONF_RANK[self] - 1)]


_CONF_ORDER = (Confidence.LOW, Confidence.MEDIUM, Confidence.HIGH)
_CONF_RANK = {c: i for i, c in enumerate(_CONF_ORDER)}


class DetectorKind(enum.Enum):
    """Which detector produced a finding."""

    RULE = "rule"
    GENERIC = "generic"
    KNOWN = "known"


def redact(secret: str) -> str:
    """First and last characters only (e.g. ``ghp_…x9Z``); fewer of them for short values."""
    n = len(secret)
    if n == 0:
        return "…"
    if n < 8:
        return secret[0] + "…"
    head = min(4, n // 5)
    tail = min(3, n // 6)
    return secret[:head] + "…" + (secret[-tail:] if tail else "")


def fingerprint(rule_id: str, path: str, secret: bytes) -> str:
    """SHA-256 of rule id + path + secret: identifies a finding in a baseline.

    NOTE: unkeyed, so a weak secret could be guessed offline from a baseline file; the
    baseline is meant to be committed next to the code, which is where the secret already is.
    """
    h = hashlib.sha256()
    h.update(rule_id.encode())
    h.update(b"\0")
    h.update(path.encode("utf-8", "surrogateescape"))
    h.update(b"\0")
    h.update(secret)
    return h.hexdigest()


@dataclass(frozen=True)
class Finding:
    """One leaked secret at one place. Holds no secret: ``redacted`` shows only its edges."""

    rule_id: str
    description: str
    severity: Severity
    detector: DetectorKind
    path: str
    line: int
    column: int
    end_line: int
    redacted: str
    fingerprint: str
    entropy: float | None = None
    confidence: Confidence = Confidence.HIGH
    commit: str | None = None
    author: str | None = None
    date: str | None = None
    last_commit: str | None = None
    last_date: str | None = None
    occurrences: int = 1

    def sort_key(self) -> tuple[str, int, int, str]:
        """Stable order for reports: path, line, column, rule."""
        return (self.path, self.line, self.column, self.rule_id)


@dataclass
class ScanResult:
    """Everything one scan produced: findings, notes for the user, and counters."""

    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files_scanned: int = 0
    bytes_scanned: int = 0
    skipped_binary: int = 0
    skipped_large: int = 0
    skipped_unreadable: int = 0
    skipped_allowed: int = 0
    commits_scanned: int = 0
    errors: list[str] = field(default_factory=list)

    def merge(self, other: ScanResult) -> None:
        """Add another partial result (from a worker) into this one."""
        self.findings.extend(other.findings)
        self.notes.extend(other.notes)
        self.files_scanned += other.files_scanned
        self.bytes_scanned += other.bytes_scanned
        self.skipped_binary += other.skipped_binary
        self.skipped_large += other.skipped_large
        self.skipped_unreadable += other.skipped_unreadable
        self.skipped_allowed += other.skipped_allowed
        self.commits_scanned += other.commits_scanned
        self.errors.extend(other.errors)
