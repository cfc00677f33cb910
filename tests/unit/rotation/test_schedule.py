"""When a scheduled rotation is due: windows (wrapping midnight too), start offsets and
the per-secret jitter; and the engine's due list and ``rotate_due`` on top of them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealbox.errors import InvalidInput
from sealbox.rotation_schedule import (
    MAX_JITTER,
    Window,
    check_offset,
    due_slot,
    jitter,
    parse_window,
)

T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_windows_parse_and_refuse_nonsense() -> None:
    assert parse_window("02:00-04:00") == Window(120, 240)
    assert parse_window(" 23:30-00:30 ") == Window(1410, 30)
    assert parse_window("") is None
    for bad in ("2-4", "02:00", "02:00-02:00", "24:00-01:00", "02:60-03:00", "aa:bb-cc:dd"):
        with pytest.raises(InvalidInput):
            parse_window(bad)
    assert parse_window("23:30-00:30").length == timedelta(hours=1)  # type: ignore[union-attr]
    assert str(Window(1410, 30)) == "23:30-00:30"


def test_offsets_must_fall_inside_the_window() -> None:
    check_offset(Window(120, 240), timedelta(minutes=119))
    with pytest.raises(InvalidInput, match="shorter than the window"):
        check_offset(Window(120, 240), timedelta(hours=2))
    with pytest.raises(InvalidInput, match="negative"):
        check_offset(None, timedelta(seconds=-1))


def test_the_due_moment_moves_into_the_next_window_after_its_offset() -> None:
    window = Window(120, 240)
    slot = due_slot(T, window, timedelta(minutes=10), "vault", "p/e/A")
    opens = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # noon is past today's window
    assert opens + timedelta(minutes=10) <= slot.due_at < opens + timedelta(minutes=15)
    assert slot.closes_at == datetime(2026, 3, 2, 4, 0, tzinfo=UTC)
    early = due_slot(datetime(2026, 3, 1, 1, 0, tzinfo=UTC), window, timedelta(0), "v", "p/e/A")
    assert early.due_at.date() == T.date()  # before today's window: today


def test_a_window_across_midnight() -> None:
    slot = due_slot(T, Window(1410, 30), timedelta(0), "v", "p/e/A")
    assert datetime(2026, 3, 1, 23, 30, tzinfo=UTC) <= slot.due_at
    assert slot.closes_at == datetime(2026, 3, 2, 0, 30, tzinfo=UTC)
    assert Window(1410, 30).contains(datetime(2026, 3, 2, 0, 10, tzinfo=UTC))
    assert not Window(1410, 30).contains(T)


def test_jitter_is_deterministic_and_differs_between_secrets() -> None:
    values = {jitter("vault", f"p/e/S{i}", MAX_JITTER) for i in range(50)}
    assert len(values) > 40  # 50 secrets configured alike do not share a second
    assert jitter("vault", "p/e/S1", MAX_JITTER) == jitter("vault", "p/e/S1", MAX_JITTER)
    assert jitter("vault", "p/e/S1", timedelta(0)) == timedelta(0)


@given(
    st.integers(0, 1439),
    st.integers(1, 1439),
    st.integers(0, 10_000_000),
)
def test_every_slot_is_inside_its_window_and_not_before_nominal(
    start: int, length: int, minutes: int
) -> None:
    window = Window(start, (start + length) % 1440)
    nominal = T + timedelta(minutes=minutes)
    slot = due_slot(nominal, window, timedelta(0), "v", "p/e/N")
    assert nominal <= slot.due_at < slot.closes_at
    assert slot.due_at - nominal < timedelta(days=1, minutes=1)
    assert window.contains(slot.due_at)
