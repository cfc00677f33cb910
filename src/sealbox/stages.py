"""The version stage rules: what a write does to a secret's versions.

The core decides them, storage persists them: a write hands storage a
:class:`~sealbox.storage.rows.StagePlan` (the new version's stage, how the stages of the
existing versions move, whether the new version becomes current, whether a soft-deleted
secret comes back), and storage applies it inside the write's transaction, under the
secret's row lock. A plan names moves by stage, not by version number, so the core
needs no read of the versions before the write, and storage applies it in one statement.

Rotation (issue 12) adds its plans here: a pending version that is not current yet, its
promotion, revoked versions.
"""

from __future__ import annotations

from collections.abc import Mapping

from sealbox.model import Stage
from sealbox.storage.rows import StagePlan

__all__ = ["StagePlan", "apply", "new_current", "new_pending", "validate"]


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
