"""What every detector provides, and the raw hit it returns to the engine."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from sealbox.scan.findings import Confidence, DetectorKind, Severity
from sealbox.scan.text import ScanText


@dataclass(frozen=True)
class Hit:
    """A candidate secret at ``[start, end)`` of a text. The secret bytes never leave the
    process that found them: the engine turns a hit into a redacted Finding."""

    rule_id: str
    description: str
    severity: Severity
    kind: DetectorKind
    start: int
    end: int
    secret: bytes = field(repr=False)
    entropy: float | None = None
    #: shown instead of the redacted secret (known values show path and version, no bytes)
    label: str | None = None
    confidence: Confidence = Confidence.HIGH


class Detector(Protocol):
    """A detector: its prefilter keywords and the search itself."""

    def keywords(self) -> dict[str, list[str]]:
        """Lowercase literal -> ids of the checks it enables; empty dict = always run."""
        ...

    def detect(self, text: ScanText, triggered: frozenset[str]) -> Iterator[Hit]:
        """Hits in ``text``; ``triggered`` holds the ids whose keywords occurred."""
        ...
