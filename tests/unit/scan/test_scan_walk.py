"""File walking and reading: ignore rules and every kind of bad input."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import scan_fakes as F

from sealbox.scan.engine import Engine
from sealbox.scan.runner import scan_files
from sealbox.scan.walk import GitignoreMatcher, read_file, walk


def rels(root: Path, **kw: bool) -> list[str]:
    return sorted(e.relpath for e in walk(root, **kw))


def test_binary_skipped(tmp_path: Path) -> None:
    p = tmp_path / "blob.bin"
    p.write_bytes(b"\x89PNG\0\0" + F.github_token(F.rng()).encode())
    assert read_file(str(p), "blob.bin", 1 << 20).skip == "binary"


def test_huge_skipped_with_note(tmp_path: Path) -> None:
    p = tmp_path / "big.txt"
    p.write_bytes(b"a" * 2048)
    rr = read_file(str(p), "big.txt", 1024)
    assert rr.skip == "large" and rr.note and "big.txt" in rr.note


def test_non_utf8_scanned(tmp_path: Path, engine: Engine) -> None:
    tok = F.github_token(F.rng(2))
    (tmp_path / "latin.txt").write_bytes(b"caf\xe9 \xff\xfe token " + tok.encode() + b"\n")
    res = scan_files(engine, list(walk(tmp_path)), jobs=1, max_size=1 << 20)
    assert [f.rule_id for f in res.findings] == ["github-pat"]


def test_minified_long_line_within_bounds(tmp_path: Path, engine: Engine) -> None:
    tok = F.github_token(F.rng(3))
    line = ("var a=1;" * 400_000) + f'k="{tok}";' + ("b=2;" * 100_000)
    (tmp_path / "app.min.js").write_text(line)
    res = scan_files(engine, list(walk(tmp_path)), jobs=1, max_size=10 << 20)
    assert [f.rule_id for f in res.findings] == ["github-pat"]
    assert res.findings[0].line == 1


def test_symlink_loop_and_dangling_and_fifo(tmp_path: Path, engine: Engine) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    (tmp_path / "dangling").symlink_to(tmp_path / "missing")
    (tmp_path / "self").symlink_to(tmp_path)  # directory loop: not followed
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "ok.txt").write_text("hello\n")
    res = scan_files(engine, list(walk(tmp_path, no_ignore=True)), jobs=1, max_size=1 << 20)
    assert res.files_scanned == 1
    assert res.skipped_unreadable == 4
    text = "\n".join(res.notes)
    assert "symlink loop" in text and "not a regular file" in text and "dangling" in text


def test_gitignore_without_git(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("*.log\nbuild/\n!keep.log\n")
    for name in ("a.py", "x.log", "keep.log", "build/out.txt", "src/b.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    assert rels(tmp_path) == [".gitignore", "a.py", "keep.log", "src/b.py"]
    assert "x.log" in rels(tmp_path, no_ignore=True)
    assert "build/out.txt" in rels(tmp_path, no_ignore=True)


def test_gitignore_inside_git(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("secret.env\n")
    (tmp_path / "secret.env").write_text("x")
    (tmp_path / "main.py").write_text("x")
    assert rels(tmp_path) == [".gitignore", "main.py"]
    assert rels(tmp_path, no_ignore=True) == [".gitignore", "main.py", "secret.env"]


def test_gitignore_matcher_patterns() -> None:
    m = GitignoreMatcher(["# c", "/top.txt", "**/gen/*.py", "node_modules/"])
    assert m.ignored("top.txt", False) and not m.ignored("sub/top.txt", False)
    assert m.ignored("a/gen/x.py", False) and m.ignored("gen/x.py", False)
    assert m.ignored("node_modules", True) and not m.ignored("node_modules", False)


def test_parallel_matches_sequential(tmp_path: Path, engine: Engine) -> None:
    r = F.rng(12)
    for i in range(120):
        body = ("filler = 1\n" * 2000) + (f"t = {F.github_token(r)}\n" if i % 10 == 0 else "")
        (tmp_path / f"f{i:03d}.py").write_text(body)
    entries = list(walk(tmp_path))
    one = scan_files(engine, entries, jobs=1, max_size=1 << 20)
    two = scan_files(engine, entries, jobs=2, max_size=1 << 20)
    assert sorted(f.sort_key() for f in one.findings) == sorted(f.sort_key() for f in two.findings)
    assert len(one.findings) == 12 and two.files_scanned == 120
