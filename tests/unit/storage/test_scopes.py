"""ScopeStore contract: projects and environments, the scopes secrets live in."""

from __future__ import annotations

import pytest
from tests.unit.storage.contract import NOW, sealed, write

from sealbox import stages
from sealbox.errors import AlreadyExists, NotFound
from sealbox.storage.interface import Storage


def test_projects_and_envs(store: Storage) -> None:
    assert store.list_projects() == ["payments"]
    assert store.list_envs("payments") == ["dev", "prod"]
    with pytest.raises(AlreadyExists):
        store.create_project("payments", NOW)
    with pytest.raises(AlreadyExists):
        store.create_env("payments", "dev", NOW)
    with pytest.raises(NotFound):
        store.create_env("nope", "dev", NOW)
    with pytest.raises(NotFound):
        store.list_envs("nope")


def test_environments_are_separate(store: Storage) -> None:
    write(store)
    with pytest.raises(NotFound):
        store.read_version("payments", "prod", "DB", None)
    assert store.read_current("payments", "prod") == []
    assert [r.name for r in store.read_current("payments", "dev")] == ["DB"]


def test_missing_scope(store: Storage) -> None:
    with pytest.raises(NotFound, match="environment"):
        store.write_version(
            "payments", "qa", "DB", sealed, now=NOW, actor="t", plan=stages.new_current()
        )
    with pytest.raises(NotFound, match="project"):
        store.read_current("nope", "dev")
