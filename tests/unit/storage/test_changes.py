"""ChangeStore contract: a change notice one connection publishes, another hears."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from tests.unit.storage.contract import reopen

from sealbox.storage.interface import Storage


def test_a_published_notice_is_heard(
    kind: str, store: Storage, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    feed = store.change_feed()
    assert store.change_feed() is feed  # one feed per storage
    other = reopen(kind, tmp_path, request)
    heard: list[str] = []
    ready, done = threading.Event(), threading.Event()

    def deliver(payload: str) -> None:
        heard.append(payload)
        done.set()

    listener = other.change_feed()
    thread = threading.Thread(
        target=listener.listen,
        args=(deliver, lambda: not done.is_set(), ready, listener.position()),
        daemon=True,
    )
    thread.start()
    try:
        assert ready.wait(10)
        feed.publish('{"path": "payments/dev/DB"}')
        assert done.wait(10)
        assert heard == ['{"path": "payments/dev/DB"}']
    finally:
        done.set()
        thread.join(10)
        other.close()
