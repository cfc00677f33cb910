"""Scan git: the history of every branch (``git log -p --all``) and the staged changes.

``git log`` runs as a subprocess whose output is streamed, cut at commit and file boundaries
into pieces of about :data:`PIECE_BYTES`, and scanned by the worker pool. Only added lines
are scanned, so each leak is seen in the commit that introduced it; each distinct value is
then reported once per file, with its first (oldest) and last (newest) commit. A watchdog kills git
when it prints nothing for ``idle_timeout`` seconds, so a broken repository cannot hang a scan.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from sealbox.errors import InvalidInput
from sealbox.scan.engine import Engine
from sealbox.scan.findings import Finding, ScanResult
from sealbox.scan.runner import run_batches, scan_diff_batch

PIECE_BYTES = 1 << 20
READ_BYTES = 1 << 20
DEFAULT_IDLE_TIMEOUT = 120.0
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
LOG_ARGS = (
    "-c", "core.quotePath=false", "log", "-p", "--all", "--no-color", "--no-ext-diff",
    "--no-textconv", "--no-renames", "--unified=0", "--format=%x00%H%x00%aI%x00%an <%ae>",
)  # fmt: skip


def _git(repo: Path, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **_GIT_ENV},
        )
    except FileNotFoundError as exc:
        raise InvalidInput("git is not installed or not on PATH") from exc
    except subprocess.TimeoutExpired as exc:
        raise InvalidInput(f"git {args[0]} did not answer within {timeout:.0f} s") from exc


def _first_line(err: bytes) -> str:
    lines = [ln for ln in err.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[0] if lines else "no message"


def repo_root(repo: Path) -> Path:
    """The top of the work tree (or the git dir of a bare repo); InvalidInput if none."""
    if not repo.exists():
        raise InvalidInput(f"{repo}: no such directory")
    proc = _git(repo, "rev-parse", "--show-toplevel")
    if proc.returncode == 0 and proc.stdout.strip():
        return Path(proc.stdout.decode().strip())
    proc = _git(repo, "rev-parse", "--git-dir")
    if proc.returncode != 0:
        raise InvalidInput(
            f"{repo} is not a git repository: {_first_line(proc.stderr)}",
            hint="give the path of a git work tree",
            hint_key="scan_git_path",
        )
    return repo


class _Stream:
    """git's stdout cut into (commit header, diff piece) units; tracks idle time."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.last_read = time.monotonic()
        self.commits = 0
        self.header = b""

    def pieces(self) -> Iterator[list[tuple[bytes, bytes]]]:
        assert self.proc.stdout is not None
        out = self.proc.stdout
        buf = b""
        batch: list[tuple[bytes, bytes]] = []
        batch_size = 0
        eof = False
        while not eof:
            chunk = out.read(READ_BYTES)
            self.last_read = time.monotonic()
            if not chunk:
                eof = True
                complete, buf = buf, b""
            else:
                buf += chunk
                cut = max(buf.rfind(b"\n\0"), buf.rfind(b"\ndiff --git "))
                if cut < 0:
                    continue
                complete, buf = buf[: cut + 1], buf[cut + 1 :]
            for hdr, piece in self._split(complete):
                if piece.strip():
                    batch.append((hdr, piece))
                    batch_size += len(piece)
                if batch_size >= PIECE_BYTES:
                    yield batch
                    batch, batch_size = [], 0
        if batch:
            yield batch

    def _split(self, data: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Cut at commit headers (lines starting with NUL) and at ``diff --git`` lines."""
        pos = 0
        n = len(data)
        while pos < n:
            if data[pos] == 0:
                nl = data.find(b"\n", pos)
                nl = n if nl < 0 else nl
                self.header = data[pos + 1 : nl]
                self.commits += 1
                pos = nl + 1
                continue
            nxt = data.find(b"\n\0", pos)
            end = n if nxt < 0 else nxt + 1
            # pieces of at most ~PIECE_BYTES, cut at file boundaries
            while pos < end:
                stop = end
                if end - pos > PIECE_BYTES:
                    cut = data.find(b"\ndiff --git ", pos + PIECE_BYTES, end)
                    stop = end if cut < 0 else cut + 1
                yield self.header, data[pos:stop]
                pos = stop


def _watchdog(stream: _Stream, idle_timeout: float, done: threading.Event) -> None:
    while not done.wait(1.0):
        if time.monotonic() - stream.last_read > idle_timeout:
            stream.proc.kill()
            return


def _date(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def collapse_history(findings: list[Finding]) -> list[Finding]:
    """One finding per leaked value: the oldest occurrence, with the newest commit in
    ``last_commit``/``last_date`` and the number of occurrences.

    NOTE: a value is identified by its fingerprint (rule + path + secret), so the same value
    in two files is two findings. Some rules capture only a constant part (a PEM header), and
    keying by value alone would merge different keys."""
    groups: dict[str, list[Finding]] = {}
    for f in findings:
        groups.setdefault(f.fingerprint, []).append(f)
    out = []
    for items in groups.values():
        dated = sorted(items, key=lambda f: (_date(f.date) or datetime.min, f.commit or ""))
        if any(_date(f.date) is None for f in items):
            dated = items[::-1]  # git log order is newest first
        first, last = dated[0], dated[-1]
        out.append(
            replace(first, last_commit=last.commit, last_date=last.date, occurrences=len(items))
        )
    return out


def scan_history(
    engine: Engine,
    repo: Path,
    *,
    jobs: int,
    max_size: int,
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
) -> ScanResult:
    """Scan every commit of every branch of ``repo``."""
    root = repo_root(repo)
    notes: list[str] = []
    shallow = _git(root, "rev-parse", "--is-shallow-repository")
    if shallow.returncode == 0 and shallow.stdout.strip() == b"true":
        notes.append(
            "shallow clone: commits before the shallow boundary are not scanned "
            "(run `git fetch --unshallow` to scan all history)"
        )
    with tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen(
                ["git", "-C", str(root), *LOG_ARGS],
                stdout=subprocess.PIPE,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **_GIT_ENV},
            )
        except FileNotFoundError as exc:
            raise InvalidInput("git is not installed or not on PATH") from exc
        stream = _Stream(proc)
        done = threading.Event()
        dog = threading.Thread(target=_watchdog, args=(stream, idle_timeout, done), daemon=True)
        dog.start()
        try:
            res = run_batches(
                engine, scan_diff_batch, stream.pieces(), jobs=jobs, max_size=max_size
            )
        finally:
            done.set()
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        err.seek(0)
        stderr = err.read()
    res.commits_scanned = stream.commits
    res.notes[:0] = notes
    if proc.returncode != 0:
        msg = _first_line(stderr)
        if b"does not have any commits" in stderr:
            res.notes.append("the repository has no commits yet")
        elif proc.returncode < 0 and time.monotonic() - stream.last_read >= idle_timeout:
            res.errors.append(f"git log printed nothing for {idle_timeout:.0f} s and was stopped")
        else:
            res.errors.append(f"git log failed (the repository may be corrupt): {msg}")
    res.findings = collapse_history(res.findings)
    return res


def staged_diff(repo: Path) -> tuple[Path, bytes]:
    """The work tree root and ``git diff --cached`` (what the next commit adds)."""
    root = repo_root(repo)
    proc = _git(
        root,
        "-c", "core.quotePath=false", "diff", "--cached", "--no-color", "--no-ext-diff",
        "--no-textconv", "--unified=0",
        timeout=300.0,
    )  # fmt: skip
    if proc.returncode != 0:
        raise InvalidInput(f"git diff --cached failed: {_first_line(proc.stderr)}")
    return root, proc.stdout
