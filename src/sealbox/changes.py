"""Change notices between the processes that share one vault.

A notice is JSON text naming a changed secret and its version (never a value). Each
storage backend carries notices its own way (:meth:`Storage.change_feed`): PostgreSQL with
``NOTIFY``/``LISTEN``, SQLite with a small ``sb_changes`` table that listeners poll. So a
write through any server node, any worker process, or the CLI on the same database reaches
every process's live-update streams.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

# NOTE: re-exported: a change event is a model value the SDK returns too.
from sealbox.model import ChangeEvent as ChangeEvent  # noqa: PLC0414

if TYPE_CHECKING:
    import threading


def encode_change(
    project: str, env: str, name: str, version: int | None, op: str, origin: str
) -> str:
    """A notice as the feeds carry it. ``origin`` names the storage object that published
    it, so a process can tell its own notices apart."""
    return json.dumps(
        {
            "project": project,
            "env": env,
            "name": name,
            "version": version,
            "op": op,
            "origin": origin,
        }
    )


def decode_change(payload: str) -> dict[str, Any] | None:
    """A notice's fields, or None when it is not one."""
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), str) for k in ("project", "env", "name")
    ):
        return None
    return data


class ChangeFeed(Protocol):
    """One process's connection to its vault's change notices."""

    #: Listen from startup (True) rather than only while someone subscribes.
    persistent: bool
    #: Marks the notices this feed publishes.
    origin: str

    def publish(self, payload: str) -> None:
        """Send a notice (:func:`encode_change`) to every listening process."""
        ...

    def position(self) -> int | None:
        """Where the notices stand now; :meth:`listen` from here misses none after it."""
        ...

    def listen(
        self,
        deliver: Callable[[str], None],
        keep_going: Callable[[], bool],
        ready: threading.Event,
        after: int | None = None,
    ) -> None:
        """Call ``deliver`` for each notice until ``keep_going()`` is false (blocking; run
        it in a thread). Sets ``ready`` once listening; raises when the database is lost
        (the caller retries)."""
        ...

    def close(self) -> None: ...
