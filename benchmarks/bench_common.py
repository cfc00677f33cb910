"""Helpers the side-by-side harnesses share: installs, bytecode, ports, rounds, spreads.

Pure functions where possible (tests/unit/benchmarks/ covers them, without timing anything).
The harnesses import this module by name: a script's own folder is first on ``sys.path``.
"""

from __future__ import annotations

import os
import socket
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Install:
    """One sealbox install to measure: its interpreter and its ``sealbox`` entry point."""

    label: str  # "now" (the interpreter running the harness) or "base" (--also)
    python: Path
    sealbox: Path


def resolve_install(label: str, where: str | os.PathLike[str]) -> Install:
    """An install from a python binary, a venv, or a checkout holding ``.venv``.

    The path is not resolved through symlinks: a venv's ``bin/python`` is a symlink to the
    system interpreter, and only the venv's own path loads the venv's packages.
    """
    path = Path(where).expanduser().absolute()
    candidates = [path] if path.is_file() else [path / "bin/python", path / ".venv/bin/python"]
    for python in candidates:
        sealbox = python.with_name("sealbox")
        if python.is_file() and os.access(python, os.X_OK) and sealbox.is_file():
            return Install(label, python, sealbox)
    raise SystemExit(
        f"bench error=no_install path={path} hint=give a python binary, a venv or a checkout "
        "whose .venv has sealbox installed"
    )


def bytecode_env(env: Mapping[str, str], cache_dir: Path) -> dict[str, str]:
    """``env`` for a timed child: bytecode on, kept in ``cache_dir``, never in a checkout.

    A user's install has bytecode, so start-up is timed with it (this machine sets
    PYTHONDONTWRITEBYTECODE, which makes every process compile every module it imports);
    the prefix keeps the ``__pycache__`` folders of an editable install out of the source
    tree.
    """
    out = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    out["PYTHONPYCACHEPREFIX"] = str(cache_dir)
    return out


def rotated(items: Sequence[T], round_index: int) -> list[T]:
    """The round's order: tools alternate which goes first, so none always runs first (or
    always right after another one warmed the caches)."""
    if not items:
        return []
    k = round_index % len(items)
    return [*items[k:], *items[:k]]


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float

    def show(self, digits: int = 2) -> str:
        return f"{self.median:.{digits}f} ({self.low:.{digits}f}-{self.high:.{digits}f})"


def spread(values: Sequence[float]) -> Spread:
    if not values:
        raise ValueError("no values")
    return Spread(statistics.median(values), min(values), max(values))


def per_round_ratios(
    rounds: Sequence[Mapping[str, float]], numerator: str, denominator: str
) -> list[float]:
    """``numerator / denominator`` within each round, never a ratio of medians: a slow round
    slows both sides alike, so the ratio keeps what the medians would lose."""
    return [r[numerator] / r[denominator] for r in rounds if r.get(denominator)]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def free_port(span: int = 1, host: str = "127.0.0.1", attempts: int = 50) -> int:
    """A port the kernel handed out (bind to 0) whose next ``span - 1`` ports are free too
    (OpenBao's dev server also binds PORT+1 for its cluster listener)."""
    for _ in range(attempts):
        with socket.socket() as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port + span - 1 <= 65535 and all(port_is_free(port + i, host) for i in range(span)):
            return port
    raise SystemExit(f"bench error=no_free_port span={span}")
