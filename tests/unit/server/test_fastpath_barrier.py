"""The fast path's audit barrier: one flush per loop turn, every waiter woken with its outcome, and a
database held by another writer retried without blocking the loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from sealbox.audit.spool import DRAIN_EVERY
from sealbox.audit_commit import Kind
from sealbox.errors import AuditUnavailable, BackendUnavailable, StorageBusy
from sealbox.server.fastpath import barrier as audit_barrier
from sealbox.server.fastpath.barrier import DRAIN_RETRY, AuditBarrier


class FakeCommit:
    """An AuditCommit whose outcomes the test sets."""

    kind: Kind = "spool"
    store_every = DRAIN_EVERY

    def __init__(self, busy_times: int = 0, fail: BaseException | None = None) -> None:
        self.pending = 0
        self.backlog = 0
        self.busy_times = busy_times
        self.fail = fail
        self.calls: list[bool] = []
        self.drain_calls: list[bool] = []
        self.spooled: Callable[[], None] | None = None

    def on_backlog(self, callback: Callable[[], None]) -> None:
        self.spooled = callback

    def spool(self) -> None:
        """An event reaches the spool (as the spool strategy's recorder does)."""
        self.backlog += 1
        assert self.spooled is not None
        self.spooled()

    def store(self, *, wait: bool = True) -> int:
        self.drain_calls.append(wait)
        if self.busy_times:
            self.busy_times -= 1
            raise StorageBusy("busy")
        if self.fail is not None:
            raise self.fail
        count, self.backlog = self.backlog, 0
        return count

    def commit(self, *, wait: bool = True) -> None:
        self.calls.append(wait)
        if not wait and self.busy_times:
            self.busy_times -= 1
            raise StorageBusy("busy")
        if self.fail is not None:
            raise self.fail
        self.pending = 0


def _barrier(commit: FakeCommit) -> AuditBarrier:
    return AuditBarrier(commit)


def test_one_flush_wakes_every_waiter() -> None:
    commit = FakeCommit()
    barrier = _barrier(commit)

    async def main() -> None:
        commit.pending = 3
        await asyncio.gather(*(barrier.wait() for _ in range(3)))

    asyncio.run(main())
    assert commit.calls == [False]
    assert barrier.flushes == 1


def test_nothing_pending_never_waits() -> None:
    commit = FakeCommit()
    barrier = _barrier(commit)
    asyncio.run(barrier.wait())
    assert commit.calls == []


def test_a_busy_database_is_retried_and_requests_join(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_barrier, "BUSY_RETRY", 0.001)
    commit = FakeCommit(busy_times=3)
    barrier = _barrier(commit)
    order: list[str] = []
    flush = commit.commit

    def logged_flush(*, wait: bool = True) -> None:
        order.append("flush")
        flush(wait=wait)

    commit.commit = logged_flush  # type: ignore[method-assign]

    async def ticker() -> None:
        # The loop keeps running while the flush is retried: ticks fall between tries.
        for _ in range(20):
            order.append("tick")
            await asyncio.sleep(0.0002)

    async def late_waiter() -> None:
        await asyncio.sleep(0.0015)  # arrives during the retries: joins the same flush
        commit.pending += 1
        await barrier.wait()

    async def main() -> None:
        commit.pending = 1
        await asyncio.gather(barrier.wait(), ticker(), late_waiter())

    asyncio.run(main())
    assert commit.calls == [False, False, False, False]
    assert barrier.busy == 3
    assert barrier.flushes == 1
    tries = [i for i, what in enumerate(order) if what == "flush"]
    assert len(tries) == 4
    # Other work ran on the loop between the first try and the last (a sleeping busy
    # handler would have held the loop through all of them).
    assert order[tries[0] : tries[-1]].count("tick") >= 2, order


def test_after_patience_the_flush_waits_for_the_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_barrier, "BUSY_RETRY", 0.001)
    monkeypatch.setattr(audit_barrier, "BUSY_PATIENCE", 0.0)
    commit = FakeCommit(busy_times=100)
    barrier = _barrier(commit)

    async def main() -> None:
        commit.pending = 1
        await barrier.wait()

    asyncio.run(main())
    assert commit.calls == [False, True]


def test_a_failed_flush_fails_every_waiter() -> None:
    commit = FakeCommit(fail=AuditUnavailable("no sink"))
    barrier = _barrier(commit)

    async def main() -> list[Any]:
        commit.pending = 2
        return await asyncio.gather(barrier.wait(), barrier.wait(), return_exceptions=True)

    results = asyncio.run(main())
    assert all(isinstance(r, AuditUnavailable) for r in results)


def test_a_cancelled_waiter_leaves_the_others_alone() -> None:
    commit = FakeCommit()
    barrier = _barrier(commit)

    async def main() -> None:
        commit.pending = 2
        first = asyncio.ensure_future(barrier.wait())
        second = asyncio.ensure_future(barrier.wait())
        await asyncio.sleep(0)
        first.cancel()
        await second
        assert first.cancelled()

    asyncio.run(main())
    assert barrier.flushes == 1


def test_spooled_events_are_drained_once_after_the_delay() -> None:
    """Events spooled during requests are stored by one drain DRAIN_EVERY later, off the
    requests' path: no request waits for it."""
    commit = FakeCommit()
    barrier = _barrier(commit)

    async def main() -> None:
        for _ in range(5):
            commit.spool()
            await barrier.wait()  # returns at once: nothing is pending
        assert commit.drain_calls == []
        await asyncio.sleep(DRAIN_EVERY * 3)

    asyncio.run(main())
    assert commit.drain_calls == [False]  # one drain, never blocking on the lock
    assert commit.backlog == 0
    assert barrier.counts()[3:] == (1, 5, 0, 0)


def test_a_busy_database_delays_the_drain_and_an_error_keeps_the_events() -> None:
    commit = FakeCommit(busy_times=2)
    barrier = _barrier(commit)

    async def main() -> None:
        commit.spool()
        await asyncio.sleep(DRAIN_EVERY + DRAIN_RETRY * 20)

    asyncio.run(main())
    assert commit.drain_calls == [False, False, False]
    assert barrier.busy == 2 and barrier.drained == 1

    for error in (BackendUnavailable("disk full"), OSError(28, "No space left on device")):
        failing = FakeCommit(fail=error)
        barrier = _barrier(failing)

        async def broken(commit: FakeCommit = failing) -> None:
            commit.spool()
            await asyncio.sleep(DRAIN_EVERY * 3)

        asyncio.run(broken())
        assert barrier.drain_errors == 1 and barrier.drained == 0
        assert failing.backlog == 1  # still spooled, to be tried again
        assert barrier._drain_scheduled  # and a retry is on the loop's calendar


def test_spooled_outside_a_running_loop_is_left_for_a_later_drain() -> None:
    commit = FakeCommit()
    barrier = _barrier(commit)
    commit.spool()  # e.g. at start-up, before the loop runs: no error, nothing scheduled
    assert commit.drain_calls == []

    async def main() -> None:
        commit.spool()
        await asyncio.sleep(DRAIN_EVERY * 3)

    asyncio.run(main())
    assert commit.drain_calls == [False] and barrier.drained == 2
