"""Config, path globs, per-rule allows and baselines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import scan_fakes as F

from sealbox.errors import InvalidInput
from sealbox.scan.allow import (
    Baseline,
    find_config,
    load_baseline,
    parse_config,
    parse_size,
    path_matches,
    write_baseline,
)
from sealbox.scan.engine import Engine
from sealbox.scan.rules import RuleSet
from sealbox.scan.text import ScanText


@pytest.mark.parametrize(
    ("path", "glob", "hit"),
    [
        ("tests/fixtures/a.py", "tests/fixtures/**", True),
        ("tests/fixtures/deep/a.py", "tests/**/*.py", True),
        ("src/x.lock", "*.lock", True),
        ("src/a/x.lock", "*.lock", True),
        ("src/x.py", "*.lock", False),
        ("srcx/a.py", "src/**", False),
        ("src/a.py", "src", True),
        ("./docs/a.md", "docs/*.md", True),
        ("docs/sub/a.md", "docs/*.md", False),
    ],
)
def test_globs(path: str, glob: str, hit: bool) -> None:
    assert path_matches(path, [glob]) is hit


def test_config_parse_and_errors(tmp_path: Path) -> None:
    cfg = parse_config(
        'version = 1\ndisable_rules = ["github-pat"]\nallow_paths = ["vendor/**"]\n'
        'max_file_size = "1MiB"\n[[allow]]\nrules = ["private-key"]\npaths = ["docs/**"]\n',
        "cfg",
    )
    assert cfg.disable_rules == {"github-pat"} and cfg.max_file_size == 1 << 20
    assert cfg.path_allowed("vendor/x/y.js") and not cfg.path_allowed("src/y.js")
    assert cfg.rule_allowed("private-key", "docs/a.md")
    assert not cfg.rule_allowed("github-pat", "docs/a.md")
    for bad in ("allow_pathz = []", "disable_rules = 'x'", "[[allow]]\nrules = ['x']", "x = ["):
        with pytest.raises(InvalidInput):
            parse_config(bad, "cfg")
    assert find_config(tmp_path).allow_paths == ()


def test_parse_size() -> None:
    assert parse_size("10MiB") == 10 << 20
    assert parse_size("512k") == 512 * 1024
    assert parse_size("1000") == 1000
    with pytest.raises(InvalidInput):
        parse_size("ten")


def test_engine_applies_rule_allow_and_disable(rules: RuleSet) -> None:
    tok = F.github_token(F.rng(31))
    cfg = parse_config('[[allow]]\nrules = ["github-pat"]\npaths = ["docs/**"]\n', "cfg")
    eng = Engine(rules, config=cfg)
    assert eng.scan_text(ScanText(tok.encode(), "docs/a.md")) == []
    assert len(eng.scan_text(ScanText(tok.encode(), "src/a.md"))) == 1
    eng2 = Engine(rules, config=parse_config('disable_rules = ["github-pat"]', "c"))
    assert eng2.scan_text(ScanText(tok.encode(), "src/a.md")) == []


def test_baseline_roundtrip_without_secret(tmp_path: Path, engine: Engine) -> None:
    r = F.rng(32)
    old, new = F.github_token(r), F.github_token(r)
    first = engine.scan_text(ScanText(f"a = {old}\n".encode(), "a.txt"))
    path = tmp_path / "baseline.json"
    write_baseline(path, first)
    raw = path.read_text()
    assert old not in raw and old[4:20] not in raw
    doc = json.loads(raw)
    assert doc["version"] == 1 and len(doc["findings"][0]["fingerprint"]) == 64
    base = load_baseline(path)
    both = engine.scan_text(ScanText(f"a = {old}\nb = {new}\n".encode(), "a.txt"))
    assert [f.line for f in base.filter(both)] == [2]
    assert load_baseline(tmp_path / "missing.json") == Baseline()
    path.write_text('{"version": 1, "findings": [{"fingerprint": "nope"}]}')
    with pytest.raises(InvalidInput):
        load_baseline(path)
