"""Policies: named documents of path rules with capabilities. Default deny; deny wins.

A rule matches a path with a glob: ``*`` and ``?`` stay inside one ``/`` segment, ``**``
crosses segments. Secret operations are checked on ``project/env/NAME``; listing or
running a whole environment on ``project/env/*`` (so ``payments/prod/*`` grants it and
``payments/prod/DB_*`` does not); vault administration on ``sys/<area>``.

``admin`` on a path implies every other capability there. ``deny`` on a rule refuses
every capability it lists (or all, when it lists only ``deny``), whatever else allows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from sealbox.errors import InvalidInput

# NOTE: re-exported: the data shape of a policy is a model value (the SDK returns it too);
# this module is the engine that parses and decides.
from sealbox.model import DENY as DENY  # noqa: PLC0414
from sealbox.model import GRANTS as GRANTS  # noqa: PLC0414
from sealbox.model import Capability as Capability  # noqa: PLC0414
from sealbox.model import Decision as Decision  # noqa: PLC0414
from sealbox.model import Policy as Policy  # noqa: PLC0414
from sealbox.model import Rule as Rule  # noqa: PLC0414

POLICY_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}\Z")
PATH_PATTERN_RE = re.compile(r"[A-Za-z0-9_*?./:-]{1,300}\Z")


@lru_cache(maxsize=4096)
def _compile(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def glob_match(pattern: str, path: str) -> bool:
    return _compile(pattern).match(path) is not None


def parse_policy(data: Any, *, source: str = "policy") -> Policy:
    """A policy from a parsed TOML/YAML/JSON mapping; every problem names its place."""
    if not isinstance(data, dict):
        raise InvalidInput(f"{source}: a policy is a mapping with name and rules")
    unknown = set(data) - {"name", "description", "rules", "rule"}
    if unknown:
        raise InvalidInput(f"{source}: unknown field(s) {', '.join(sorted(unknown))}")
    name = data.get("name")
    if not isinstance(name, str) or not POLICY_NAME_RE.match(name):
        raise InvalidInput(f"{source}: name must be 1-63 lowercase letters, digits, _ . -")
    raw_rules = data.get("rules", data.get("rule"))
    if not isinstance(raw_rules, list) or not raw_rules:
        # An empty policy would silently grant nothing; say so instead.
        raise InvalidInput(f"{source}: policy {name!r} has no rules")
    rules = []
    for i, raw in enumerate(raw_rules, 1):
        where = f"{source}: rule {i}"
        if not isinstance(raw, dict) or set(raw) - {"path", "capabilities"}:
            raise InvalidInput(f"{where}: a rule has exactly path and capabilities")
        path = raw.get("path")
        if not isinstance(path, str) or not PATH_PATTERN_RE.match(path) or ".." in path:
            raise InvalidInput(f"{where}: invalid path pattern {str(path)[:80]!r}")
        caps_raw = raw.get("capabilities")
        if not isinstance(caps_raw, list) or not caps_raw:
            raise InvalidInput(f"{where}: capabilities must be a non-empty list")
        deny = DENY in caps_raw
        caps = set()
        for c in caps_raw:
            if c == DENY:
                continue
            try:
                caps.add(Capability(c))
            except ValueError:
                allowed = ", ".join([*(c.value for c in Capability), DENY])
                raise InvalidInput(f"{where}: unknown capability {c!r} (use {allowed})") from None
        if deny and not caps:
            caps = set(GRANTS)
        rules.append(Rule(path, frozenset(caps), deny))
    description = data.get("description", "")
    if not isinstance(description, str):
        raise InvalidInput(f"{source}: description must be text")
    return Policy(name, tuple(rules), description)


def policy_from_json(text: str) -> Policy:
    return parse_policy(json.loads(text), source="stored policy")


def parse_policy_text(text: str, *, fmt: str, source: str) -> Policy:
    """Parse TOML, YAML or JSON policy text."""
    try:
        if fmt == "toml":
            import tomllib

            data: Any = tomllib.loads(text)
        elif fmt in ("yaml", "yml"):
            import yaml

            data = yaml.safe_load(text)
        elif fmt == "json":
            data = json.loads(text)
        else:
            raise InvalidInput(f"{source}: unknown policy format {fmt!r} (toml, yaml or json)")
    except InvalidInput:
        raise
    except Exception as exc:
        raise InvalidInput(f"{source}: not valid {fmt}: {exc}") from None
    return parse_policy(data, source=source)


def decide(policies: Iterable[Policy], path: str, capability: Capability) -> Decision:
    """Default deny; any matching deny rule wins; else any matching grant allows."""
    grant: tuple[Policy, Rule] | None = None
    for policy in policies:
        for rule in policy.rules:
            if not glob_match(rule.path, path):
                continue
            covers = capability in rule.capabilities or (
                not rule.deny and Capability.ADMIN in rule.capabilities
            )
            if not covers:
                continue
            if rule.deny:
                return Decision(
                    False,
                    capability,
                    path,
                    policy.name,
                    rule,
                    f"denied by policy {policy.name!r} rule {rule.path!r}",
                )
            if grant is None:
                grant = (policy, rule)
    if grant is not None:
        policy, rule = grant
        return Decision(
            True,
            capability,
            path,
            policy.name,
            rule,
            f"allowed by policy {policy.name!r} rule {rule.path!r}",
        )
    return Decision(False, capability, path, None, None, "no rule grants it (default deny)")


ROOT_POLICY = Policy("root", (Rule("**", frozenset(GRANTS)),), "Everything (the bootstrap admin).")
