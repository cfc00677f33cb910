"""`sealbox scan` end to end through ``main([...])``: directories, git history, staged
changes, stdin (text and diffs), formats, baselines, config and exit codes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "unit" / "scan"))
import scan_fakes as F

from sealbox import errors
from sealbox.cli.main import main
from sealbox.model import SecretValue

GIT = [
    "git",
    "-c",
    "user.name=Dev",
    "-c",
    "user.email=dev@example.org",
    "-c",
    "commit.gpgsign=false",
]


@pytest.fixture
def rules_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("rules") / "rules.toml"
    p.write_text(F.rules_toml())
    return p


def run(args: list[str], rules_file: Path | None = None) -> int:
    extra = ["--rules", str(rules_file)] if rules_file else []
    return main(["scan", "--no-vault", "-j", "1", *extra, *args])


def git(repo: Path, *args: str, date: str | None = None) -> str:
    env = {**os.environ}
    if date:
        env.update(GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
    return subprocess.run(
        [*GIT, "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    ).stdout.strip()


def set_stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def test_clean_dir_exit_0(
    tmp_path: Path, rules_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("print('hello')\n")
    assert run([str(tmp_path / "src")], rules_file) == 0
    assert "no leaks found" in capsys.readouterr().out


def test_findings_exit_1_and_json(
    tmp_path: Path, rules_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tok = F.github_token(F.rng(1))
    (tmp_path / "a.py").write_text(f"x = 1\nT = '{tok}'\n")
    assert run([str(tmp_path), "--format", "json"], rules_file) == 1
    out = capsys.readouterr().out
    assert tok not in out
    [f] = json.loads(out)["findings"]
    assert (f["rule_id"], f["path"], f["line"]) == ("github-pat", "a.py", 2)


def test_builtin_rules_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tok = F.github_token(F.rng(2))
    (tmp_path / "a.txt").write_text(f"GITHUB_TOKEN={tok}\n")
    assert run([str(tmp_path), "--format", "json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert any("github" in f["rule_id"] for f in doc["findings"])


def test_sarif_output_file(tmp_path: Path, rules_file: Path) -> None:
    (tmp_path / "k.txt").write_text(F.aws_key(F.rng(3)) + "\n")
    out = tmp_path / "report.sarif"
    assert run([str(tmp_path / "k.txt"), "--format", "sarif", "-o", str(out)], rules_file) == 1
    doc = json.loads(out.read_text())
    assert (
        doc["version"] == "2.1.0" and doc["runs"][0]["results"][0]["ruleId"] == "aws-access-key-id"
    )


def test_min_confidence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "app.cfg").write_text('password = "admin123"\napi_token = "Qm3vT9zL1xW8pR4nK6sJ"\n')
    assert run([str(tmp_path), "--format", "json"]) == 1
    [f] = json.loads(capsys.readouterr().out)["findings"]
    assert (f["line"], f["confidence"]) == (2, "high")
    assert run([str(tmp_path), "--format", "sarif", "--min-confidence", "low"]) == 1
    results = json.loads(capsys.readouterr().out)["runs"][0]["results"]
    assert [(r["locations"][0]["physicalLocation"]["region"]["startLine"], r["rank"])
            for r in results] == [(1, 30.0), (2, 90.0)]  # fmt: skip
    (tmp_path / "app.cfg").write_text('password = "admin123"\n')
    assert run([str(tmp_path)]) == 0
    assert run([str(tmp_path), "--min-confidence", "bogus"]) == 2


def test_errors_exit_2(
    tmp_path: Path, rules_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run([str(tmp_path / "missing")], rules_file) == 2
    assert run([str(tmp_path), "--disable-rule", "no-such-rule"], rules_file) == 2
    assert run(["--git", str(tmp_path)], rules_file) == 2
    assert run([str(tmp_path), "--staged"], rules_file) == 2
    bad = tmp_path / "bad.toml"
    bad.write_text("version = 1\n")
    assert run([str(tmp_path), "--rules", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "not a git repository" in err


def test_bad_option_is_usage_error(tmp_path: Path) -> None:
    assert main(["scan", "--format", "xml", str(tmp_path)]) == 2


def test_config_and_disable_rule(tmp_path: Path, rules_file: Path) -> None:
    r = F.rng(4)
    (tmp_path / "fixtures").mkdir()
    (tmp_path / "fixtures" / "t.txt").write_text(F.github_token(r) + "\n")
    (tmp_path / "k.txt").write_text(F.aws_key(r) + "\n")
    assert run([str(tmp_path)], rules_file) == 1
    (tmp_path / ".sealbox-scan.toml").write_text('allow_paths = ["fixtures/**"]\n')
    assert run([str(tmp_path), "--disable-rule", "aws-access-key-id"], rules_file) == 0
    cfg = tmp_path / "other.toml"
    cfg.write_text('disable_rules = ["aws-access-key-id", "github-pat"]\n')
    assert run([str(tmp_path), "--config", str(cfg)], rules_file) == 0


def test_baseline_update_then_only_new(tmp_path: Path, rules_file: Path) -> None:
    r = F.rng(5)
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text(F.github_token(r) + "\n")
    base = tmp_path / "baseline.json"
    assert run([str(src), "--baseline", str(base), "--update-baseline"], rules_file) == 0
    assert run([str(src), "--baseline", str(base)], rules_file) == 0
    (src / "b.txt").write_text(F.github_token(r) + "\n")
    assert run([str(src), "--baseline", str(base)], rules_file) == 1


def test_stdin_text(
    monkeypatch: pytest.MonkeyPatch, rules_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_stdin(monkeypatch, f"2024 INFO token={F.slack_token(F.rng(6))}\n".encode())
    assert run(["-", "--format", "json"], rules_file) == 1
    [f] = json.loads(capsys.readouterr().out)["findings"]
    assert f["path"] == "<stdin>" and f["rule_id"] == "slack-bot-token"


def test_stdin_diff_added_lines_paths_and_allowlist(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    rules_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    r = F.rng(7)
    old_tok, new_tok, fix_tok = F.github_token(r), F.github_token(r), F.github_token(r)
    diff = (
        "diff --git a/app/conf.py b/app/conf.py\n--- a/app/conf.py\n+++ b/app/conf.py\n"
        f"@@ -10,3 +10,3 @@\n ctx = 1\n-old = '{old_tok}'\n+new = '{new_tok}'\n ctx = 2\n"
        "diff --git a/tests/fixtures/x.txt b/tests/fixtures/x.txt\n"
        "--- /dev/null\n+++ b/tests/fixtures/x.txt\n"
        f"@@ -0,0 +1 @@\n+{fix_tok}\n"
    )
    (tmp_path / ".sealbox-scan.toml").write_text('allow_paths = ["tests/fixtures/**"]\n')
    monkeypatch.chdir(tmp_path)
    set_stdin(monkeypatch, diff.encode())
    assert run(["-", "--format", "json"], rules_file) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [(f["path"], f["line"]) for f in doc["findings"]] == [("app/conf.py", 11)]
    set_stdin(monkeypatch, diff.replace("+new", " new").replace("+3 @@", "+3 @@").encode())
    assert run(["-"], rules_file) == 0


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(r)], check=True)
    return r


def test_git_history_committed_then_removed(
    repo: Path, rules_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tok = F.github_token(F.rng(8))
    (repo / "settings.py").write_text(f"DEBUG = True\nTOKEN = '{tok}'\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "add settings", date="2024-03-01T10:00:00+00:00")
    first = git(repo, "rev-parse", "HEAD")
    (repo / "settings.py").write_text("DEBUG = True\nTOKEN = os.environ['TOKEN']\n")
    git(repo, "commit", "-qam", "remove token", date="2024-03-02T10:00:00+00:00")
    assert run([str(repo)], rules_file) == 0  # the work tree is clean now
    capsys.readouterr()
    assert run(["--git", str(repo), "--format", "json"], rules_file) == 1
    out = capsys.readouterr().out
    assert tok not in out
    [f] = json.loads(out)["findings"]
    assert f["commit"] == first and f["last_commit"] == first
    assert (f["path"], f["line"], f["author"]) == ("settings.py", 2, "Dev <dev@example.org>")
    assert f["date"].startswith("2024-03-01")
    assert run(["--git", str(repo)], rules_file) == 1
    assert "settings.py:2" in capsys.readouterr().out


def test_git_default_is_cwd(repo: Path, rules_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (repo / "a.txt").write_text("nothing\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "c")
    monkeypatch.chdir(repo)
    assert run(["--git"], rules_file) == 0


def test_staged(
    repo: Path,
    rules_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (repo / "a.txt").write_text("hello\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "c")
    monkeypatch.chdir(repo)
    assert run(["--staged"], rules_file) == 0
    (repo / "a.txt").write_text("hello\nkey " + F.aws_key(F.rng(9)) + "\n")
    assert run(["--staged"], rules_file) == 0  # not staged yet
    git(repo, "add", "a.txt")
    capsys.readouterr()
    assert run(["--staged", "--format", "json"], rules_file) == 1
    [f] = json.loads(capsys.readouterr().out)["findings"]
    assert (f["path"], f["line"]) == ("a.txt", 2)


@dataclass
class KV:
    path: str
    version: int
    value: SecretValue


def fake_factory(monkeypatch: pytest.MonkeyPatch, opener: object) -> None:
    mod = types.ModuleType("sealbox.factory")
    mod.open_vault = opener  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sealbox.factory", mod)


def test_known_values_through_vault(
    tmp_path: Path,
    rules_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    value = "db-" + F.rand(F.rng(10), F.ALNUM, 6) + " pass"

    class Inventory:
        def known_values(self) -> list[KV]:
            return [KV("payments/prod/DB_PASSWORD", 4, SecretValue(value))]

    class Vault:
        inventory = Inventory()

        def close(self) -> None:
            pass

    fake_factory(monkeypatch, lambda **_: Vault())
    (tmp_path / "ci.log").write_text(f"connecting with {value} ...\n")
    code = main(["scan", "-j", "1", "--rules", str(rules_file), "--format", "json", str(tmp_path)])
    assert code == 1
    out = capsys.readouterr().out
    assert value not in out
    [f] = json.loads(out)["findings"]
    assert f["rule_id"] == "sealbox-known-value" and f["secret"] == "payments/prod/DB_PASSWORD@v4"


def test_sealed_vault_gives_note(
    tmp_path: Path,
    rules_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def sealed(**_: object) -> None:
        raise errors.Sealed("vault is locked")

    fake_factory(monkeypatch, sealed)
    (tmp_path / "a.txt").write_text("ok\n")
    assert main(["scan", "-j", "1", "--rules", str(rules_file), str(tmp_path)]) == 0
    assert "vault locked — run sealbox unlock" in capsys.readouterr().err


def test_help() -> None:
    assert main(["scan", "--help"]) == 0


def test_known_values_from_a_real_vault(
    keyfile_vault: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    value = "v-" + F.rand(F.rng(12), F.ALNUM, 10)
    assert main(["secret", "set", "DB_PASSWORD", value]) == 0
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "ci.log").write_text(f"dsn=postgres://app:{value}@db/app\n")
    capsys.readouterr()
    assert main(["scan", "-j", "1", "--format", "json", str(logs)]) == 1
    out = capsys.readouterr().out
    assert value not in out
    found = [f for f in json.loads(out)["findings"] if f["rule_id"] == "sealbox-known-value"]
    assert [f["secret"] for f in found] == ["payments/dev/DB_PASSWORD@v1"]
