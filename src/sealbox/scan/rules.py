"""Load, validate and compile the provider rules kept as data in ``rules.toml``.

Schema (top-level ``version = 1`` and a ``[[rule]]`` array of tables): ``id``, ``description``,
``category``, ``severity`` (low|medium|high|critical), ``regex`` (the subset of syntax common
to Python ``re`` and RE2), ``secret_group`` (default 0), ``keywords`` (non-empty list of
lowercase literals; the rule is tried only when one occurs, case-insensitively),
optional ``entropy`` (minimum Shannon bits per character of the secret), optional
``confidence`` (low|medium|high, default high: how sure a match is a live secret),
optional ``check`` (the name of a post-match check in :data:`sealbox.scan.checks.CHECKS`),
``examples`` (must match) and ``counter_examples`` (must not). Every problem is an
:class:`InvalidInput` that names the rule.
"""

from __future__ import annotations

import math
import tomllib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import re2

from sealbox.errors import InvalidInput
from sealbox.scan.checks import CHECKS
from sealbox.scan.findings import Confidence, Severity

SUPPORTED_VERSION = 1
#: RE2 memory budget per rule; complex rules with large counted repetitions need more than
#: the 8 MiB default to stay on the fast DFA.
RULE_MAX_MEM = 64 << 20
_REQUIRED = ("id", "description", "category", "severity", "regex", "keywords")
_KNOWN_KEYS = frozenset(
    (
        *_REQUIRED,
        "secret_group",
        "entropy",
        "confidence",
        "check",
        "examples",
        "counter_examples",
        "tags",
    )
)


