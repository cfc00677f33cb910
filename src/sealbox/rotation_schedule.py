"""When a scheduled rotation is due: pure functions of a secret's settings and the clock.

A secret with ``rotate_every_days`` in its metadata and a rotation method falls due that
many days after its last rotation (or its current version's creation, whichever is
later). The due moment is then moved into the secret's **window** (``"02:00-04:00"``,
UTC; a window may wrap midnight) at its **start offset** after the window opens, plus a
small **jitter** derived from the vault and the secret's path: deterministic (the same
secret is due at the same second on every node and every run), different between
secrets, so two secrets configured alike do not rotate in the same second by accident.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, time, timedelta
from typing import NamedTuple

from sealbox.errors import InvalidInput

#: The most a jitter moves a due moment (less when the window leaves less room).
MAX_JITTER = timedelta(minutes=5)
#: Without a window, a rotation this late is overdue.
OVERDUE_WITHOUT_WINDOW = timedelta(days=1)


class Window(NamedTuple):
    """A daily time window in UTC, in minutes after midnight (``end`` may be before
    ``start``: the window wraps midnight)."""

    start: int
    end: int

    @property
    def length(self) -> timedelta:
        return timedelta(minutes=(self.end - self.start) % 1440)

    def opens_on(self, day: datetime) -> datetime:
        """When the window opens on ``day``'s date."""
        midnight = datetime.combine(day.date(), time(0), UTC)
        return midnight + timedelta(minutes=self.start)

    def contains(self, moment: datetime) -> bool:
        minute = moment.astimezone(UTC).hour * 60 + moment.astimezone(UTC).minute
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    def __str__(self) -> str:
        return (
            f"{self.start // 60:02d}:{self.start % 60:02d}-{self.end // 60:02d}:{self.end % 60:02d}"
        )


def _minutes(text: str) -> int:
    hours, sep, minutes = text.partition(":")
    if (
        not sep
        or not (hours.isdigit() and minutes.isdigit())
        or len(minutes) != 2
        or not 1 <= len(hours) <= 2
    ):
        raise ValueError(text)
    h, m = int(hours), int(minutes)
    if h > 23 or m > 59:
        raise ValueError(text)
    return h * 60 + m


def parse_window(text: str) -> Window | None:
    """``"HH:MM-HH:MM"`` (UTC) as a :class:`Window`; "" is no window (any time)."""
    text = text.strip()
    if not text:
        return None
    start, sep, end = text.partition("-")
    try:
        if not sep:
            raise ValueError(text)
        window = Window(_minutes(start.strip()), _minutes(end.strip()))
    except ValueError:
        raise InvalidInput(
            f"invalid window {text[:40]!r}: use HH:MM-HH:MM in UTC, e.g. 02:00-04:00"
        ) from None
    if window.start == window.end:
        raise InvalidInput("a window must not start and end at the same minute")
    return window


def check_offset(window: Window | None, offset: timedelta) -> None:
    """Refuse a start offset outside the window (or, without one, over a day)."""
    if offset < timedelta(0):
        raise InvalidInput("the start offset must not be negative")
    limit = window.length if window is not None else timedelta(days=1)
    if offset >= limit:
        raise InvalidInput(
            f"the start offset ({offset}) must be shorter than "
            + (f"the window {window} ({limit})" if window is not None else "a day")
        )


def jitter(vault_id: str, path: str, room: timedelta) -> timedelta:
    """A per-secret delay in ``[0, min(room, MAX_JITTER))`` whole seconds, the same every
    time for the same vault and secret."""
    span = int(min(room, MAX_JITTER).total_seconds())
    if span <= 0:
        return timedelta(0)
    digest = hashlib.sha256(f"{vault_id}\0{path}".encode()).digest()
    return timedelta(seconds=int.from_bytes(digest[:8], "big") % span)


class Slot(NamedTuple):
    """When a rotation is due and until when it may start in its window."""

    due_at: datetime
    closes_at: datetime


def due_slot(
    nominal: datetime,
    window: Window | None,
    offset: timedelta,
    vault_id: str,
    path: str,
) -> Slot:
    """The first start moment at or after ``nominal`` the window, offset and jitter allow."""
    if window is None:
        due = nominal + offset + jitter(vault_id, path, MAX_JITTER)
        return Slot(due, due + OVERDUE_WITHOUT_WINDOW)
    delay = offset + jitter(vault_id, path, window.length - offset)
    opens = window.opens_on(nominal) - timedelta(days=1)
    while opens + delay < nominal:
        opens += timedelta(days=1)
    return Slot(opens + delay, opens + window.length)
