"""The vault's periodic jobs — rotating what is due, reaping expired leases — run on one
node at a time, whichever nodes run a scheduler.

Each job has a lock (``vault.locks``): a round runs a job only on the node holding its
lock, which extends it every round; if that node dies, another takes the lock over once it
expired (``lock_ttl``) and the job continues there. Rounds are spread with jitter so that
nodes started together do not claim in step. One job's failure is reported and retried
on its next round; it never stops the others. Per-secret safety does not rest on these
locks alone: a secret has at most one unfinished rotation (the core refuses a second), so
even a node that lost its lock mid-round cannot rotate a secret twice.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple

from sealbox.context import Clock, utcnow
from sealbox.errors import InvalidInput, SealboxError

if TYPE_CHECKING:
    from sealbox.locks import Locks
    from sealbox.vault import Vault

log = logging.getLogger("sealbox.scheduler")

#: How long a lock outlives its holder's last round (another node waits this long).
DEFAULT_LOCK_TTL = timedelta(minutes=2)
#: Rounds come every ``every`` seconds, plus or minus this fraction of it.
JITTER = 0.1
#: How often the rotation job runs (due rotations, and retrying the stalled ones).
ROTATE_EVERY = 60.0
#: At most this many rotations start in one round of the rotation job: a burst of due
#: secrets (a thousand configured the same day) is spread over rounds, so the reads the
#: server answers meanwhile keep their throughput (benchmarks/rotation_bench.py
#: --per-round); 25 a minute is 1,500 an hour.
ROTATIONS_PER_ROUND = 25
#: How often expired leases are reaped (their users dropped): a lease outlives its TTL by
#: this much at most, while the database is reachable.
REAP_EVERY = 30.0
#: A rotation waiting on an unreachable upstream is retried this long after its last try
#: (each try is audited: a dead upstream must not write an event a minute for days).
PENDING_RETRY = timedelta(minutes=5)


class Job(NamedTuple):
    """A periodic job: its name (its lock is ``job:<name>``), its period, what it runs
    (returning a one-line summary for the log)."""

    name: str
    every: float
    run: Callable[[], str]


class Round(NamedTuple):
    """What one job's turn in a round did."""

    job: str
    ran: bool
    #: The node holding the job's lock (this one when ``ran``).
    holder: str
    summary: str = ""
    error: str | None = None


def node_owner() -> str:
    """A scheduler's name in the lock rows: host, process, and a random part (a restarted
    process with a reused pid must not inherit its predecessor's locks)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Scheduler:
    """Runs ``jobs`` whenever due, on this node when it holds each job's lock."""

    def __init__(
        self,
        locks: Locks,
        jobs: Sequence[Job],
        *,
        owner: str | None = None,
        clock: Clock = utcnow,
        lock_ttl: timedelta = DEFAULT_LOCK_TTL,
        rng: random.Random | None = None,
    ) -> None:
        names = [job.name for job in jobs]
        if len(names) != len(set(names)):
            raise InvalidInput("two scheduler jobs have one name")
        for job in jobs:
            if job.every <= 0:
                raise InvalidInput(f"scheduler job {job.name}: its period must be positive")
            if timedelta(seconds=job.every) >= lock_ttl:
                # NOTE: the holder extends its lock once per round: a lock shorter than
                # the period would expire between rounds and pass to another node.
                raise InvalidInput(
                    f"scheduler job {job.name}: its period ({job.every:g} s) must be shorter"
                    f" than the lock's time to live ({lock_ttl.total_seconds():g} s)"
                )
        self.locks = locks
        self.jobs = tuple(jobs)
        self.owner = owner or node_owner()
        self.clock = clock
        self.lock_ttl = lock_ttl
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrecy
        self._next: dict[str, datetime] = {}

    def _spread(self, every: float) -> timedelta:
        return timedelta(seconds=every * (1 + self._rng.uniform(-JITTER, JITTER)))

    def tick(self) -> list[Round]:
        """One round: every job that is due claims its lock and, if held, runs."""
        done: list[Round] = []
        for job in self.jobs:
            now = self.clock()
            if self._next.get(job.name, now) > now:
                continue
            self._next[job.name] = now + self._spread(job.every)
            done.append(self._turn(job))
        return done

    def _turn(self, job: Job) -> Round:
        try:
            lock = self.locks.claim(f"job:{job.name}", self.owner, self.lock_ttl)
        except SealboxError as exc:
            log.warning("scheduler: cannot claim job %s: %s", job.name, exc)
            return Round(job.name, False, "", error=exc.code)
        if not lock.held_by(self.owner):
            return Round(job.name, False, lock.owner)
        try:
            summary = job.run()
        except SealboxError as exc:
            log.warning("scheduler: job %s failed: %s", job.name, exc)
            return Round(job.name, True, self.owner, error=str(exc))
        except Exception as exc:  # a bug in one job must not stop the others
            log.exception("scheduler: job %s crashed", job.name)
            return Round(job.name, True, self.owner, error=type(exc).__name__)
        if summary:
            log.info("scheduler: %s: %s", job.name, summary)
        return Round(job.name, True, self.owner, summary)

    def next_due(self) -> datetime:
        """When the next job is due (now if one never ran)."""
        now = self.clock()
        return min((self._next.get(job.name, now) for job in self.jobs), default=now)

    def run(
        self, stop: threading.Event, *, on_round: Callable[[Round], None] | None = None
    ) -> None:
        """Rounds until ``stop`` is set; then frees this node's locks so another node
        need not wait for them to expire."""
        try:
            while not stop.is_set():
                for turn in self.tick():
                    if on_round is not None:
                        on_round(turn)
                wait = (self.next_due() - self.clock()).total_seconds()
                stop.wait(max(0.05, wait))
        finally:
            self.release()

    def release(self) -> None:
        for job in self.jobs:
            try:
                self.locks.release(f"job:{job.name}", self.owner)
            except SealboxError as exc:  # the lock expires on its own
                log.warning("scheduler: cannot free job %s: %s", job.name, exc)


