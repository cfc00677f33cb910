"""The scanner as a library, no CLI: options in, a report out, nothing printed.

Every test here checks (through the ``silent`` fixture) that the scanner wrote nothing to
stdout or stderr: notes and errors belong in the report."""

from __future__ import annotations

import dataclasses
import io
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import scan_fakes as F

from sealbox import errors
from sealbox.model import SecretValue
from sealbox.scan import allow
from sealbox.scan.findings import Confidence
from sealbox.scan.scanner import STREAM_PATH, Scanner, ScanOptions, ScanReport, Target

GIT = ["git", "-c", "user.name=Test", "-c", "user.email=t@example.org",
       "-c", "commit.gpgsign=false"]  # fmt: skip


@pytest.fixture(autouse=True)
def silent(capfd: pytest.CaptureFixture[str]) -> Iterator[None]:
    yield
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


@pytest.fixture
def rules_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("rules") / "rules.toml"
    p.write_text(F.rules_toml())
    return p


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A tree with a GitHub token in src/, an AWS key in fixtures/ and a binary file."""
    root = tmp_path / "tree"
    (root / "src").mkdir(parents=True)
    (root / "fixtures").mkdir()
    (root / "src" / "app.py").write_text(f"x = 1\nTOKEN = '{F.github_token(F.rng(1))}'\n")
    (root / "fixtures" / "keys.txt").write_text(f"aws {F.aws_key(F.rng(2))}\n")
    (root / "logo.png").write_bytes(b"\x89PNG\0\0" * 50)
    return root


def scan(rules_path: Path | None, **kw: Any) -> Scanner:
    return Scanner(dataclasses.replace(ScanOptions(rules_path=rules_path, jobs=1), **kw))


def where(report: ScanReport) -> list[tuple[str, str, int]]:
    return [(f.rule_id, f.path, f.line) for f in report]


def git(repo: Path, *args: str) -> str:
    out = subprocess.run([*GIT, "-C", str(repo), *args], check=True, capture_output=True)
    return out.stdout.decode().strip()


def test_files_findings_in_report_order_with_counters(tree: Path, rules_path: Path) -> None:
    report = scan(rules_path, paths=(str(tree),)).run()
    assert where(report) == [
        ("aws-access-key-id", "fixtures/keys.txt", 1),
        ("github-pat", "src/app.py", 2),
    ]
    res = report.result
    assert (res.files_scanned, res.skipped_binary, res.errors) == (2, 1, [])
    assert res.bytes_scanned == sum(
        len(p.read_bytes()) for p in tree.rglob("*") if p.suffix in (".py", ".txt")
    )
    assert not report.failed and F.github_token(F.rng(1)) not in repr(report)


def test_several_paths_are_named_as_given(
    tree: Path, rules_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tree)
    report = scan(rules_path, paths=("src", "fixtures/keys.txt")).run()
    assert [f.path for f in report] == ["fixtures/keys.txt", "src/app.py"]


def test_missing_path_raises_without_printing(tree: Path, rules_path: Path) -> None:
    scanner = scan(rules_path, paths=(str(tree), str(tree / "gone")))
    with pytest.raises(errors.InvalidInput, match="gone: no such file or directory"):
        scanner.run()


def test_min_confidence_filters_weak_values(tmp_path: Path) -> None:
    (tmp_path / "app.cfg").write_text('password = "admin123"\napi_token = "Qm3vT9zL1xW8pR4nK6sJ"\n')
    default = Scanner(ScanOptions(paths=(str(tmp_path),), jobs=1)).run()
    assert [(f.line, f.confidence) for f in default] == [(2, Confidence.HIGH)]
    low = Scanner(ScanOptions(paths=(str(tmp_path),), jobs=1, min_confidence=Confidence.LOW))
    assert [(f.line, f.confidence) for f in low.run()] == [
        (1, Confidence.LOW),
        (2, Confidence.HIGH),
    ]


def test_allow_list_config_disabled_rules_and_inline_marker(tree: Path, rules_path: Path) -> None:
    (tree / ".sealbox-scan.toml").write_text('allow_paths = ["fixtures/**"]\n')
    report = scan(rules_path, paths=(str(tree),)).run()
    assert where(report) == [("github-pat", "src/app.py", 2)]
    assert report.result.skipped_allowed == 1
    off = frozenset({"github-pat", "generic-secret-assignment"})
    assert where(scan(rules_path, paths=(str(tree),), disable_rules=off).run()) == []
    app = tree / "src" / "app.py"
    app.write_text(app.read_text().replace("'\n", "'  # sealbox:allow\n"))
    assert where(scan(rules_path, paths=(str(tree),)).run()) == []


def test_bad_options_raise_when_built(tree: Path, rules_path: Path) -> None:
    with pytest.raises(errors.InvalidInput, match="unknown rule"):
        scan(rules_path, paths=(str(tree),), disable_rules=frozenset({"no-such-rule"}))
    with pytest.raises(errors.InvalidInput, match="invalid size"):
        scan(rules_path, paths=(str(tree),), max_file_size="lots")
    with pytest.raises(errors.InvalidInput, match="not a git repository"):
        scan(rules_path, target=Target.HISTORY, repo=tree)


def test_max_file_size_skips_large_files(tree: Path, rules_path: Path) -> None:
    report = scan(rules_path, paths=(str(tree),), max_file_size=20).run()
    assert where(report) == [] and report.result.skipped_large == 3
    assert "fixtures/keys.txt: skipped, 25 bytes is over the 20 cap" in report.result.notes


@dataclass(frozen=True)
class KV:
    path: str
    version: int
    value: SecretValue


def test_known_values_from_the_caller(tree: Path, rules_path: Path) -> None:
    value = "db-" + F.rand(F.rng(3), F.ALNUM, 12)
    (tree / "ci.log").write_text(f"connecting with {value} ...\n")
    known = iter([KV("payments/prod/DB_PASSWORD", 4, SecretValue(value))])
    report = scan(rules_path, paths=(str(tree / "ci.log"),)).run(known)
    [f] = report.findings
    assert (f.rule_id, f.redacted) == ("sealbox-known-value", "payments/prod/DB_PASSWORD@v4")
    assert value not in repr(report)


def test_known_values_that_fail_become_a_note(tree: Path, rules_path: Path) -> None:
    def sealed() -> Iterator[KV]:
        raise errors.Sealed("vault is locked")
        yield  # pragma: no cover - makes this a generator

    report = scan(rules_path, paths=(str(tree),)).run(sealed(), notes=["from the caller"])
    assert report.result.notes[:2] == [
        "from the caller",
        "known-value detection skipped: vault is locked",
    ]
    assert len(report.findings) == 2 and not report.failed


def test_baseline_hides_accepted_findings(tree: Path, rules_path: Path) -> None:
    first = scan(rules_path, paths=(str(tree),)).run()
    base = tree.parent / "baseline.json"
    allow.write_baseline(base, first.findings)
    (tree / "src" / "new.py").write_text(F.slack_token(F.rng(4)) + "\n")
    report = scan(rules_path, paths=(str(tree),), baseline=base).run()
    assert where(report) == [("slack-bot-token", "src/new.py", 1)]
    assert len(report.result.findings) == 3  # every finding, before the baseline


def test_stream_text_and_diff(rules_path: Path) -> None:
    text = f"2024 INFO token={F.slack_token(F.rng(5))}\n".encode()
    report = scan(rules_path, target=Target.STREAM).run(stream=text)
    assert where(report) == [("slack-bot-token", STREAM_PATH, 1)]
    old, new = F.github_token(F.rng(6)), F.github_token(F.rng(7))
    diff = (
        "diff --git a/conf.py b/conf.py\n--- a/conf.py\n+++ b/conf.py\n"
        f"@@ -4,1 +4,1 @@\n-old = '{old}'\n+new = '{new}'\n"
    ).encode()
    assert where(scan(rules_path, target=Target.STREAM).run(stream=io.BytesIO(diff))) == [
        ("github-pat", "conf.py", 4)
    ]
    with pytest.raises(ValueError, match="needs the stream"):
        scan(rules_path, target=Target.STREAM).run()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = tmp_path / "repo"
    git(tmp_path, "init", "-q", "-b", "main", str(r))
    return r


@pytest.mark.parametrize("jobs", [1, 2])
def test_history_and_staged(repo: Path, rules_path: Path, jobs: int) -> None:
    tok = F.github_token(F.rng(8))
    (repo / "settings.py").write_text(f"DEBUG = True\nTOKEN = '{tok}'\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "add")
    first = git(repo, "rev-parse", "HEAD")
    (repo / "settings.py").write_text("DEBUG = True\n")
    git(repo, "commit", "-qam", "remove")
    history = Scanner(ScanOptions(target=Target.HISTORY, repo=repo, rules_path=rules_path,
                                  jobs=jobs)).run()  # fmt: skip
    [f] = history.findings
    assert (f.path, f.line, f.commit, f.last_commit) == ("settings.py", 2, first, first)
    assert history.result.commits_scanned == 2
    staged = scan(rules_path, target=Target.STAGED, repo=repo)
    assert where(staged.run()) == []
    (repo / "keys.txt").write_text("one\n" + F.aws_key(F.rng(9)) + "\n")
    git(repo, "add", "keys.txt")
    assert where(staged.run()) == [("aws-access-key-id", "keys.txt", 2)]


def test_git_failure_is_an_error_in_the_report(repo: Path, rules_path: Path) -> None:
    (repo / "f.txt").write_text(F.github_token(F.rng(10)) + "\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "c")
    blob = git(repo, "rev-parse", "HEAD:f.txt")
    (repo / ".git" / "objects" / blob[:2] / blob[2:]).unlink()
    report = scan(rules_path, target=Target.HISTORY, repo=repo).run()
    assert report.failed
    assert [e.split(":")[0] for e in report.result.errors] == [
        "git log failed (the repository may be corrupt)"
    ]
