"""Fixtures of the scanner's unit tests: a small rules set and engines built on it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # scan_fakes, shared with integration tests
import scan_fakes

from sealbox.scan.engine import Engine
from sealbox.scan.rules import RuleSet, parse_rules


@pytest.fixture(scope="session")
def rules() -> RuleSet:
    return parse_rules(scan_fakes.rules_toml(), "fixture rules")


@pytest.fixture
def engine(rules: RuleSet) -> Engine:
    return Engine(rules)
