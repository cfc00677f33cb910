"""Canary values and the check that none escaped, with sealbox's own known-value scanner.

A canary is a random, recognisable value (``canary-<hex>``; and binary and non-ASCII
ones). Everything a scenario captured — outputs, logs, audit records, database rows,
files — is handed to :class:`CanaryCheck`, which runs
:class:`sealbox.scan.detectors.known.KnownValuesDetector` over it: raw, base64 (standard
and URL-safe, padded or not, at the three alignments), hex, URL-encoded and JSON-escaped.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from sealbox.model import SecretValue
from sealbox.scan.detectors.known import KnownValuesDetector
from sealbox.scan.text import ScanText

#: Columns that hold ciphertext or wrapped keys: random bytes by design, not scanned.
CIPHERTEXT_COLUMNS = {
    "sb_versions": {"ciphertext", "wrapped_key"},
}


class Canary(NamedTuple):
    path: str  # what the canary is, for the finding (never the value)
    version: int
    value: SecretValue


def text_canary() -> str:
    return f"canary-{secrets.token_hex(16)}"


def unicode_canary() -> str:
    return f"canary-ünïcödé-{secrets.token_hex(8)}-☃-日本"


def binary_canary() -> bytes:
    return b'canary-bin-\x00\xff\xfe\x01"\\\n' + os.urandom(12)


@dataclass
class CanaryCheck:
    """Canaries registered as they are made; every scanned place counted; hits named.

    A *name* canary is one sent where a name or path belongs (a URL segment): an error
    may name it back to the sender, so replies are scanned for value canaries only, and
    everything kept (logs, audit, rows, files) for both.
    """

    canaries: list[Canary] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    scanned: int = 0
    found: list[str] = field(default_factory=list)
    _detectors: dict[bool, KnownValuesDetector] = field(default_factory=dict)

    def add(self, label: str, value: str | bytes, *, name: bool = False) -> str | bytes:
        self.canaries.append(Canary(label, len(self.canaries) + 1, SecretValue(value)))
        if name:
            self.names.add(label)
        self._detectors.clear()
        return value

    def detector(self, *, names: bool = True) -> KnownValuesDetector:
        if names not in self._detectors:
            chosen = [c for c in self.canaries if names or c.path not in self.names]
            det = KnownValuesDetector(chosen)
            assert det.values_count == len(chosen)  # none too short to be looked for
            self._detectors[names] = det
        return self._detectors[names]

    def scan(self, where: str, data: bytes | str, *, reply: bool = False) -> int:
        """Scan one place; the number of canary hits in it (also kept in ``found``).
        ``reply``: an answer to the sender of the request (name canaries may be in it)."""
        blob = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
        self.scanned += 1
        hits = list(self.detector(names=not reply).detect(ScanText(blob, where), frozenset()))
        for hit in hits:
            self.found.append(f"{where}: {hit.description}")
        return len(hits)

    def scan_tree(self, root: Path, *, skip: frozenset[Path] = frozenset()) -> int:
        """Every regular file under ``root``; the number of files."""
        files = 0
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink() and path not in skip:
                self.scan(str(path), path.read_bytes())
                files += 1
        return files

    def scan_sqlite(self, db: Path) -> int:
        """Every row of every table, columns other than ciphertext; the number of rows."""
        rows = 0
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = [
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            ]
            for table in tables:
                skip = CIPHERTEXT_COLUMNS.get(table, set())
                cur = conn.execute(f'SELECT * FROM "{table}"')
                names = [d[0] for d in cur.description]
                for row in cur:
                    parts = [
                        v if isinstance(v, bytes) else str(v).encode("utf-8", "surrogateescape")
                        for name, v in zip(names, row, strict=True)
                        if name not in skip and v is not None
                    ]
                    self.scan(f"{db.name}:{table} row {rows}", b"\n".join(parts))
                    rows += 1
        finally:
            conn.close()
        return rows
