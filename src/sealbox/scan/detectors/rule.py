"""Provider rules detector: runs the rules whose keywords occurred in the text."""

from __future__ import annotations

from collections.abc import Iterator

from sealbox.scan.detectors.interface import Hit
from sealbox.scan.findings import DetectorKind
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
            if rule.entropy is not None:
                ent = shannon_entropy(secret)
                if ent < rule.entropy:
                    continue
            yield Hit(
                rule_id=rule.id,
                description=rule.description,
                severity=rule.severity,
                kind=DetectorKind.RULE,
                start=start,
                end=end,
                secret=secret,
                entropy=ent,
            )
