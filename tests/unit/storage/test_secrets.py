"""SecretStore contract: versions, compare-and-set, deletion, metadata, concurrency.

The stages a write persists are the core's (tests/unit/storage/test_stage_plans.py).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from tests.unit.storage.contract import NOW, reopen, write

from sealbox import stages
from sealbox.errors import Conflict, NotFound
from sealbox.storage.interface import Storage
from sealbox.storage.rows import SealedRow


def test_versions_are_monotonic_and_immutable(store: Storage) -> None:
    assert [write(store) for _ in range(3)] == [1, 2, 3]
    row = store.read_version("payments", "dev", "DB", None)
    assert (row.version, row.ciphertext, row.stage) == (3, b"ct-3", "current")
    assert store.read_version("payments", "dev", "DB", 1).ciphertext == b"ct-1"
    stages_ = [(v.version, v.stage) for v in store.history("payments", "dev", "DB")]
    assert stages_ == [(1, "archived"), (2, "previous"), (3, "current")]
    with pytest.raises(NotFound):
        store.read_version("payments", "dev", "DB", 9)


def test_compare_and_set(store: Storage) -> None:
    assert write(store, expected_version=0) == 1
    with pytest.raises(Conflict):
        write(store, expected_version=0)
    with pytest.raises(Conflict):
        write(store, expected_version=5)
    assert write(store, expected_version=1) == 2


def test_failed_seal_writes_nothing(store: Storage) -> None:
    def boom(version: int) -> SealedRow:
        raise RuntimeError("seal failed")

    with pytest.raises(RuntimeError):
        store.write_version(
            "payments", "dev", "DB", boom, now=NOW, actor="t", plan=stages.new_current()
        )
    with pytest.raises(NotFound):
        store.get_secret("payments", "dev", "DB")


def test_soft_delete_undelete_purge(store: Storage) -> None:
    write(store)
    write(store)
    store.soft_delete("payments", "dev", "DB", NOW)
    with pytest.raises(NotFound, match="deleted"):
        store.read_version("payments", "dev", "DB", None)
    assert store.list_secrets("payments", "dev") == []
    assert [s.name for s in store.list_secrets("payments", "dev", include_deleted=True)] == ["DB"]
    assert store.read_current("payments", "dev") == []
    store.undelete("payments", "dev", "DB", NOW)
    assert store.read_version("payments", "dev", "DB", None).version == 2
    with pytest.raises(Conflict):
        store.undelete("payments", "dev", "DB", NOW)
    assert store.purge("payments", "dev", "DB") == 2
    with pytest.raises(NotFound):
        store.history("payments", "dev", "DB")


def test_metadata(store: Storage) -> None:
    write(store)
    store.set_secret_meta("payments", "dev", "DB", '{"owner": "team"}', NOW)
    assert store.get_secret("payments", "dev", "DB").meta_json == '{"owner": "team"}'
    with pytest.raises(ValueError):
        store.set_secret_meta("payments", "dev", "DB", "not json", NOW)


def test_iter_versions(store: Storage) -> None:
    write(store, "A")
    write(store, "B")
    write(store, "B")
    assert [(v.name, v.version) for v in store.iter_versions()] == [("A", 1), ("B", 1), ("B", 2)]
    assert store.version_refs() == [
        ("payments/dev/A", 1),
        ("payments/dev/B", 1),
        ("payments/dev/B", 2),
    ]


def test_concurrent_writers_lose_nothing(
    kind: str, store: Storage, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Several connections writing one secret: every write gets its own version."""
    writers = 4
    per_writer = 10
    errors: list[BaseException] = []

    def worker() -> None:
        own = reopen(kind, tmp_path, request)
        try:
            for _ in range(per_writer):
                write(own, "RACE")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=worker) for _ in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    versions = [v.version for v in store.history("payments", "dev", "RACE")]
    assert versions == list(range(1, writers * per_writer + 1))
