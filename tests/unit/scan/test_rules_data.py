"""Data checks for the leak scanner's rule file, src/sealbox/scan/rules.toml.

Only the standard library is used (``tomllib``, ``re``, ``math``), so these tests do not depend
on the scanning engine: they check that the data itself is well formed, that every regex uses the
syntax shared by Python ``re`` and Google RE2, and that each rule's examples and counter-examples
behave as documented. An optional test repeats the example checks with RE2 when ``re2`` is
installed.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections import Counter
from pathlib import Path

import pytest

RULES_PATH = Path(__file__).resolve().parents[3] / "src" / "sealbox" / "scan" / "rules.toml"

CATEGORIES = {
    "cloud",
    "forge",
    "ci",
    "payment",
    "messaging",
    "email",
    "ai",
    "registry",
    "observability",
    "saas",
    "private-key",
    "jwt",
    "connection-string",
    "url-credential",
    "sealbox",
    "generic",
}
SEVERITIES = {"low", "medium", "high", "critical"}
REQUIRED = {
    "id": str,
    "description": str,
    "category": str,
    "severity": str,
    "regex": str,
    "keywords": list,
    "examples": list,
    "counter_examples": list,
}
OPTIONAL = {"secret_group": int, "entropy": (int, float), "confidence": str, "check": str}
MIN_RULES = 160
ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")

SEALBOX_TOKEN_RE = r"sbx_[spr]_[A-Za-z0-9_-]{49}"


def _load() -> dict:
    with RULES_PATH.open("rb") as fh:
        return tomllib.load(fh)


DATA = _load()
RULES: list[dict] = DATA.get("rule", [])
RULES_BY_ID = {rule.get("id"): rule for rule in RULES}
RULE_IDS = [str(rule.get("id")) for rule in RULES]


def shannon_entropy(text: str) -> float:
    """Shannon entropy of ``text`` in bits per character."""
    if not text:
        return 0.0
    length = len(text)
    return -sum(n / length * math.log2(n / length) for n in Counter(text).values())


def accepted_secrets(compiled, rule: dict, line: str) -> list[str]:
    """Secrets the engine would report for ``line``: every match whose secret group is
    non-empty and meets the rule's entropy threshold."""
    group = rule.get("secret_group", 0)
    threshold = rule.get("entropy")
    found = []
    for match in compiled.finditer(line):
        secret = match.group(group)
        if not secret:
            continue
        if threshold is not None and shannon_entropy(secret) < threshold:
            continue
        found.append(secret)
    return found


def strip_escapes_and_classes(pattern: str) -> str:
    """Return ``pattern`` with character classes removed and escapes replaced by ``E`` + the
    escaped char, so structural checks are not fooled by e.g. ``[*+]`` or ``\\(``."""
    out = []
    i = 0
    in_class = False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            if not in_class:
                out.append("E" + pattern[i + 1])
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
                out.append("C")
            i += 1
            continue
        if ch == "[":
            in_class = True
            # a leading ] or ^] is literal inside the class
            j = i + 1
            if j < len(pattern) and pattern[j] == "^":
                j += 1
            if j < len(pattern) and pattern[j] == "]":
                j += 1
            i = j
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def portability_problems(pattern: str) -> list[str]:
    """Constructs that Python ``re`` accepts but RE2 rejects (or that we disallow)."""
    problems = []
    for token in ("(?=", "(?!", "(?<=", "(?<!", "(?>", "(?P=", "(?#"):
        if token in pattern:
            problems.append(f"forbidden construct {token!r}")
    if re.search(r"(?<!\\)(?:\\\\)*\\[1-9]", pattern):
        problems.append("numeric backreference / octal escape")
    if re.search(r"(?<!\\)(?:\\\\)*\\(?:Z|k<|g<)", pattern):
        problems.append(r"\Z, \k<> or \g<> escape")
    skeleton = strip_escapes_and_classes(pattern)
    if re.search(r"[*+?}]\+", skeleton):
        problems.append("possessive quantifier")
    body = skeleton[4:] if skeleton.startswith("(?i)") else skeleton
    for m in re.finditer(r"\(\?", body):
        if body[m.end() : m.end() + 1] != ":":
            problems.append("inline flag / special group other than (?: and a leading (?i)")
            break
    for m in re.finditer(r"\{(\d+)(?:,(\d*))?\}", skeleton):
        if any(int(n) > 1000 for n in m.groups() if n):
            problems.append("repetition count above RE2's limit of 1000")
    return problems


