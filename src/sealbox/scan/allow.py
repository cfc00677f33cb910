"""Allowlists: inline ``sealbox:allow`` comments, the ``.sealbox-scan.toml`` config (path
globs, disabled rules, per-rule path globs) and the baseline file of accepted findings.

Config format (all keys optional)::

    version = 1
    disable_rules = ["generic-secret-assignment"]     # never run these rules
    allow_paths = ["tests/fixtures/**", "*.lock"]      # never scan these paths
    max_file_size = "10MiB"

    [[allow]]                                          # a rule allowed on some paths only
    rules = ["private-key"]
    paths = ["docs/examples/**"]

Globs are matched against the path relative to the scan root with ``/`` separators: ``*``
and ``?`` stay inside one path segment, ``**`` spans segments, and a glob without ``/``
matches the base name at any depth (as in ``.gitignore``).

Baseline (``--baseline FILE``): JSON ``{"version": 1, "findings": [{"fingerprint", "rule_id",
"path", "line"}]}``; a fingerprint is SHA-256 of rule id + path + secret, never the secret.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from sealbox.errors import InvalidInput
from sealbox.scan.findings import Finding

INLINE_MARKER = b"sealbox:allow"
CONFIG_NAME = ".sealbox-scan.toml"
BASELINE_VERSION = 1
_SIZE_RE = re.compile(r"(?i)^\s*(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?\s*$")
_UNITS = {
    None: 1, "b": 1, "k": 1024, "kb": 1000, "kib": 1024, "m": 1 << 20,
    "mb": 1_000_000, "mib": 1 << 20, "g": 1 << 30, "gb": 1_000_000_000, "gib": 1 << 30,
}  # fmt: skip


def parse_size(text: str | int) -> int:
    """``10MiB``, ``512k``, ``1000000`` -> bytes."""
    if isinstance(text, int):
        return text
    m = _SIZE_RE.match(text)
    if not m:
        raise InvalidInput(f"invalid size {text!r}: use a number with an optional unit (10MiB)")
    unit = m.group(2).lower() if m.group(2) else None
    return int(float(m.group(1)) * _UNITS[unit])


@lru_cache(maxsize=512)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile a path glob (see module doc) to a regex over ``/``-separated paths."""
    pat = pattern.strip()
    anchored = "/" in pat.rstrip("/")
    pat = pat.lstrip("/")
    dir_only = pat.endswith("/")
    pat = pat.rstrip("/")
    out = []
    i = 0
    while i < len(pat):
        c = pat[i]
        if pat.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pat.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(c))
            i += 1
    body = "".join(out)
    prefix = "" if anchored else "(?:.*/)?"
    # A pattern naming a directory also matches everything beneath it.
    suffix = "(?:/.*)?" if not dir_only else "/.*"
    return re.compile(f"^{prefix}{body}{suffix}$")


def path_matches(path: str, patterns: Iterable[str]) -> bool:
    """True when ``path`` matches one of the globs."""
    norm = path.replace(os.sep, "/")
    while norm.startswith("./"):
        norm = norm[2:]
    return any(glob_regex(p).match(norm) for p in patterns)


@dataclass(frozen=True)
class RuleAllow:
    """Rules allowed on some paths."""

    rules: frozenset[str]
    paths: tuple[str, ...]


@dataclass(frozen=True)
class ScanConfig:
    """Contents of ``.sealbox-scan.toml``."""

    disable_rules: frozenset[str] = frozenset()
    allow_paths: tuple[str, ...] = ()
    rule_allows: tuple[RuleAllow, ...] = ()
    max_file_size: int | None = None
    source: str | None = None

    def path_allowed(self, path: str) -> bool:
        """The whole path is allow-listed (not scanned at all)."""
        return bool(self.allow_paths) and path_matches(path, self.allow_paths)

    def rule_allowed(self, rule_id: str, path: str) -> bool:
        """This rule is allow-listed on this path."""
        return any(rule_id in ra.rules and path_matches(path, ra.paths) for ra in self.rule_allows)


