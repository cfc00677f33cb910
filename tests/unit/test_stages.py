"""The core's stage rules (sealbox/stages.py): pure, so tested exhaustively here; the
contract suite (tests/unit/storage/test_stage_plans.py) shows storage persists them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealbox import stages
from sealbox.model import Stage
from sealbox.storage.rows import StagePlan

S = Stage


def test_a_write_shifts_current_to_previous_to_archived_and_revives() -> None:
    plan = stages.validate(stages.new_current())
    assert (plan.stage, plan.current, plan.revive) == ("current", True, True)
    before = {1: S.ARCHIVED, 2: S.PREVIOUS, 3: S.CURRENT}
    assert stages.apply(plan, before, 4) == {
        1: S.ARCHIVED,
        2: S.ARCHIVED,
        3: S.PREVIOUS,
        4: S.CURRENT,
    }


def test_a_write_keeps_pending_revoked_and_unstaged_versions() -> None:
    before = {1: None, 2: S.REVOKED, 3: S.CURRENT, 4: S.PENDING}
    after = stages.apply(stages.new_current(), before, 5)
    assert after == {1: None, 2: S.REVOKED, 3: S.PREVIOUS, 4: S.PENDING, 5: S.CURRENT}


def test_a_pending_version_moves_nothing_and_revives_nothing() -> None:
    plan = stages.validate(stages.new_pending())
    assert (plan.stage, plan.moves, plan.current, plan.revive) == ("pending", (), False, False)
    assert stages.apply(plan, {1: S.PREVIOUS, 2: S.CURRENT}, 3) == {
        1: S.PREVIOUS,
        2: S.CURRENT,
        3: S.PENDING,
    }


def test_plans_hold_plain_strings() -> None:
    """Storage receives text: no enum reaches a database driver (psycopg would send an
    Enum's name)."""
    for plan in (stages.new_current(), stages.new_pending()):
        values = [plan.stage, *(s for move in plan.moves for s in move)]
        assert all(type(v) is str for v in values)


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (StagePlan("live", (), False, False), "unknown stage"),
        (StagePlan("current", (("current", "gone"),), True, True), "unknown stage"),
        (
            StagePlan("current", (("current", "previous"), ("current", "archived")), True, True),
            "twice",
        ),
        (StagePlan("pending", (), True, False), "without the current stage"),
        (StagePlan("current", (("current", "previous"),), False, True), "without the current"),
        (StagePlan("current", (), True, True), "two current"),
        (StagePlan("pending", (("current", "previous"),), False, False), "without replacing"),
    ],
)
def test_validate_refuses_ambiguous_plans(plan: StagePlan, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        stages.validate(plan)


def test_apply_refuses_an_existing_version_number() -> None:
    with pytest.raises(ValueError, match="already exists"):
        stages.apply(stages.new_current(), {1: S.CURRENT}, 1)


_stage = st.one_of(st.none(), st.sampled_from(list(Stage)))


@given(st.lists(_stage, max_size=12), st.booleans())
def test_valid_plans_keep_at_most_one_current_version(
    history: list[Stage | None], pending: bool
) -> None:
    """From any history with at most one current version, the core's plans leave at
    most one, and a write leaves exactly one: the new version."""
    if sum(s is S.CURRENT for s in history) > 1:
        history = [None if s is S.CURRENT else s for s in history]
    before = dict(enumerate(history, start=1))
    plan = stages.new_pending() if pending else stages.new_current()
    after = stages.apply(plan, before, len(history) + 1)
    currents = [v for v, s in after.items() if s is S.CURRENT]
    assert len(currents) <= 1
    if not pending:
        assert currents == [len(history) + 1]
    # Versions the plan names no move for keep their stage.
    moved = {before_ for before_, _ in plan.moves}
    for version, stage in before.items():
        if stage is None or stage.value not in moved:
            assert after[version] == stage


# -- rotation's plans (issue 12) ------------------------------------------------------------------
def test_promotion_makes_pending_current_and_shifts_the_others() -> None:
    before = {1: S.ARCHIVED, 2: S.PREVIOUS, 3: S.CURRENT, 4: S.PENDING, 5: None, 6: S.REVOKED}
    assert stages.apply_restage(stages.promote(4), before) == {
        1: S.ARCHIVED,
        2: S.ARCHIVED,
        3: S.PREVIOUS,
        4: S.CURRENT,
        5: None,
        6: S.REVOKED,
    }
    with pytest.raises(ValueError, match="not pending"):
        stages.apply_restage(stages.promote(3), before)
    with pytest.raises(ValueError, match="no version 9"):
        stages.apply_restage(stages.promote(9), before)


def test_drop_and_revoke_touch_one_version() -> None:
    before = {1: S.PREVIOUS, 2: S.CURRENT, 3: S.PENDING}
    assert stages.apply_restage(stages.drop_pending(3), before) == {
        1: S.PREVIOUS,
        2: S.CURRENT,
        3: None,
    }
    with pytest.raises(ValueError):
        stages.apply_restage(stages.drop_pending(2), before)  # only a pending one is dropped
    assert stages.apply_restage(stages.revoke(1), before)[1] == S.REVOKED


@given(st.lists(st.sampled_from([*Stage, None]), min_size=1, max_size=8))
def test_a_promotion_leaves_exactly_one_current_version(
    found: list[Stage | None],
) -> None:
    before = dict(enumerate(found, 1))
    # As the core keeps them: at most one current and one pending version.
    for stage in (S.CURRENT, S.PENDING):
        for v in [v for v, s in before.items() if s == stage][1:]:
            before[v] = None
    pending = [v for v, s in before.items() if s == S.PENDING]
    if not pending:
        return
    after = stages.apply_restage(stages.promote(pending[0]), before)
    assert [v for v, s in after.items() if s == S.CURRENT] == pending
    assert S.PENDING not in after.values()
    had_current = S.CURRENT in before.values()
    assert (S.PREVIOUS in after.values()) == had_current
