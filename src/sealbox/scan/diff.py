"""Parse unified diffs (``git diff``, ``git log -p``, ``diff -u``) into the added lines of
each file, with their new-side line numbers.

Only added lines are kept: a removed line is not a new leak, and context lines were scanned
when they were added. Hunks are consumed by their line counts, so a removed line that starts
with ``--`` is never mistaken for a file header. Malformed input ends the current hunk; it
never raises.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from sealbox.scan.text import ScanText

_HUNK_RE = re.compile(rb"@@ -\d+(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_DIFF_MARKERS = (b"diff --git ", b"+++ ", b"--- ")
_LOOKS_LIKE_DIFF = re.compile(rb"(?m)^(?:diff --git |\+\+\+ [^\n]*\n@@ |--- [^\n]*\n\+\+\+ )")


@dataclass
class FileDiff:
    """Added lines of one file: the concatenated text and its line segments."""

    path: str
    chunks: list[bytes]
    segments: list[tuple[int, int]]
    size: int = 0

    def to_text(self) -> ScanText:
        """The added lines as a :class:`ScanText` (offsets map to new-side line numbers)."""
        return ScanText(b"".join(self.chunks), self.path, self.segments or [(0, 1)])


def looks_like_diff(data: bytes) -> bool:
    """True when ``data`` holds a unified diff (a ``diff --git`` or ``---``/``+++`` header)."""
    return _LOOKS_LIKE_DIFF.search(data[: 1 << 20]) is not None


def _unquote(raw: bytes) -> bytes:
    """Undo git's C-style quoting of a path (``"a\\tb"``, octal escapes)."""
    if not (raw.startswith(b'"') and raw.endswith(b'"') and len(raw) >= 2):
        return raw
    body = raw[1:-1]
    out = bytearray()
    i = 0
    simple = {ord("t"): 9, ord("n"): 10, ord('"'): 34, ord("\\"): 92, ord("a"): 7,
              ord("b"): 8, ord("f"): 12, ord("r"): 13, ord("v"): 11}  # fmt: skip
    while i < len(body):
        c = body[i]
        if c == 92 and i + 1 < len(body):
            nxt = body[i + 1]
            if 48 <= nxt <= 55 and i + 3 < len(body) + 0 and body[i + 1 : i + 4].isdigit():
                out.append(int(body[i + 1 : i + 4], 8) & 0xFF)
                i += 4
                continue
            out.append(simple.get(nxt, nxt))
            i += 2
            continue
        out.append(c)
        i += 1
    return bytes(out)


def _new_path(line: bytes) -> str | None:
    """The path of a ``+++ `` header line; None for ``/dev/null``."""
    raw = line[4:].rstrip(b"\r")
    if not raw.startswith(b'"') and b"\t" in raw:
        raw = raw.split(b"\t", 1)[0]  # diff -u appends a timestamp
    raw = _unquote(raw)
    if raw == b"/dev/null":
        return None
    if raw.startswith(b"b/"):
        raw = raw[2:]
    return raw.decode("utf-8", "replace")


def parse_diff(data: bytes) -> Iterator[FileDiff]:
    """Every file of a unified diff with its added lines (files with none are skipped)."""
    n = len(data)
    pos = 0
    current: FileDiff | None = None
    while pos < n:
        nl = data.find(b"\n", pos)
        if nl < 0:
            nl = n
        if data.startswith(b"+++ ", pos):
            if current is not None and current.chunks:
                yield current
            path = _new_path(data[pos:nl])
            current = FileDiff(path, [], []) if path is not None else None
            pos = nl + 1
            continue
        if data.startswith(b"@@ ", pos):
            m = _HUNK_RE.match(data, pos, nl)
            if m is None:
                pos = nl + 1
                continue
            old_left = int(m.group(1)) if m.group(1) is not None else 1
            new_line = int(m.group(2))
            new_left = int(m.group(3)) if m.group(3) is not None else 1
            pos = _hunk(data, nl + 1, old_left, new_left, new_line, current)
            continue
        if data.startswith(b"diff --git ", pos) and current is not None:
            if current.chunks:
                yield current
            current = None
        pos = nl + 1
    if current is not None and current.chunks:
        yield current


def _hunk(
    data: bytes, pos: int, old_left: int, new_left: int, line: int, fd: FileDiff | None
) -> int:
    """Consume one hunk body from ``pos``; record added runs into ``fd``; return the end."""
    n = len(data)
    run_start = -1  # offset in data of the current run of '+' lines (after the '+')
    run_line = 0
    run_end = 0

    def flush() -> None:
        if fd is not None and run_start >= 0:
            chunk = data[run_start:run_end].replace(b"\n+", b"\n") + b"\n"
            fd.segments.append((fd.size, run_line))
            fd.chunks.append(chunk)
            fd.size += len(chunk)

    while (old_left > 0 or new_left > 0) and pos < n:
        nl = data.find(b"\n", pos)
        if nl < 0:
            nl = n
        c = data[pos]
        if c == 43:  # '+'
            if run_start < 0:
                run_start, run_line = pos + 1, line
            run_end = nl
            line += 1
            new_left -= 1
        elif c == 92:  # '\' No newline at end of file
            flush()
            run_start = -1
        else:
            flush()
            run_start = -1
            if c == 45:  # '-'
                old_left -= 1
            elif c == 32:  # ' ' context
                old_left -= 1
                new_left -= 1
                line += 1
            else:
                return pos  # malformed: stop this hunk here
        pos = nl + 1
    flush()
    if data.startswith(b"\\", pos):  # a trailing "\ No newline" belongs to this hunk
        nl = data.find(b"\n", pos)
        pos = n if nl < 0 else nl + 1
    return pos
