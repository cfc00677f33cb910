"""The engine: runs every detector over one text, then applies the allowlists.

One keyword pass decides which checks run: all detectors' keywords go into a single
case-insensitive RE2 set, matched once over the text (a DFA pass; ~500 MB/s here), and only the
rules whose keywords occurred are run. Known values need no prefilter: their matcher is
itself one linear pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import re2

from sealbox.scan.allow import INLINE_MARKER, ScanConfig
from sealbox.scan.detectors.generic import GenericDetector
from sealbox.scan.detectors.interface import Detector, Hit
from sealbox.scan.detectors.known import KnownValuesDetector
from sealbox.scan.detectors.rule import RuleDetector
from sealbox.scan.findings import Confidence, DetectorKind, Finding, fingerprint, redact
from sealbox.scan.rules import RuleSet
from sealbox.scan.text import ScanText

#: Findings kept per text; a file past this is generated data, and a note says so.
MAX_FINDINGS_PER_TEXT = 500


@dataclass(frozen=True)
class EngineOptions:
    """What the engine runs."""

    generic: bool = True
    #: findings below this confidence are not reported (``--min-confidence``)
    min_confidence: Confidence = Confidence.MEDIUM


class Engine:
    """Detectors + allowlist. Build once, then call :meth:`scan_text` per text."""

    def __init__(
        self,
        rules: RuleSet,
        *,
        config: ScanConfig | None = None,
        known: KnownValuesDetector | None = None,
        options: EngineOptions | None = None,
    ) -> None:
        self.config = config or ScanConfig()
        opts = options or EngineOptions()
        self.min_confidence = opts.min_confidence
        disabled = self.config.disable_rules
        active = RuleSet(tuple(r for r in rules.rules if r.id not in disabled))
        self.rule_count = len(active.rules)
        detectors: list[Detector] = [RuleDetector(active)]
        generic = GenericDetector(provider_prefixes=provider_prefixes(active))
        if opts.generic and "generic-secret-assignment" not in disabled:
            detectors.append(generic)
        if known is not None and "sealbox-known-value" not in disabled:
            detectors.append(known)
        self._detectors = tuple(detectors)
        kw_ids: dict[str, set[str]] = {}
        for det in detectors:
            for kw, ids in det.keywords().items():
                kw_ids.setdefault(kw, set()).update(ids)
        self._kw_list = sorted(kw_ids)
        self._kw_ids = [frozenset(kw_ids[k]) for k in self._kw_list]
        self._kwset: re2.Set | None = None
        if self._kw_list:
            set_opts = re2.Options()
            set_opts.case_sensitive = False
            set_opts.max_mem = 256 << 20
            set_opts.log_errors = False
            kwset = re2.Set.SearchSet(set_opts)
            for kw in self._kw_list:
                kwset.Add(re2.escape(kw.encode()))
            kwset.Compile()
            self._kwset = kwset

    def triggered(self, data: bytes) -> frozenset[str]:
        """Ids of the checks whose keywords occur in ``data`` (case-insensitively)."""
        if self._kwset is None:
            return frozenset()
        # NOTE: RE2::Set.Match returns the indices of the patterns found (the stubs say bool).
        idx = cast("list[int] | None", self._kwset.Match(data))
        if not idx:
            return frozenset()
        out: set[str] = set()
        for i in idx:
            out |= self._kw_ids[i]
        return frozenset(out)

    def hits(self, text: ScanText) -> list[Hit]:
        """Raw hits of every detector, before allowlists (secrets inside: keep local)."""
        trig = self.triggered(text.data)
        out: list[Hit] = []
        for det in self._detectors:
            out.extend(det.detect(text, trig))
        return _drop_overlaps(out)

    def scan_text(self, text: ScanText, notes: list[str] | None = None) -> list[Finding]:
        """Findings in ``text`` after inline and path/rule allowlists."""
        cfg = self.config
        findings: list[Finding] = []
        for hit in self.hits(text):
            if not hit.confidence.at_least(self.min_confidence):
                continue
            if cfg.rule_allows and cfg.rule_allowed(hit.rule_id, text.path):
                continue
            if INLINE_MARKER in text.line_bytes(hit.start) or (
                hit.end > hit.start and INLINE_MARKER in text.line_bytes(hit.end - 1)
            ):
                continue
            findings.append(make_finding(hit, text))
            if len(findings) >= MAX_FINDINGS_PER_TEXT:
                if notes is not None:
                    notes.append(
                        f"{text.path}: more than {MAX_FINDINGS_PER_TEXT} findings, rest skipped"
                    )
                break
        return findings


#: Rule keywords that end like a token prefix but are ordinary words at a value's start.
_WORD_PREFIXES = frozenset(["secret_", "box-", "box_", "hec-", "hec_", "ico-", "pul-"])


def provider_prefixes(rules: RuleSet) -> tuple[str, ...]:
    """Token prefixes of the provider rules (``ghp_``, ``glpat-``, ``xoxb-``), from their
    keywords: a generic value starting with one that its rule did not accept is a truncated
    or made-up example."""
    out = {
        kw
        for r in rules.rules
        if r.category != "private-key"
        for kw in r.keywords
        if len(kw) >= 4 and kw[-1] in "_-" and kw not in _WORD_PREFIXES
    }
    return tuple(sorted(out))


def make_finding(hit: Hit, text: ScanText) -> Finding:
    """A redacted :class:`Finding` for ``hit`` (the secret bytes go no further)."""
    shown = hit.label or redact(hit.secret.decode("utf-8", "replace"))
    line = text.line_of(hit.start)
    end_line = text.line_of(max(hit.start, hit.end - 1))
    return Finding(
        rule_id=hit.rule_id,
        description=hit.description,
        severity=hit.severity,
        detector=hit.kind,
        path=text.path,
        line=line,
        column=text.column_of(hit.start),
        end_line=end_line,
        redacted=shown,
        fingerprint=fingerprint(hit.rule_id, text.path, hit.secret),
        entropy=round(hit.entropy, 2) if hit.entropy is not None else None,
        confidence=hit.confidence,
    )


def _drop_overlaps(hits: Sequence[Hit]) -> list[Hit]:
    """Drop generic hits that overlap a rule or known-value hit, and exact duplicates."""
    specific = [(h.start, h.end) for h in hits if h.kind is not DetectorKind.GENERIC]
    seen: set[tuple[str, int, int]] = set()
    out: list[Hit] = []
    for h in sorted(hits, key=lambda h: (h.start, h.end, h.rule_id)):
        key = (h.rule_id, h.start, h.end)
        if key in seen:
            continue
        if h.kind is DetectorKind.GENERIC and any(s < h.end and h.start < e for s, e in specific):
            continue
        seen.add(key)
        out.append(h)
    return out