# --------------------------------------------------------------------------------------------
# file-level checks
# --------------------------------------------------------------------------------------------


def test_file_version() -> None:
    assert DATA.get("version") == 1
    assert set(DATA) <= {"version", "rule"}


def test_rule_count() -> None:
    assert len(RULES) >= MIN_RULES, f"only {len(RULES)} rules, need at least {MIN_RULES}"


def test_ids_unique() -> None:
    duplicates = sorted(i for i, n in Counter(RULE_IDS).items() if n > 1)
    assert not duplicates, f"duplicate rule ids: {duplicates}"


def test_every_category_covered() -> None:
    seen = {rule.get("category") for rule in RULES}
    assert seen >= CATEGORIES, f"categories without rules: {sorted(CATEGORIES - seen)}"


@pytest.mark.parametrize(
    "needle",
    [
        "AKIA",
        "ghp_",
        "gho_",
        "ghu_",
        "ghs_",
        "ghr_",
        "github_pat_",
        "glpat-",
        "gldt-",
        "glrt-",
        "sk_live_",
        "rk_live_",
        "whsec_",
        "xoxb-",
        "xoxp-",
        "xapp-",
        "hooks.slack.com",
        "SG.",
        "T3BlbkFJ",
        "sk-ant-api03-",
        "hf_",
        "r8_",
        "gsk_",
        "pplx-",
        "npm_",
        "pypi-AgEIcHlwaS5vcmc",
        "rubygems_",
        "oy2",
        "dckr_pat_",
        "NRAK-",
        "sntrys_",
        "glc_",
        "glsa_",
        "dt0c01",
        "lin_api_",
        "ntn_",
        "shpat_",
        "shpss_",
        "shpca_",
        "shppa_",
        "pat-na1-",
        "dp.pt.",
        "hvs.",
        "hvb.",
        ".atlasv1.",
        "pul-",
        "ops_eyJ",
        "PMAK-",
        "AGE-SECRET-KEY-1",
        "BEGIN RSA PRIVATE KEY",
        "BEGIN EC PRIVATE KEY",
        "BEGIN DSA PRIVATE KEY",
        "BEGIN PRIVATE KEY",
        "BEGIN ENCRYPTED PRIVATE KEY",
        "BEGIN OPENSSH PRIVATE KEY",
        "BEGIN PGP PRIVATE KEY BLOCK",
        "PuTTY-User-Key-File",
        "postgres",
        "postgresql",
        "mysql",
        "mongodb+srv",
        "redis",
        "rediss",
        "amqp",
        "jdbc:",
        "sbx_s_",
        "sbx_p_",
        "sbx_r_",
    ],
)
def test_well_known_formats_are_detected(needle: str) -> None:
    """Spot check: some rule has an example containing each well-known prefix, and that
    example is accepted by its rule (so the format is really covered)."""
    for rule in RULES:
        compiled = re.compile(rule["regex"])
        for example in rule["examples"]:
            if needle in example and accepted_secrets(compiled, rule, example):
                return
    pytest.fail(f"no rule has an accepted example containing {needle!r}")


def test_sealbox_token_format() -> None:
    """The sealbox token rule must agree with the generator's format exactly."""
    rules = [r for r in RULES if r["category"] == "sealbox"]
    assert rules
    body = "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v" + "_-x9Zq"
    assert len(body) == 49
    for rule in rules:
        compiled = re.compile(rule["regex"])
        for kind in "spr":
            token = f"sbx_{kind}_{body}"
            assert re.fullmatch(SEALBOX_TOKEN_RE, token)
            for line in (token, f"SEALBOX_TOKEN={token}", f'"{token}"', f"{token}\n"):
                assert accepted_secrets(compiled, rule, line) == [token], line
        for bad in (
            f"sbx_x_{body}",
            f"sbx_s_{body[:-1]}",
            f"sbx_s_{body}x",
            f"sbx_s_{body}-",
            f"_sbx_s_{body}",
        ):
            assert not accepted_secrets(compiled, rule, bad), bad