def _strings(doc: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = doc.get(key, [])
    if not isinstance(value, list) or not all(isinstance(x, str) and x for x in value):
        raise InvalidInput(f"{where}: '{key}' must be a list of non-empty strings")
    return tuple(value)


def parse_config(text: str, source: str) -> ScanConfig:
    """Parse a scan config document; unknown keys are errors (typos must not disable checks)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{source} is not valid TOML: {exc}") from exc
    known = {"version", "disable_rules", "allow_paths", "allow", "max_file_size"}
    unknown = set(doc) - known
    if unknown:
        raise InvalidInput(f"{source}: unknown key(s) {', '.join(sorted(unknown))}")
    if doc.get("version", 1) != 1:
        raise InvalidInput(f"{source}: version must be 1")
    allows: list[RuleAllow] = []
    raw_allows = doc.get("allow", [])
    if not isinstance(raw_allows, list):
        raise InvalidInput(f"{source}: 'allow' must be an array of tables ([[allow]])")
    for i, entry in enumerate(raw_allows):
        where = f"{source}: [[allow]] #{i + 1}"
        if not isinstance(entry, dict) or set(entry) - {"rules", "paths"}:
            raise InvalidInput(f"{where}: only 'rules' and 'paths' are allowed")
        rules, paths = _strings(entry, "rules", where), _strings(entry, "paths", where)
        if not rules or not paths:
            raise InvalidInput(f"{where}: needs non-empty 'rules' and 'paths'")
        allows.append(RuleAllow(frozenset(rules), paths))
    size = doc.get("max_file_size")
    return ScanConfig(
        disable_rules=frozenset(_strings(doc, "disable_rules", source)),
        allow_paths=_strings(doc, "allow_paths", source),
        rule_allows=tuple(allows),
        max_file_size=parse_size(size) if isinstance(size, str | int) else None,
        source=source,
    )


def load_config(path: Path) -> ScanConfig:
    """Read a scan config file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read scan config {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"scan config {path} is not UTF-8") from exc
    return parse_config(text, str(path))


def find_config(root: Path) -> ScanConfig:
    """The config at ``root/.sealbox-scan.toml``, or an empty one."""
    candidate = root / CONFIG_NAME
    return load_config(candidate) if candidate.is_file() else ScanConfig()


@dataclass
class Baseline:
    """Fingerprints of accepted findings."""

    fingerprints: set[str] = field(default_factory=set)

    def filter(self, findings: Sequence[Finding]) -> list[Finding]:
        """Only the findings not in the baseline."""
        return [f for f in findings if f.fingerprint not in self.fingerprints]


def load_baseline(path: Path) -> Baseline:
    """Read a baseline file; a missing file is an empty baseline."""
    if not path.exists():
        return Baseline()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"baseline {path} is not readable JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("version") != BASELINE_VERSION:
        raise InvalidInput(f"baseline {path}: expected an object with version {BASELINE_VERSION}")
    items = doc.get("findings")
    if not isinstance(items, list):
        raise InvalidInput(f"baseline {path}: 'findings' must be a list")
    fps: set[str] = set()
    for item in items:
        fp = item.get("fingerprint") if isinstance(item, dict) else None
        if not isinstance(fp, str) or not re.fullmatch(r"[0-9a-f]{64}", fp):
            raise InvalidInput(f"baseline {path}: every finding needs a sha256 'fingerprint'")
        fps.add(fp)
    return Baseline(fps)


def write_baseline(path: Path, findings: Sequence[Finding]) -> None:
    """Write the baseline atomically (temp file + fsync + rename)."""
    items = sorted(
        (
            {"fingerprint": f.fingerprint, "rule_id": f.rule_id, "path": f.path, "line": f.line}
            for f in findings
        ),
        key=lambda d: (str(d["path"]), int(str(d["line"])), str(d["rule_id"])),
    )
    body = json.dumps({"version": BASELINE_VERSION, "findings": items}, indent=1) + "\n"
    directory = path.parent if str(path.parent) else Path()
    try:
        fd, tmp = tempfile.mkstemp(prefix=".sealbox-baseline.", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise InvalidInput(f"cannot write baseline {path}: {exc.strerror}") from exc
