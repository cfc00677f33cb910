"""A text to scan: raw bytes, where they came from, and how offsets map to line numbers.

Texts are scanned as bytes (RE2 works on bytes without re-encoding, and non-UTF-8 input needs
no decoding to be searched); only the pieces shown to the user are decoded, with
``errors="replace"``. A text built from a diff is the concatenation of the added lines of each
hunk, so each segment records the new-side line number of its first line.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

#: Languages where an unquoted right-hand side is an expression, not a literal value.
CODE_SUFFIXES = frozenset(
    [
        ".py",
        ".pyi",
        ".js",
        ".jsx",
        ".ts",
        ".tsx",
        ".mjs",
        ".cjs",
        ".go",
        ".java",
        ".kt",
        ".kts",
        ".scala",
        ".rb",
        ".php",
        ".cs",
        ".c",
        ".h",
        ".cc",
        ".cpp",
        ".hpp",
        ".rs",
        ".swift",
        ".m",
        ".lua",
        ".pl",
        ".pm",
        ".groovy",
        ".dart",
        ".ex",
        ".exs",
        ".clj",
        ".r",
        ".jl",
        ".vue",
        ".svelte",
    ]
)


def is_code_path(path: str) -> bool:
    """True when ``path`` names a programming-language source file."""
    dot = path.rfind(".")
    return dot > path.rfind("/") and path[dot:].lower() in CODE_SUFFIXES


@dataclass
class ScanText:
    """Bytes to scan plus the mapping from byte offsets to line numbers."""

    data: bytes
    path: str
    #: (offset in data, line number of that offset); sorted; first offset is 0.
    segments: list[tuple[int, int]] = field(default_factory=lambda: [(0, 1)])
    _offsets: list[int] = field(default_factory=list, repr=False)
    _cache: tuple[int, int] = (0, 1)

    def __post_init__(self) -> None:
        self._offsets = [s[0] for s in self.segments]
        self._cache = self.segments[0]

    @property
    def is_code(self) -> bool:
        """Whether this text is program source (affects the generic detector)."""
        return is_code_path(self.path)

    def line_of(self, pos: int) -> int:
        """Line number (1-based) of byte offset ``pos``."""
        i = bisect.bisect_right(self._offsets, pos) - 1
        seg_off, seg_line = self.segments[max(i, 0)]
        cache_off, cache_line = self._cache
        if seg_off <= cache_off <= pos:
            line = cache_line + self.data.count(b"\n", cache_off, pos)
        else:
            line = seg_line + self.data.count(b"\n", seg_off, pos)
        self._cache = (pos, line)
        return line

    def column_of(self, pos: int) -> int:
        """Column (1-based, in bytes) of byte offset ``pos``."""
        return pos - (self.data.rfind(b"\n", 0, pos) + 1) + 1

    def line_bytes(self, pos: int) -> bytes:
        """The whole line holding byte offset ``pos`` (capped at 4 KiB each side)."""
        start = self.data.rfind(b"\n", max(0, pos - 4096), pos) + 1 or max(0, pos - 4096)
        end = self.data.find(b"\n", pos, pos + 4096)
        if end < 0:
            end = min(len(self.data), pos + 4096)
        return self.data[start:end]
