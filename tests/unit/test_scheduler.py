"""The scheduler: a job runs on the node holding its lock; another node takes over only
after the holder's lock expired; one job's failure does not stop the others."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sealbox import factory
from sealbox.auth.policy import parse_policy
from sealbox.auth.principal import Principal
from sealbox.caller import Actor
from sealbox.errors import AccessDenied, InvalidInput, SealboxError
from sealbox.kms.master import UnlockMethod
from sealbox.scheduler import Job, Scheduler
from sealbox.vault import Vault


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    factory.init_vault(home=home, method=UnlockMethod.KEYFILE, key_file=tmp_path / "k.key")
    return home


def node(home: Path, clock: Clock) -> Vault:
    return factory.open_vault(home=home, source="scheduler", clock=clock)


def counting(name: str, every: float, runs: list[str]) -> Job:
    def run() -> str:
        runs.append(name)
        return f"{name} ran"

    return Job(name, every, run)


def test_one_node_of_two_runs_each_job(home: Path, clock: Clock) -> None:
    runs: list[str] = []
    a = Scheduler(node(home, clock).locks, [counting("rotate", 30, runs)], owner="a", clock=clock)
    b = Scheduler(node(home, clock).locks, [counting("rotate", 30, runs)], owner="b", clock=clock)
    first = a.tick() + b.tick()
    assert [(r.job, r.ran, r.holder) for r in first] == [
        ("rotate", True, "a"),
        ("rotate", False, "a"),
    ]
    for _ in range(5):
        clock.advance(40)
        a.tick()
        b.tick()
    assert runs == ["rotate"] * 6  # every round, on a only


def test_a_dead_holder_is_taken_over_after_its_lock_expires(home: Path, clock: Clock) -> None:
    runs: list[str] = []
    vault_b = node(home, clock)
    a = Scheduler(
        node(home, clock).locks,
        [counting("reap", 10, runs)],
        owner="a",
        clock=clock,
        lock_ttl=timedelta(seconds=60),
    )
    b = Scheduler(
        vault_b.locks,
        [counting("reap", 10, runs)],
        owner="b",
        clock=clock,
        lock_ttl=timedelta(seconds=60),
    )
    assert a.tick()[0].ran
    # a dies here (no release). b keeps trying; it wins only once a's lock ran out.
    for _ in range(5):
        clock.advance(11)
        assert not b.tick()[0].ran
    clock.advance(11)
    turn = b.tick()[0]
    assert (turn.ran, turn.holder) == (True, "b")
    events = [e for e in vault_b.audit.log(limit=50) if e["operation"] == "scheduler.claim"]
    assert [e["reason"] for e in events][:1] == ["b leads, taking over from a"]


def test_a_clean_stop_frees_the_lock_at_once(home: Path, clock: Clock) -> None:
    runs: list[str] = []
    a = Scheduler(node(home, clock).locks, [counting("j", 10, runs)], owner="a", clock=clock)
    b = Scheduler(node(home, clock).locks, [counting("j", 10, runs)], owner="b", clock=clock)
    stop = threading.Event()
    stop.set()
    a.tick()
    a.run(stop)  # stops at once, releasing
    assert b.tick()[0].ran


def test_a_failing_job_is_reported_and_the_others_still_run(home: Path, clock: Clock) -> None:
    runs: list[str] = []

    def broken() -> str:
        raise SealboxError("upstream down")

    def crashing() -> str:
        raise ZeroDivisionError

    s = Scheduler(
        node(home, clock).locks,
        [Job("broken", 10, broken), Job("crash", 10, crashing), counting("ok", 10, runs)],
        owner="a",
        clock=clock,
    )
    turns = {t.job: t for t in s.tick()}
    assert turns["broken"].error == "upstream down"
    assert turns["crash"].error == "ZeroDivisionError"
    assert turns["ok"].ran and runs == ["ok"]


def test_rounds_are_spread_by_jitter(home: Path, clock: Clock) -> None:
    s = Scheduler(
        node(home, clock).locks,
        [counting("j", 100, [])],
        owner="a",
        clock=clock,
        rng=random.Random(7),
    )
    due = set()
    for _ in range(20):
        s.tick()
        due.add((s.next_due() - clock.now).total_seconds())
        clock.now = s.next_due()
    assert len(due) > 10 and all(90 <= d <= 110 for d in due)


def test_a_job_must_not_outlast_its_lock(home: Path, clock: Clock) -> None:
    with pytest.raises(InvalidInput, match="shorter than the lock"):
        Scheduler(node(home, clock).locks, [counting("j", 600, [])], clock=clock)
    with pytest.raises(InvalidInput, match="one name"):
        Scheduler(node(home, clock).locks, [counting("j", 1, []), counting("j", 2, [])])


def test_claiming_needs_admin_on_sys_scheduler(home: Path, clock: Clock) -> None:
    policy = parse_policy(
        {"name": "ro", "rules": [{"path": "payments/*/*", "capabilities": ["read"]}]}
    )
    reader = Principal("i-1", "ci", "machine", "approle", (policy,))
    view = node(home, clock).as_principal(reader, Actor("ci", "api"))
    s = Scheduler(view.locks, [counting("j", 10, [])], owner="x", clock=clock)
    assert s.tick()[0].error == AccessDenied.code
