"""The seal shared by a server's worker processes (server/seal_flag.py)."""

from __future__ import annotations

import multiprocessing
import os
import stat
import threading
from pathlib import Path

from sealbox.server.seal_flag import SealFlag


def _set_in_child(path: str) -> None:
    SealFlag(path).set()


def test_a_seal_set_in_one_process_is_seen_by_another() -> None:
    flag = SealFlag.create()
    try:
        assert stat.S_IMODE(os.stat(flag.path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(Path(flag.path).parent).st_mode) == 0o700
        worker = SealFlag(flag.path)  # as a worker process maps it
        assert not flag.is_set() and not worker.is_set()
        child = multiprocessing.get_context("spawn").Process(
            target=_set_in_child, args=(flag.path,)
        )
        child.start()
        child.join(30)
        assert child.exitcode == 0
        assert flag.is_set() and worker.is_set()
    finally:
        flag.remove()
    assert not Path(flag.path).parent.exists()


def test_the_watcher_calls_once_when_set() -> None:
    flag = SealFlag.create()
    try:
        called = threading.Event()
        stop = threading.Event()
        thread = flag.watch(called.set, stop)
        assert not called.wait(1.5)
        flag.set()
        assert called.wait(5)
        thread.join(5)
        assert not thread.is_alive()
        stop.set()
    finally:
        flag.remove()
