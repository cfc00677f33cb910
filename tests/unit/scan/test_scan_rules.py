"""Rules data: schema validation, compilation, and every rule's examples."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import pytest
import scan_fakes

from sealbox.errors import InvalidInput
from sealbox.scan.detectors.rule import RuleDetector
from sealbox.scan.rules import (
    Rule,
    RuleSet,
    check_examples,
    load_rules,
    parse_rules,
    shannon_entropy,
)

BASE = """
version = 1
[[rules]]
id = "demo"
description = "Demo"
category = "test"
severity = "high"
regex = 'demo_[a-z0-9]{12}'
keywords = ["demo_"]
"""


def rule_matches(rule: Rule, text: str) -> bool:
    data = text.encode()
    if not any(kw.encode() in data.lower() for kw in rule.keywords):
        return False
    return any(True for _ in RuleDetector.detect_rule(rule, data))


def test_fixture_rules_compile(rules: RuleSet) -> None:
    assert {"aws-access-key-id", "github-pat", "private-key", "slack-bot-token"} <= rules.ids()


def test_fixture_examples_match(rules: RuleSet) -> None:
    assert check_examples(rules.rules, rule_matches) == []


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (('severity = "high"', 'severity = "urgent"'), "severity"),
        (('keywords = ["demo_"]', "keywords = []"), "keywords"),
        (('keywords = ["demo_"]', 'keywords = ["DEMO"]'), "lowercase"),
        (("regex = 'demo_[a-z0-9]{12}'", "regex = '(?<=x)demo'"), "RE2"),
        (("regex = 'demo_[a-z0-9]{12}'", "regex = 'demo(x)\\1'"), "RE2"),
        (('id = "demo"\n', 'id = "demo"\nsecret_group = 3\n'), "secret_group"),
        (('id = "demo"\n', 'id = "demo"\nentropy = "high"\n'), "entropy"),
        (('id = "demo"\n', 'id = "demo"\ncolour = 1\n'), "unknown key"),
        (('description = "Demo"\n', ""), "missing 'description'"),
        (("version = 1", "version = 2"), "version"),
    ],
)
def test_schema_errors_name_the_rule(patch: tuple[str, str], message: str) -> None:
    text = BASE.replace(*patch)
    with pytest.raises(InvalidInput) as exc:
        parse_rules(text)
    assert message in str(exc.value)
    if "version" not in message:
        assert "'demo'" in str(exc.value)


def test_duplicate_ids_rejected() -> None:
    with pytest.raises(InvalidInput, match="duplicate"):
        parse_rules(BASE + BASE.split("version = 1", 1)[1])


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not valid TOML"):
        parse_rules("[[rules]\n")
    with pytest.raises(InvalidInput, match="cannot read"):
        load_rules(tmp_path / "nope.toml")


def test_entropy() -> None:
    assert shannon_entropy("") == 0.0
    assert shannon_entropy("aaaa") == 0.0
    assert shannon_entropy("abcd") == pytest.approx(2.0)
    assert shannon_entropy(scan_fakes.password(scan_fakes.rng(), 40)) > 4.0


def _builtin_present() -> bool:
    return importlib.resources.files("sealbox.scan").joinpath("rules.toml").is_file()


builtin = pytest.mark.skipif(not _builtin_present(), reason="rules.toml not landed yet")


@builtin
def test_builtin_rules_load_and_are_many() -> None:
    rs = load_rules()
    assert len(rs.rules) >= 150


@builtin
def test_builtin_rules_examples() -> None:
    rs = load_rules()
    assert check_examples(rs.rules, rule_matches) == []
