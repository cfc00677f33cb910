"""The version stage rules: what a write does to a secret's versions.

The core decides them, storage persists them: a write hands storage a
:class:`~sealbox.storage.rows.StagePlan` (the new version's stage, how the stages of the
existing versions move, whether the new version becomes current, whether a soft-deleted
secret comes back), and storage applies it inside the write's transaction, under the
secret's row lock. A plan names moves by stage, not by version number, so the core
needs no read of the versions before the write, and storage applies it in one statement.

Rotation (issue 12) adds its plans: a pending version that is not current yet
(:func:`new_pending`), and the moves of existing versions a rotation makes as a
:class:`~sealbox.storage.rows.RestagePlan`: its promotion (:func:`promote`), the end of a
cancelled or rehearsed rotation (:func:`drop_pending`) and a revoked version
(:func:`revoke`).
"""

from __future__ import annotations

from collections.abc import Mapping

from sealbox.model import Stage
from sealbox.storage.rows import RestagePlan, StagePlan

__all__ = [
    "RestagePlan",
    "StagePlan",
    "apply",
    "apply_restage",
    "drop_pending",
    "new_current",
    "new_pending",
    "promote",
    "revoke",
    "validate",
]

#: How long a previous version stays readable by its stage after a promotion, for a
#: secret whose rotation settings do not say (0 there: not at all).
DEFAULT_GRACE_SECONDS = 86400

#: Stages a version may be read by (a revoked one by none, not even by its number).
READABLE_STAGES = frozenset({Stage.CURRENT, Stage.PENDING, Stage.PREVIOUS})


def new_current() -> StagePlan:
    """A write or a rollback: the new version is current, the current one becomes
    previous and the previous one archived; a soft-deleted secret comes back (as
    Vault KV v2 does). A pending version (being rotated in) stays pending."""
    return StagePlan(
        stage=Stage.CURRENT.value,
        moves=(
            (Stage.CURRENT.value, Stage.PREVIOUS.value),
            (Stage.PREVIOUS.value, Stage.ARCHIVED.value),
        ),
        current=True,
        revive=True,
    )


def new_pending() -> StagePlan:
    """A version being rotated in: pending, readable by its version number; the current
    version and every other stage stay as they are, and a deleted secret stays deleted."""
    return StagePlan(stage=Stage.PENDING.value, moves=(), current=False, revive=False)


def validate(plan: StagePlan) -> StagePlan:
    """``plan`` if it is one storage can persist unambiguously; else ValueError.

    Every stage is a :class:`~sealbox.model.Stage`; a stage is moved by one move at most;
    the new version is ``current`` exactly when it becomes the current one; and when it
    does, the version current before is moved off ``current`` (one current version).
    """
    stages = [plan.stage, *(s for move in plan.moves for s in move)]
    unknown = sorted({s for s in stages if s not in set(Stage)})
    if unknown:
        raise ValueError(f"unknown stage(s) {unknown} in a stage plan")
    befores = [before for before, _ in plan.moves]
    if len(befores) != len(set(befores)):
        raise ValueError("a stage plan moves one stage twice")
    if plan.current != (plan.stage == Stage.CURRENT):
        raise ValueError("a stage plan makes a version current without the current stage")
    moved = dict(plan.moves)
    if plan.current and moved.get(Stage.CURRENT.value, Stage.CURRENT.value) == Stage.CURRENT:
        raise ValueError("a stage plan leaves two current versions")
    if not plan.current and moved.get(Stage.CURRENT.value, Stage.CURRENT.value) != Stage.CURRENT:
        raise ValueError("a stage plan moves the current version without replacing it")
    return plan


def apply(
    plan: StagePlan, stages: Mapping[int, Stage | None], new_version: int
) -> dict[int, Stage | None]:
    """Every version's stage after a write of ``new_version`` under ``plan``, given the
    stages before it: the rule storage persists, as a pure function (tests and any
    backend without SQL use it)."""
    if new_version in stages:
        raise ValueError(f"version {new_version} already exists")
    moves = dict(plan.moves)
    after: dict[int, Stage | None] = {}
    for version, stage in stages.items():
        after[version] = Stage(moves[stage]) if stage is not None and stage in moves else stage
    after[new_version] = Stage(plan.stage)
    return after


def promote(version: int) -> RestagePlan:
    """The end of a rotation: pending version ``version`` becomes current, the current
    one previous (readable for the secret's grace window) and the previous one archived.
    Refused (Conflict) unless ``version`` is still pending: a cancelled rotation's version
    can never be promoted."""
    return RestagePlan(
        version=version,
        expect=Stage.PENDING.value,
        stage=Stage.CURRENT.value,
        moves=(
            (Stage.CURRENT.value, Stage.PREVIOUS.value),
            (Stage.PREVIOUS.value, Stage.ARCHIVED.value),
        ),
        current=True,
    )


def drop_pending(version: int) -> RestagePlan:
    """A cancelled or rehearsed rotation: its pending version loses its stage (never
    promoted, never read as pending; kept by its number, so a value an upstream system
    may still hold is not lost). Every other version stays as it is."""
    return RestagePlan(
        version=version, expect=Stage.PENDING.value, stage=None, moves=(), current=False
    )


def revoke(version: int) -> RestagePlan:
    """A version no one may read any more, by any stage or by its number (a leaked one).
    The core refuses to revoke the current or the pending version: rotate or cancel."""
    return RestagePlan(
        version=version, expect=None, stage=Stage.REVOKED.value, moves=(), current=False
    )


def apply_restage(plan: RestagePlan, stages: Mapping[int, Stage | None]) -> dict[int, Stage | None]:
    """Every version's stage after ``plan``: the rule storage persists, as a pure function."""
    if plan.version not in stages:
        raise ValueError(f"no version {plan.version}")
    if plan.expect is not None and stages[plan.version] != plan.expect:
        raise ValueError(f"version {plan.version} is not {plan.expect}")
    moves = dict(plan.moves)
    after: dict[int, Stage | None] = {}
    for version, stage in stages.items():
        if version == plan.version:
            after[version] = Stage(plan.stage) if plan.stage is not None else None
        elif stage is not None and stage in moves:
            after[version] = Stage(moves[stage])
        else:
            after[version] = stage
    return after
