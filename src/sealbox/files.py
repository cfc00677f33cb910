"""File helpers the core and the SDK share: where sealbox's home is, and how a file that
may hold a secret is written (0600, atomically).

A leaf importing only the standard library, so the SDK (``client/``) can keep its
credentials and offline cache the same way the core keeps its config and key files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def default_home(env: Mapping[str, str]) -> Path:
    """``SEALBOX_HOME``, else ``$XDG_DATA_HOME/sealbox`` (``~/.local/share/sealbox``)."""
    if env.get("SEALBOX_HOME"):
        return Path(env["SEALBOX_HOME"]).expanduser()
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "sealbox"


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write a file atomically with the given mode: temp file, fsync, rename, fsync dir."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