def shannon_entropy(value: bytes | str) -> float:
    """Shannon entropy of ``value`` in bits per character (0.0 for an empty value)."""
    n = len(value)
    if n == 0:
        return 0.0
    counts = Counter(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


@dataclass(frozen=True)
class Rule:
    """One compiled provider rule."""

    id: str
    description: str
    category: str
    severity: Severity
    pattern: str
    regex: re2._Regexp[bytes]
    secret_group: int
    keywords: tuple[str, ...]
    entropy: float | None
    examples: tuple[str, ...]
    counter_examples: tuple[str, ...]
    confidence: Confidence = Confidence.HIGH
    check: str | None = None


@dataclass(frozen=True)
class RuleSet:
    """The rules in force for one scan (after per-rule disables)."""

    rules: tuple[Rule, ...]

    def without(self, disabled: Iterable[str]) -> RuleSet:
        """A copy without the rules whose ids are in ``disabled`` (unknown ids are an error)."""
        wanted = set(disabled)
        unknown = wanted - {r.id for r in self.rules}
        if unknown:
            raise InvalidInput(
                f"cannot disable unknown rule(s): {', '.join(sorted(unknown))}",
                hint="see the rule ids in JSON findings or in rules.toml",
                hint_key="scan_rule_ids",
            )
        return RuleSet(tuple(r for r in self.rules if r.id not in wanted))

    def ids(self) -> set[str]:
        """Every rule id."""
        return {r.id for r in self.rules}


def _fail(where: str, msg: str) -> InvalidInput:
    return InvalidInput(f"scan rules: {where}: {msg}")


def _str_list(raw: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise _fail(where, f"'{key}' must be a list of strings")
    return tuple(value)


def compile_rule(raw: Mapping[str, Any], index: int) -> Rule:
    """Validate one rule table and compile its regex; errors name the rule."""
    rid = raw.get("id")
    where = f"rule {rid!r}" if isinstance(rid, str) and rid else f"rule #{index + 1}"
    for key in _REQUIRED:
        if key not in raw:
            raise _fail(where, f"missing '{key}'")
    unknown = set(raw) - _KNOWN_KEYS
    if unknown:
        raise _fail(where, f"unknown key(s) {', '.join(sorted(unknown))}")
    for key in ("id", "description", "category", "regex"):
        if not isinstance(raw[key], str) or not raw[key]:
            raise _fail(where, f"'{key}' must be a non-empty string")
    try:
        severity = Severity(raw["severity"])
    except ValueError:
        raise _fail(
            where, f"severity {raw['severity']!r} is not one of low, medium, high, critical"
        ) from None
    keywords = _str_list(raw, "keywords", where)
    if not keywords or any(not k or k != k.lower() for k in keywords):
        raise _fail(where, "'keywords' must be a non-empty list of non-empty lowercase literals")
    group = raw.get("secret_group", 0)
    if not isinstance(group, int) or isinstance(group, bool) or group < 0:
        raise _fail(where, "'secret_group' must be a non-negative integer")
    entropy = raw.get("entropy")
    if entropy is not None and (
        not isinstance(entropy, int | float) or isinstance(entropy, bool) or entropy < 0
    ):
        raise _fail(where, "'entropy' must be a non-negative number")
    try:
        confidence = Confidence(raw.get("confidence", "high"))
    except ValueError:
        raise _fail(where, "'confidence' must be one of low, medium, high") from None
    check = raw.get("check")
    if check is not None and (not isinstance(check, str) or check not in CHECKS):
        raise _fail(where, f"'check' must be one of {', '.join(sorted(CHECKS))}")
    options = re2.Options()
    options.max_mem = RULE_MAX_MEM
    options.log_errors = False
    try:
        regex = re2.compile(raw["regex"].encode(), options)
    except re2.error as exc:
        raise _fail(where, f"regex does not compile under RE2: {exc}") from exc
    if group > regex.groups:
        raise _fail(where, f"secret_group {group} but the regex has {regex.groups} group(s)")
    return Rule(
        id=raw["id"],
        description=raw["description"],
        category=raw["category"],
        severity=severity,
        pattern=raw["regex"],
        regex=regex,
        secret_group=group,
        keywords=keywords,
        entropy=float(entropy) if entropy is not None else None,
        examples=_str_list(raw, "examples", where),
        counter_examples=_str_list(raw, "counter_examples", where),
        confidence=confidence,
        check=check,
    )


def parse_rules(text: str, source: str = "rules.toml") -> RuleSet:
    """Parse and compile a rules document; duplicate ids and bad versions are errors."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"scan rules: {source} is not valid TOML: {exc}") from exc
    if doc.get("version") != SUPPORTED_VERSION:
        raise InvalidInput(
            f"scan rules: {source}: version must be {SUPPORTED_VERSION}, got {doc.get('version')!r}"
        )
    raw_rules = doc.get("rule", doc.get("rules"))
    if not isinstance(raw_rules, list) or not raw_rules:
        raise InvalidInput(f"scan rules: {source}: no [[rule]] tables defined")
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_rules):
        if not isinstance(raw, dict):
            raise _fail(f"rule #{i + 1}", "must be a table")
        rule = compile_rule(raw, i)
        if rule.id in seen:
            raise _fail(f"rule {rule.id!r}", "duplicate id")
        seen.add(rule.id)
        rules.append(rule)
    return RuleSet(tuple(rules))


def load_rules(path: Path | None = None) -> RuleSet:
    """Load ``path``, or the rules shipped with sealbox (package data) when ``None``."""
    if path is None:
        resource = resources.files("sealbox.scan").joinpath("rules.toml")
        try:
            text = resource.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise InvalidInput(
                "scan rules: the built-in rules.toml is missing from this installation",
                hint="reinstall sealbox, or give a rules file of your own",
                hint_key="scan_rules_file",
            ) from exc
        return parse_rules(text, "built-in rules.toml")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"scan rules: cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"scan rules: {path} is not UTF-8") from exc
    return parse_rules(text, str(path))


def check_examples(rules: Sequence[Rule], detect: Any) -> list[str]:
    """Problems with the rules' examples: ``detect(rule, text) -> bool`` decides a match."""
    problems: list[str] = []
    for rule in rules:
        for i, ex in enumerate(rule.examples):
            if not detect(rule, ex):
                problems.append(f"{rule.id}: example #{i + 1} does not match")
        for i, ex in enumerate(rule.counter_examples):
            if detect(rule, ex):
                problems.append(f"{rule.id}: counter-example #{i + 1} matches")
    return problems
