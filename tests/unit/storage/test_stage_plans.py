"""SecretStore contract, stages: a write persists the core's stage plan as told.

The core decides (sealbox/stages.py); storage applies the plan under the secret's row
lock and decides nothing: not the new version's stage, not the moves, not whether the
write makes it current, not whether it revives a deleted secret.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from tests.unit.storage.contract import NOW, stage_map, write

from sealbox import stages
from sealbox.errors import NotFound
from sealbox.model import Stage
from sealbox.storage.interface import Storage
from sealbox.storage.rows import StagePlan

PENDING = stages.new_pending()


def _expect(before: dict[int, str | None], plan: StagePlan, new: int) -> dict[int, str | None]:
    after = stages.apply(plan, {v: Stage(s) if s else None for v, s in before.items()}, new)
    return {v: s.value if s else None for v, s in after.items()}


def test_each_write_persists_the_core_rule(store: Storage) -> None:
    for _ in range(4):
        before = stage_map(store) if store.list_secrets("payments", "dev") else {}
        version = write(store)
        assert stage_map(store) == _expect(before, stages.new_current(), version)
    assert stage_map(store) == {1: "archived", 2: "archived", 3: "previous", 4: "current"}


def test_a_pending_version_leaves_current_where_it_is(store: Storage) -> None:
    write(store)
    assert write(store, plan=PENDING) == 2
    assert stage_map(store) == {1: "current", 2: "pending"}
    assert store.get_secret("payments", "dev", "DB").current_version == 1
    current = store.read_version("payments", "dev", "DB", None)
    assert (current.version, current.ciphertext) == (1, b"ct-1")
    assert [r.version for r in store.read_current("payments", "dev")] == [1]
    pending = store.read_version("payments", "dev", "DB", 2)
    assert (pending.stage, pending.ciphertext) == ("pending", b"ct-2")
    # Compare-and-set is against the current version, which the pending one did not move.
    assert write(store, expected_version=1) == 3  # numbered after the pending one
    assert stage_map(store) == {1: "previous", 2: "pending", 3: "current"}
    assert store.check() == []


def test_a_secret_whose_only_version_is_pending(store: Storage) -> None:
    assert write(store, "NEW", plan=PENDING) == 1
    assert store.get_secret("payments", "dev", "NEW").current_version == 0
    with pytest.raises(NotFound, match="no version 0"):
        store.read_version("payments", "dev", "NEW", None)
    assert store.read_version("payments", "dev", "NEW", 1).stage == "pending"
    assert store.read_current("payments", "dev") == []
    assert store.check() == []  # no current version yet is not a dangling pointer
    assert write(store, "NEW") == 2
    assert stage_map(store, "NEW") == {1: "pending", 2: "current"}


def test_moves_apply_at_once_and_only_to_the_stages_named(store: Storage) -> None:
    write(store)
    write(store)
    write(store, plan=PENDING)  # {1: previous, 2: current, 3: pending}
    revoke_all = StagePlan(
        stage="current",
        moves=(("current", "revoked"), ("previous", "revoked"), ("revoked", "archived")),
        current=True,
        revive=True,
    )
    assert write(store, plan=revoke_all) == 4
    # "revoked" -> "archived" does not catch what this write revoked; pending is untouched.
    assert stage_map(store) == {1: "revoked", 2: "revoked", 3: "pending", 4: "current"}


def test_a_plan_without_moves_changes_no_other_version(store: Storage) -> None:
    write(store)
    write(store)
    keep = StagePlan(stage="current", moves=(), current=True, revive=True)
    write(store, plan=keep)
    assert stage_map(store) == {1: "previous", 2: "current", 3: "current"}  # as told
    assert store.get_secret("payments", "dev", "DB").current_version == 3


def test_revival_is_the_plans(store: Storage) -> None:
    write(store)
    store.soft_delete("payments", "dev", "DB", NOW)
    write(store, plan=PENDING)  # new_pending does not revive
    assert store.get_secret("payments", "dev", "DB").deleted_at == NOW
    assert store.list_secrets("payments", "dev") == []
    no_revive = stages.new_current()._replace(revive=False)
    write(store, plan=no_revive)
    deleted = store.get_secret("payments", "dev", "DB")
    assert (deleted.deleted_at, deleted.current_version) == (NOW, 3)
    with pytest.raises(NotFound, match="deleted"):
        store.read_version("payments", "dev", "DB", None)
    write(store)  # the core's write revives, as Vault KV v2 does
    revived = store.get_secret("payments", "dev", "DB")
    assert (revived.deleted_at, revived.current_version) == (None, 4)
    assert store.read_version("payments", "dev", "DB", None).ciphertext == b"ct-4"


class _Counting:
    """A transaction handle that counts the statements sent through it."""

    def __init__(self, inner: Any, sent: list[str]) -> None:
        self._inner, self._sent = inner, sent

    def execute(self, sql: str, params: Any = ()) -> Any:
        self._sent.append(sql)
        return self._inner.execute(sql, params)

    def executemany(self, sql: str, params: Any) -> Any:
        self._sent.append(sql)
        return self._inner.executemany(sql, params)


def _count_statements(store: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    sent: list[str] = []
    for name in ("_tx", "_single"):
        inner = getattr(store, name)

        def counted(*args: Any, _inner: Any = inner, **kwargs: Any) -> Any:
            @contextmanager
            def cm() -> Iterator[_Counting]:
                with _inner(*args, **kwargs) as tx:
                    yield _Counting(tx, sent)

            return cm()

        monkeypatch.setattr(store, name, counted)
    return sent


@pytest.mark.parametrize("plan", [stages.new_current(), PENDING], ids=["current", "pending"])
def test_a_write_costs_six_statements(
    store: Storage, plan: StagePlan, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write path is on the benchmarks' hot path (a round trip each on PostgreSQL):
    scope check, create-or-nothing, lock, stage moves (one statement for all), secret
    row, version row. Before issue 11 it was seven (two stage updates)."""
    write(store)  # the schema check is paid once per connection
    sent = _count_statements(store, monkeypatch)
    write(store, plan=plan)
    assert len(sent) == (6 if plan.moves else 5), sent
