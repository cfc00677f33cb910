"""One server's seal, shared by its worker processes.

A seal (``PUT /v1/sys/seal``) reaches one worker; the others must drop their KEKs too, at
once, or an emergency seal would leave most of the server unsealed. The supervising
process makes a one-byte file (0600, in a 0700 directory of its own) that every worker
maps into memory: the sealing worker sets the byte, every worker reads it on each request
(a memory read) and a watcher thread in each drops the keys within a second even when no
request comes. The byte is never cleared: a multi-worker server sealed this way is
unsealed by restarting it (auto-unseal), not by shares — shares sent to one worker could
not reach the others.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

#: The environment variable that hands the flag's path to the worker processes.
FLAG_VAR = "SEALBOX_SEAL_FLAG"
WATCH_SECONDS = 1.0


class SealFlag:
    """The shared byte (see the module docstring)."""

    def __init__(self, path: str) -> None:
        fd = os.open(path, os.O_RDWR)
        try:
            self._map = mmap.mmap(fd, 1)
        finally:
            os.close(fd)
        self.path = path

    @classmethod
    def create(cls) -> SealFlag:
        directory = tempfile.mkdtemp(prefix="sealbox-seal-")  # 0700
        path = os.path.join(directory, "sealed")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"\x00")
        finally:
            os.close(fd)
        return cls(path)

    def set(self) -> None:
        self._map[0] = 1
        self._map.flush()

    def is_set(self) -> bool:
        return self._map[0] == 1

    def watch(self, on_set: Callable[[], None], stop: threading.Event) -> threading.Thread:
        """Call ``on_set`` (once) within a second of the byte being set."""

        def run() -> None:
            while not stop.wait(WATCH_SECONDS):
                if self.is_set():
                    with contextlib.suppress(Exception):  # a failure to drop: the gate stays
                        on_set()
                    return

        thread = threading.Thread(target=run, name="sealbox-seal-watch", daemon=True)
        thread.start()
        return thread

    def remove(self) -> None:
        """Delete the file and its directory (the supervisor, at exit)."""
        with contextlib.suppress(OSError, ValueError):
            self._map.close()
        shutil.rmtree(Path(self.path).parent, ignore_errors=True)
