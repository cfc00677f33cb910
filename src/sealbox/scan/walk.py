"""List and read the files of a directory scan, within bounds.

Inside a git work tree the file list comes from ``git ls-files -co --exclude-standard``
(tracked plus untracked-but-not-ignored: exactly what ``.gitignore`` allows); elsewhere a
small ``.gitignore`` matcher (root file only) is used; ``no_ignore`` lists everything. The
``.git`` directory is never scanned. Directory symlinks are not followed (no loops); file
symlinks are read when they lead to a regular file. Special files (FIFOs, devices) are never
opened: reading a FIFO would block.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sealbox.scan.allow import glob_regex

DEFAULT_MAX_FILE_SIZE = 10 << 20
BINARY_SNIFF = 8192
GIT_TIMEOUT = 120.0


@dataclass(frozen=True)
class FileEntry:
    """A file to scan: where to read it, and the path to report."""

    abspath: str
    relpath: str


@dataclass(frozen=True)
class ReadResult:
    """The bytes of a file, or why it was skipped."""

    data: bytes | None
    skip: str | None = None  # "binary" | "large" | "unreadable" | "special"
    note: str | None = None


def read_file(path: str, relpath: str, max_size: int) -> ReadResult:
    """Read a file for scanning: never blocks on special files, bounded by ``max_size``."""
    try:
        st = os.stat(path)
    except OSError as exc:
        reason = "symlink loop" if exc.errno == 40 else (exc.strerror or "cannot stat")
        return ReadResult(None, "unreadable", f"{relpath}: skipped, {reason}")
    if not stat.S_ISREG(st.st_mode):
        return ReadResult(None, "unreadable", f"{relpath}: skipped, not a regular file")
    if st.st_size > max_size:
        return ReadResult(
            None, "large", f"{relpath}: skipped, {st.st_size} bytes is over the {max_size} cap"
        )
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(max_size + 1)
    except OSError as exc:
        return ReadResult(None, "unreadable", f"{relpath}: skipped, {exc.strerror}")
    if len(data) > max_size:
        return ReadResult(None, "large", f"{relpath}: skipped, grew over the {max_size} cap")
    if b"\0" in data[:BINARY_SNIFF]:
        return ReadResult(None, "binary")
    return ReadResult(data)


def in_git_work_tree(root: Path) -> bool:
    """True when ``root`` is inside a git work tree (and git is installed)."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--is-inside-work-tree"],
            capture_output=True,
            timeout=GIT_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and proc.stdout.strip() == b"true"


def _git_files(root: Path) -> list[str] | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-co", "--exclude-standard", "-z"],
            capture_output=True,
            timeout=GIT_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    names = proc.stdout.decode("utf-8", "surrogateescape").split("\0")
    return sorted({n for n in names if n})


class GitignoreMatcher:
    """A small matcher for the root ``.gitignore`` (globs, ``!`` negation, dir patterns)."""

    def __init__(self, lines: list[str]) -> None:
        self._rules: list[tuple[bool, bool, object]] = []
        for raw in lines:
            line = raw.rstrip("\n").rstrip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            if negate:
                line = line[1:]
            dir_only = line.endswith("/")
            self._rules.append((negate, dir_only, glob_regex(line.rstrip("/"))))

    @classmethod
    def from_root(cls, root: Path) -> GitignoreMatcher:
        """The matcher for ``root/.gitignore`` (empty when there is none)."""
        try:
            text = (root / ".gitignore").read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        return cls(text.splitlines())

    def ignored(self, relpath: str, is_dir: bool) -> bool:
        """Whether ``relpath`` is ignored (last matching rule wins)."""
        result = False
        for negate, dir_only, regex in self._rules:
            if dir_only and not is_dir:
                continue
            if regex.match(relpath):  # type: ignore[attr-defined]
                result = not negate
        return result


def walk(
    root: Path, *, no_ignore: bool = False, notes: list[str] | None = None
) -> Iterator[FileEntry]:
    """Files under ``root`` to scan (a file ``root`` yields itself)."""
    if root.is_file() or (root.exists() and not root.is_dir()):
        yield FileEntry(str(root), root.name)
        return
    if not no_ignore and in_git_work_tree(root):
        names = _git_files(root)
        if names is not None:
            for name in names:
                if name == ".git" or name.startswith(".git/"):
                    continue
                yield FileEntry(str(root / name), name)
            return
        if notes is not None:
            notes.append("git ls-files failed; falling back to .gitignore matching")
    matcher = None if no_ignore else GitignoreMatcher.from_root(root)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = os.path.relpath(dirpath, root)
        rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
        keep = []
        for d in sorted(dirnames):
            if d == ".git":
                continue
            if matcher is not None and matcher.ignored(rel_dir + d, True):
                continue
            keep.append(d)
        dirnames[:] = keep
        for f in sorted(filenames):
            rel = rel_dir + f
            if matcher is not None and matcher.ignored(rel, False):
                continue
            yield FileEntry(os.path.join(dirpath, f), rel)