def rotation_round(
    vault: Vault, clock: Clock = utcnow, per_round: int = ROTATIONS_PER_ROUND
) -> str:
    """One turn of the rotation job: resume the unfinished rotations that a crashed node
    left (their lease ran out) or that wait on an unreachable upstream (after
    :data:`PENDING_RETRY`), then start the due ones. Failed rotations are left for a
    person (``rotation status --failed``, ``/metrics``, ``doctor``)."""
    from sealbox.model import RotationState

    rotations = vault.rotations
    now = clock()
    resumed = stalled = 0
    for info in rotations.status(limit=1000):
        if not info.open or info.state is RotationState.FAILED:
            continue
        if info.state is RotationState.PENDING and now - info.updated_at < PENDING_RETRY:
            continue
        try:
            after = rotations.resume(info.id)
        except SealboxError as exc:  # a live owner holds it, or it failed again
            log.info("scheduler: rotation %s not resumed: %s", info.id, exc.message)
            stalled += 1
            continue
        resumed += 1
        log.info("scheduler: rotation %s of %s resumed: %s", info.id, info.ref, after.state)
    outcomes = rotations.rotate_due(limit=max(0, per_round - resumed))
    started = sum(1 for o in outcomes if o.rotation is not None)
    more = "; more are due: next round" if started + resumed >= per_round else ""
    return (
        f"{started} due rotation(s) started, {len(outcomes) - started} skipped;"
        f" {resumed} resumed, {stalled} still waiting{more}"
    )


def reap_round(vault: Vault) -> str:
    """One turn of the lease job: revoke the expired leases (and those of revoked tokens)
    in batches until none is left or a pass made no progress; failures wait out their
    backoff, kept in the lease rows, so a restarted scheduler continues the count."""
    revoked = failed = 0
    while True:
        report = vault.leases.reap()
        revoked += len(report.revoked)
        failed += len(report.failed)
        if not report.more or not report.revoked:
            break
    return f"{revoked} lease(s) revoked, {failed} revocation(s) failed (retried later)"


def default_jobs(
    vault: Vault,
    *,
    rotate_every: float = ROTATE_EVERY,
    reap_every: float = REAP_EVERY,
    per_round: int = ROTATIONS_PER_ROUND,
    clock: Clock = utcnow,
) -> list[Job]:
    """The jobs ``sealbox scheduler`` and a server with ``scheduler = true`` run."""
    return [
        Job("rotations", rotate_every, lambda: rotation_round(vault, clock, per_round)),
        Job("leases", reap_every, lambda: reap_round(vault)),
    ]
