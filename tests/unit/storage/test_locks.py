"""LockStore contract: a scheduler lock is held by one owner until it expires."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from tests.unit.storage.contract import reopen

from sealbox.storage.interface import Storage

T0 = "2026-12-02T10:00:00+00:00"
T1 = "2026-12-02T10:00:30+00:00"
T2 = "2026-12-02T10:01:00+00:00"
T3 = "2026-12-02T10:01:30+00:00"


def test_a_free_lock_is_claimed_and_a_held_one_is_not(store: Storage) -> None:
    assert store.claim_lock("job:rotate", "node-a", now=T0, until=T2).owner == "node-a"
    held = store.claim_lock("job:rotate", "node-b", now=T1, until=T3)
    assert held.owner == "node-a" and held.until == T2


def test_the_holder_extends_its_claim_and_keeps_its_start(store: Storage) -> None:
    store.claim_lock("job:rotate", "node-a", now=T0, until=T1)
    row = store.claim_lock("job:rotate", "node-a", now=T1, until=T3)
    assert (row.owner, row.acquired_at, row.until) == ("node-a", T0, T3)


def test_an_expired_lock_is_taken_over(store: Storage) -> None:
    store.claim_lock("job:rotate", "node-a", now=T0, until=T1)
    row = store.claim_lock("job:rotate", "node-b", now=T2, until=T3)
    assert (row.owner, row.acquired_at) == ("node-b", T2)


def test_release_only_by_the_holder(store: Storage) -> None:
    store.claim_lock("job:reap", "node-a", now=T0, until=T2)
    assert not store.release_lock("job:reap", "node-b")
    assert store.claim_lock("job:reap", "node-b", now=T1, until=T3).owner == "node-a"
    assert store.release_lock("job:reap", "node-a")
    assert store.claim_lock("job:reap", "node-b", now=T1, until=T3).owner == "node-b"
    assert [(r.name, r.owner) for r in store.list_locks()] == [("job:reap", "node-b")]


def test_locks_are_independent(store: Storage) -> None:
    store.claim_lock("a", "node-a", now=T0, until=T2)
    assert store.claim_lock("b", "node-b", now=T0, until=T2).owner == "node-b"


def test_concurrent_claims_have_one_winner(
    store: Storage, kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Four nodes (each its own connection) claim one job at once: one wins."""
    winners: list[str] = []
    barrier = threading.Barrier(4)
    stores = [reopen(kind, tmp_path, request) for _ in range(4)]

    def claim(owner: str) -> None:
        own = stores[int(owner[1:])]
        barrier.wait()
        if own.claim_lock("job:race", owner, now=T0, until=T2).owner == owner:
            winners.append(owner)

    threads = [threading.Thread(target=claim, args=(f"n{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for own in stores:
        own.close()
    assert len(winners) == 1
