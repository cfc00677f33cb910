"""Git history: dedup with first/last commit, shallow and corrupt repositories."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import scan_fakes as F

from sealbox.errors import InvalidInput
from sealbox.scan.engine import Engine
from sealbox.scan.git import scan_history, staged_diff

GIT = [
    "git",
    "-c",
    "user.name=Test",
    "-c",
    "user.email=t@example.org",
    "-c",
    "commit.gpgsign=false",
]


def git(repo: Path, *args: str, date: str | None = None) -> str:
    env = None
    if date:
        import os

        env = {**os.environ, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    out = subprocess.run(
        [*GIT, "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    )
    return out.stdout.strip()


def commit_file(repo: Path, name: str, text: str, msg: str, date: str) -> str:
    (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", msg, date=date)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    r = tmp_path / "repo"
    git(tmp_path, "init", "-q", "-b", "main", str(r))
    return r


def test_history_first_and_last_commit(repo: Path, engine: Engine) -> None:
    tok = F.github_token(F.rng(21))
    c1 = commit_file(repo, "a.py", f"T = '{tok}'\n", "add", "2024-01-01T00:00:00+00:00")
    c2 = commit_file(repo, "a.py", "T = None\n", "remove", "2024-01-02T00:00:00+00:00")
    git(repo, "checkout", "-qb", "other")
    c3 = commit_file(repo, "a.py", f"x = 1\nT = '{tok}'\n", "again", "2024-01-03T00:00:00+00:00")
    git(repo, "checkout", "-q", "main")
    commit_file(repo, "b.py", f"T = '{tok}'\n", "copy", "2024-01-04T00:00:00+00:00")
    res = scan_history(engine, repo, jobs=1, max_size=1 << 20)
    assert res.errors == [] and res.commits_scanned == 4
    # one finding per value and file: a.py (twice in history) and its copy in b.py
    assert sorted(f.path for f in res.findings) == ["a.py", "b.py"]
    [f] = [f for f in res.findings if f.path == "a.py"]
    assert (f.rule_id, f.path, f.line, f.commit) == ("github-pat", "a.py", 1, c1)
    assert f.last_commit == c3 and f.occurrences == 2 and f.author == "Test <t@example.org>"
    assert c2 not in (f.commit, f.last_commit)
    assert tok not in repr(f)


def test_not_a_repo(tmp_path: Path, engine: Engine) -> None:
    with pytest.raises(InvalidInput, match="not a git repository"):
        scan_history(engine, tmp_path, jobs=1, max_size=1 << 20)


def test_empty_repo(repo: Path, engine: Engine) -> None:
    res = scan_history(engine, repo, jobs=1, max_size=1 << 20)
    assert res.findings == [] and res.errors == []


def test_shallow_clone_gives_note(repo: Path, tmp_path: Path, engine: Engine) -> None:
    for i in range(3):
        commit_file(repo, "f.txt", f"v{i}\n", f"c{i}", f"2024-01-0{i + 1}T00:00:00+00:00")
    clone = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(clone)], check=True)
    res = scan_history(engine, clone, jobs=1, max_size=1 << 20)
    assert any("shallow" in n for n in res.notes)
    assert res.commits_scanned == 1


def test_corrupt_repo_reports_error(repo: Path, engine: Engine) -> None:
    commit_file(repo, "f.txt", "hello\n", "c", "2024-01-01T00:00:00+00:00")
    blob = git(repo, "rev-parse", "HEAD:f.txt")
    (repo / ".git" / "objects" / blob[:2] / blob[2:]).unlink()
    res = scan_history(engine, repo, jobs=1, max_size=1 << 20)
    assert res.errors and "corrupt" in res.errors[0]


def test_staged(repo: Path, engine: Engine) -> None:
    commit_file(repo, "a.txt", "one\n", "c", "2024-01-01T00:00:00+00:00")
    (repo / "a.txt").write_text("one\ntwo " + F.github_token(F.rng(5)) + "\n")
    git(repo, "add", "a.txt")
    root, diff = staged_diff(repo)
    assert root.resolve() == repo.resolve()
    assert b"+two" in diff