# --------------------------------------------------------------------------------------------
# per-rule checks
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_schema(rule_id: str) -> None:
    rule = RULES_BY_ID[rule_id]
    for key, typ in REQUIRED.items():
        assert key in rule, f"missing {key!r}"
        assert isinstance(rule[key], typ), f"{key!r} should be {typ.__name__}"
    for key, typ in OPTIONAL.items():
        if key in rule:
            assert isinstance(rule[key], typ) and not isinstance(rule[key], bool), (
                f"bad type for {key!r}"
            )
    unknown = set(rule) - set(REQUIRED) - set(OPTIONAL)
    assert not unknown, f"unknown keys: {sorted(unknown)}"
    assert ID_RE.match(rule["id"]), "id must be kebab-case"
    assert rule["description"].strip()
    assert rule["category"] in CATEGORIES
    assert rule["severity"] in SEVERITIES
    assert rule["keywords"], "keywords must be non-empty"
    for kw in rule["keywords"]:
        assert isinstance(kw, str) and kw, "keywords must be non-empty strings"
        assert kw == kw.lower(), f"keyword {kw!r} must be lowercase"
    assert len(rule["examples"]) >= 2, "need at least 2 examples"
    assert len(rule["counter_examples"]) >= 1, "need at least 1 counter example"
    assert all(isinstance(e, str) for e in rule["examples"] + rule["counter_examples"])
    if "entropy" in rule:
        assert 0 < rule["entropy"] < 8
    assert rule.get("confidence", "high") in ("low", "medium", "high")
    assert rule.get("secret_group", 0) >= 0


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_regex_is_portable(rule_id: str) -> None:
    rule = RULES_BY_ID[rule_id]
    pattern = rule["regex"]
    compiled = re.compile(pattern)
    assert rule.get("secret_group", 0) <= compiled.groups, "secret_group exceeds group count"
    assert not portability_problems(pattern)
    assert not compiled.search(""), "regex must not match empty text"


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_examples_match(rule_id: str) -> None:
    rule = RULES_BY_ID[rule_id]
    compiled = re.compile(rule["regex"])
    for example in rule["examples"]:
        lowered = example.lower()
        assert any(kw in lowered for kw in rule["keywords"]), f"no keyword in example {example!r}"
        assert compiled.search(example), f"regex does not match example {example!r}"
        assert accepted_secrets(compiled, rule, example), (
            f"example {example!r} matches but its secret is empty or below the entropy threshold"
        )


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_counter_examples_do_not_match(rule_id: str) -> None:
    rule = RULES_BY_ID[rule_id]
    compiled = re.compile(rule["regex"])
    for counter in rule["counter_examples"]:
        assert not accepted_secrets(compiled, rule, counter), (
            f"counter example {counter!r} is accepted"
        )


@pytest.mark.parametrize("rule_id", RULE_IDS)
def test_rules_agree_with_re2(rule_id: str) -> None:
    re2 = pytest.importorskip("re2")
    rule = RULES_BY_ID[rule_id]
    py = re.compile(rule["regex"])
    try:
        compiled = re2.compile(rule["regex"])
    except re2.error as exc:
        pytest.fail(f"RE2 rejects the regex: {exc}")
    group = rule.get("secret_group", 0)
    for line in rule["examples"] + rule["counter_examples"]:
        m_py, m_re2 = py.search(line), compiled.search(line)
        assert (m_py is None) == (m_re2 is None), f"engines disagree on {line!r}"
        if m_py is not None:
            assert m_py.group(group) == m_re2.group(group), f"secret differs on {line!r}"
        assert accepted_secrets(py, rule, line) == accepted_secrets(compiled, rule, line), line
