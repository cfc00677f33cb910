"""An append-only JSONL file, one chained record per line, with size-based rollover.

The chain runs across files: when the active file reaches ``max_bytes`` it is renamed
``NAME.000001`` (then ``.000002``, …) and the first record of the new file links to the
last record of the old one. Writers in several processes serialise on an ``flock`` of
the active file and read its tail under the lock, so the chain never forks. A line cut
short by a crash is left in place (it is evidence) and terminated; the next record links
to the last complete one, and ``verify`` reports the cut line.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from sealbox.audit.events import AuditKeys, ChainItem, Event, canonical, chain
from sealbox.storage.rows import GENESIS

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
TAIL_WINDOW = 1024 * 1024


class ChainState:
    """The last record of a file chain: its seq and hash."""

    def __init__(self, seq: int, hash_: str) -> None:
        self.seq, self.hash = seq, hash_


def _parse(line: bytes) -> Event | None:
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def _is_event(obj: Event | None) -> bool:
    return obj is not None and isinstance(obj.get("seq"), int) and isinstance(obj.get("hash"), str)


def rotated_files(path: Path) -> list[Path]:
    """Rolled-over files of ``path``, oldest first."""
    found = []
    for p in path.parent.glob(path.name + ".*"):
        suffix = p.name[len(path.name) + 1 :]
        if suffix.isdigit():
            found.append((int(suffix), p))
    return [p for _, p in sorted(found)]


def _tail_state(path: Path) -> ChainState | None:
    """The last complete record of a regular file; None if it holds none."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        start = max(0, size - TAIL_WINDOW)
        fh.seek(start)
        data = fh.read()
    lines = data.split(b"\n")
    complete = lines[:-1]  # the last piece is "" or a cut line
    if start > 0 and complete:
        complete = complete[1:]  # the window may start mid-line
    saw_line = False
    for line in reversed(complete):
        if not line.strip():
            continue
        saw_line = True
        obj = _parse(line)
        if _is_event(obj) and obj is not None and obj.get("kind") is None:
            return ChainState(int(obj["seq"]), str(obj["hash"]))
    if saw_line:
        raise OSError(f"{path}: no intact audit record near the end of the file")
    return None


class JsonlSink:
    def __init__(self, path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = Path(path)
        self.name = f"file:{self.path}"
        self.max_bytes = max_bytes

    def _predecessor_state(self) -> ChainState:
        for old in reversed(rotated_files(self.path)):
            state = _tail_state(old)
            if state is not None:
                return state
        return ChainState(0, GENESIS)

    def write(self, event: Event, keys: AuditKeys | None, node: str) -> Event:
        chain_key = keys.chain_key if keys is not None else None
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        for _ in range(10):
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                st = os.fstat(fd)
                regular = stat.S_ISREG(st.st_mode)
                if regular and os.stat(self.path).st_ino != st.st_ino:
                    continue  # rolled over while we waited: open the new file
                if regular and st.st_size >= self.max_bytes:
                    n = len(rotated_files(self.path)) + 1
                    while self.path.with_name(f"{self.path.name}.{n:06d}").exists():
                        n += 1
                    os.rename(self.path, self.path.with_name(f"{self.path.name}.{n:06d}"))
                    continue
                state: ChainState | None = None
                cut = False
                if regular and st.st_size > 0:
                    state = _tail_state(self.path)
                    with open(self.path, "rb") as fh:
                        fh.seek(st.st_size - 1)
                        cut = fh.read(1) != b"\n"
                if state is None:
                    state = self._predecessor_state() if regular else ChainState(0, GENESIS)
                record = chain(event, chain_key, node=node, seq=state.seq + 1, prev=state.hash)
                line = canonical(record) + b"\n"
                if cut:
                    line = b"\n" + line  # end the line a crash cut short
                written = os.write(fd, line)
                if written != len(line):
                    raise OSError(f"{self.path}: short write")
                return record
            finally:
                os.close(fd)
        raise OSError(f"{self.path}: the file kept rolling over while writing")


def chain_items(path: Path) -> Iterator[ChainItem]:
    """Every line of the rolled-over files and the active file, as chain positions."""
    files = [*rotated_files(path), *([path] if path.exists() else [])]
    for file in files:
        data = file.read_bytes()
        lines = data.split(b"\n")
        last = len(lines) - 1
        for i, line in enumerate(lines):
            if i == last and not line:
                break
            pos = f"{file.name} line {i + 1}"
            if not line.strip():
                continue
            obj = _parse(line)
            if obj is None or (i == last and line):
                # Unparseable, or the final line without its newline: cut by a crash.
                yield ChainItem(pos, None, cut=True)
            elif obj.get("kind") is not None:
                continue  # a checkpoint line, checked separately
            else:
                yield ChainItem(pos, obj)


def checkpoint_lines(path: Path) -> Iterator[tuple[str, Event]]:
    files = [*rotated_files(path), *([path] if path.exists() else [])]
    for file in files:
        for i, line in enumerate(file.read_bytes().split(b"\n")):
            obj = _parse(line) if line.strip() else None
            if obj is not None and obj.get("kind") == "checkpoint":
                yield f"{file.name} line {i + 1}", obj


def append_line(path: Path, obj: Event) -> None:
    """Append a non-chain line (a checkpoint) under the writers' lock."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        st = os.fstat(fd)
        prefix = b""
        if stat.S_ISREG(st.st_mode) and st.st_size > 0:
            with open(path, "rb") as fh:
                fh.seek(st.st_size - 1)
                prefix = b"" if fh.read(1) == b"\n" else b"\n"
        os.write(fd, prefix + canonical(obj) + b"\n")
    finally:
        os.close(fd)


def last_state(path: Path) -> tuple[int, str] | None:
    """(seq, hash) of the last record of a file chain, or None when it is empty."""
    if path.exists() and path.stat().st_size > 0:
        state = _tail_state(path)
        if state is not None:
            return state.seq, state.hash
    for old in reversed(rotated_files(path)):
        state = _tail_state(old)
        if state is not None:
            return state.seq, state.hash
    return None
