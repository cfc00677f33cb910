"""The audit-commit strategies (the interface and the rule are in
``sealbox/audit_commit.py``): ``Vault.serve()`` picks the spool or group commit; a vault
that is not served commits each event in its own transaction."""

from __future__ import annotations

from collections.abc import Callable

from sealbox.audit.recorder import AuditRecorder
from sealbox.audit.spool import DRAIN_EVERY
from sealbox.audit_commit import Kind


class DirectCommit:
    """Not served: every event is committed before its operation returns."""

    kind: Kind = "direct"
    store_every = 0.0
    pending = 0
    backlog = 0

    def commit(self, *, wait: bool = True) -> None:
        """Nothing to do: each event was committed with its operation."""

    def store(self, *, wait: bool = True) -> int:
        """Nothing to do: committed events are in the database."""
        return 0

    def on_backlog(self, callback: Callable[[], None]) -> None:
        """Never called: direct commits keep no backlog."""


class SpoolCommit:
    """SQLite: events reach this process's spool file as they are recorded (nothing is
    pending); the recorder's drain stores the backlog (``audit/spool.py``)."""

    kind: Kind = "spool"
    store_every = DRAIN_EVERY
    pending = 0

    def __init__(self, recorder: AuditRecorder) -> None:
        self._recorder = recorder

    def commit(self, *, wait: bool = True) -> None:
        """Nothing to do: every event was spooled before its operation returned."""

    @property
    def backlog(self) -> int:
        return self._recorder.spooled

    def store(self, *, wait: bool = True) -> int:
        return self._recorder.drain(wait=wait)

    def on_backlog(self, callback: Callable[[], None]) -> None:
        self._recorder.when_spooled(callback)


class GroupCommit:
    """Events wait in memory until one transaction stores them all (group commit)."""

    kind: Kind = "group"
    store_every = 0.0
    backlog = 0

    def __init__(self, recorder: AuditRecorder) -> None:
        recorder.deferred = True
        self._recorder = recorder

    @property
    def pending(self) -> int:
        return self._recorder.pending

    def commit(self, *, wait: bool = True) -> None:
        self._recorder.flush(wait=wait)

    def store(self, *, wait: bool = True) -> int:
        """Nothing to do: committed events are in the database."""
        return 0

    def on_backlog(self, callback: Callable[[], None]) -> None:
        """Never called: group commit keeps no backlog."""
