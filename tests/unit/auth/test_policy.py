"""Policy decisions, checked against a small reference model with Hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealbox.auth.policy import (
    GRANTS,
    Capability,
    Policy,
    Rule,
    decide,
    glob_match,
    parse_policy,
    parse_policy_text,
)
from sealbox.errors import InvalidInput


def ref_match(pattern: str, path: str) -> bool:
    """Reference glob: a direct recursive matcher, no regular expressions."""
    if not pattern:
        return not path
    if pattern.startswith("**"):
        return any(ref_match(pattern[2:], path[i:]) for i in range(len(path) + 1))
    if pattern[0] == "*":
        return any(
            ref_match(pattern[1:], path[i:]) for i in range(len(path) + 1) if "/" not in path[:i]
        )
    if not path:
        return False
    if pattern[0] == "?":
        return path[0] != "/" and ref_match(pattern[1:], path[1:])
    return pattern[0] == path[0] and ref_match(pattern[1:], path[1:])


def ref_decide(policies: list[Policy], path: str, cap: Capability) -> bool:
    matching = [r for p in policies for r in p.rules if ref_match(r.path, path)]
    if any(r.deny and cap in r.capabilities for r in matching):
        return False
    return any(
        not r.deny and (cap in r.capabilities or Capability.ADMIN in r.capabilities)
        for r in matching
    )


segment = st.sampled_from(["payments", "billing", "prod", "dev", "DB_URL", "API_KEY", "x"])
pattern_segment = st.one_of(segment, st.sampled_from(["*", "**", "DB_*", "*_KEY", "p?od", "?"]))
paths = st.lists(segment, min_size=1, max_size=3).map("/".join)
patterns = st.lists(pattern_segment, min_size=1, max_size=3).map("/".join)
caps = st.sampled_from(list(Capability))
rules = st.builds(
    Rule,
    path=patterns,
    capabilities=st.frozensets(caps, min_size=1),
    deny=st.booleans(),
)
policies = st.lists(
    st.builds(Policy, name=st.just("p"), rules=st.lists(rules, min_size=1, max_size=4).map(tuple)),
    min_size=0,
    max_size=3,
)


@settings(max_examples=2000, deadline=None)
@given(patterns, paths)
def test_glob_matches_reference(pattern: str, path: str) -> None:
    assert glob_match(pattern, path) == ref_match(pattern, path)


@settings(max_examples=2000, deadline=None)
@given(policies, paths, caps)
def test_decisions_match_reference(pols: list[Policy], path: str, cap: Capability) -> None:
    decision = decide(pols, path, cap)
    assert decision.allowed == ref_decide(pols, path, cap)
    if decision.allowed:
        assert decision.rule is not None and not decision.rule.deny


def test_default_deny_and_deny_wins() -> None:
    allow = Policy("a", (Rule("payments/prod/*", frozenset({Capability.READ})),))
    deny = Policy("d", (Rule("payments/prod/ADMIN_*", frozenset(GRANTS), deny=True),))
    assert decide([], "payments/prod/DB", Capability.READ).allowed is False
    assert decide([allow], "payments/prod/DB", Capability.READ).allowed
    assert not decide([allow], "payments/prod/DB", Capability.WRITE).allowed
    d = decide([allow, deny], "payments/prod/ADMIN_KEY", Capability.READ)
    assert not d.allowed and "policy 'd'" in d.explain()
    assert not decide([allow], "payments/dev/DB", Capability.READ).allowed


def test_star_does_not_cross_segments() -> None:
    assert glob_match("payments/*", "payments/prod")
    assert not glob_match("payments/*", "payments/prod/DB")
    assert glob_match("payments/**", "payments/prod/DB")


def test_parse_toml_and_yaml() -> None:
    toml = (
        'name = "ci"\n[[rules]]\npath = "payments/prod/*"\ncapabilities = ["read", "list"]\n'
        '[[rules]]\npath = "payments/prod/ROOT_*"\ncapabilities = ["deny"]\n'
    )
    yaml = "name: ci\nrules:\n  - path: payments/prod/*\n    capabilities: [read, list]\n  - path: payments/prod/ROOT_*\n    capabilities: [deny]\n"
    assert parse_policy_text(toml, fmt="toml", source="t") == parse_policy_text(
        yaml, fmt="yaml", source="y"
    )


@pytest.mark.parametrize(
    "doc",
    [
        {"name": "x"},
        {"name": "x", "rules": []},
        {"name": "BAD NAME", "rules": [{"path": "a", "capabilities": ["read"]}]},
        {"name": "x", "rules": [{"path": "a", "capabilities": ["fly"]}]},
        {"name": "x", "rules": [{"path": "a", "capabilities": []}]},
        {"name": "x", "rules": [{"path": "../etc", "capabilities": ["read"]}]},
        {"name": "x", "rules": [{"path": "a", "capabilities": ["read"], "extra": 1}]},
        {"name": "x", "rules": [{"path": "a", "capabilities": ["read"]}], "colour": "red"},
        [],
    ],
)
def test_bad_policies_are_refused(doc: object) -> None:
    with pytest.raises(InvalidInput):
        parse_policy(doc)


def test_unparseable_text() -> None:
    with pytest.raises(InvalidInput, match="not valid toml"):
        parse_policy_text("name = ", fmt="toml", source="f.toml")
