"""Scheduler locks, as a core service (``vault.locks``): which node runs a periodic job.

A job runs on the node that holds its lock; the holder extends the lock on every round,
and another node takes it over only once it expired (its holder died or hung). Taking a
lock another node held is audited: it is the evidence of a node lost mid-job.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

from sealbox.auth.policy import Capability
from sealbox.context import CoreService

#: The policy path a scheduler needs ``admin`` on.
SCHEDULER_PATH = "sys/scheduler"


class Lock(NamedTuple):
    """Who holds a job's lock, since when, until when."""

    name: str
    owner: str
    acquired_at: datetime
    until: datetime

    def held_by(self, owner: str) -> bool:
        return self.owner == owner


class Locks(CoreService):
    """Claim, extend and free scheduler locks for one caller (admin on sys/scheduler)."""

    __slots__ = ()

    def claim(self, name: str, owner: str, ttl: timedelta) -> Lock:
        """Hold ``name`` for ``owner`` for ``ttl`` from now, if free, expired or already
        ``owner``'s; the lock as it stands after (``held_by(owner)``: won)."""
        self._authorize(Capability.ADMIN, SCHEDULER_PATH, "scheduler.claim")
        now = self._clock()
        before = {row.name: row for row in self._storage.list_locks()}.get(name)
        row = self._storage.claim_lock(
            name, owner, now=now.isoformat(), until=(now + ttl).isoformat()
        )
        lock = Lock(
            row.name,
            row.owner,
            datetime.fromisoformat(row.acquired_at),
            datetime.fromisoformat(row.until),
        )
        if lock.held_by(owner) and (before is None or before.owner != owner):
            reason = f"{owner} leads" + (f", taking over from {before.owner}" if before else "")
            self._record("scheduler.claim", f"{SCHEDULER_PATH}/{name}", reason=reason)
        return lock

    def release(self, name: str, owner: str) -> bool:
        """Free ``name`` if ``owner`` holds it (a node stopping cleanly)."""
        self._authorize(Capability.ADMIN, SCHEDULER_PATH, "scheduler.release")
        freed = self._storage.release_lock(name, owner)
        if freed:
            self._record("scheduler.release", f"{SCHEDULER_PATH}/{name}", reason=owner)
        return freed

    def holders(self) -> list[Lock]:
        """Every lock and its holder (``sealbox scheduler --status``, ``doctor``)."""
        self._authorize(Capability.ADMIN, SCHEDULER_PATH, "scheduler.status")
        return [
            Lock(
                r.name,
                r.owner,
                datetime.fromisoformat(r.acquired_at),
                datetime.fromisoformat(r.until),
            )
            for r in self._storage.list_locks()
        ]
