"""The DocumentStore contract (schema 14), on every backend: a KV document's versions are
numbered by compare-and-set, keep their deletion and destruction state, are pruned from
the oldest, and destroying a secret version spares what a live secret still stands on."""

from __future__ import annotations

import json

import pytest
from tests.unit.storage.contract import NOW, write

from sealbox.errors import Conflict
from sealbox.storage.interface import Storage
from sealbox.storage.rows import DocumentRow, DocumentVersionRow

LATER = "2026-01-01T01:00:00+00:00"


def doc(**kw: object) -> DocumentRow:
    row = DocumentRow("payments", "dev", 0, 0, "{}", "{}", NOW, NOW)
    return row._replace(**kw)  # type: ignore[arg-type]


def version(n: int, members: dict[str, object] | None = None) -> DocumentVersionRow:
    return DocumentVersionRow(n, NOW, None, False, json.dumps(members or {"DB": [n, "text", NOW]}))


def test_versions_are_appended_by_compare_and_set(store: Storage) -> None:
    assert store.get_document("payments", "dev") is None
    store.add_document_version(doc(), version(1))
    store.add_document_version(doc(), version(2))
    with pytest.raises(Conflict):
        store.add_document_version(doc(), version(2))
    with pytest.raises(Conflict):
        store.add_document_version(doc(), version(4))
    found = store.get_document("payments", "dev")
    assert found is not None
    row, versions = found
    assert (row.current_version, row.oldest_version) == (2, 1)
    assert [v.version for v in versions] == [1, 2]
    assert versions[0] == version(1)


def test_settings_written_before_any_version_make_the_record(store: Storage) -> None:
    store.put_document(doc(settings='{"max_versions": 3}', custom='{"managed-by": "eso"}'))
    row, versions = store.get_document("payments", "dev")  # type: ignore[misc]
    assert (row.current_version, versions) == (0, [])
    store.add_document_version(doc(), version(1))
    store.put_document(doc(settings="{}", custom="{}", updated_at=LATER))
    row, versions = store.get_document("payments", "dev")  # type: ignore[misc]
    assert (row.current_version, row.oldest_version, row.settings) == (1, 1, "{}")
    assert row.updated_at == LATER and len(versions) == 1


def test_deletion_destruction_pruning_and_removal(store: Storage) -> None:
    for n in (1, 2, 3):
        store.add_document_version(doc(), version(n))
    store.update_document_versions(
        "payments",
        "dev",
        [version(1)._replace(deleted_at=LATER), version(2)._replace(destroyed=True)],
    )
    _, versions = store.get_document("payments", "dev")  # type: ignore[misc]
    assert [(v.deleted_at, v.destroyed) for v in versions] == [
        (LATER, False),
        (None, True),
        (None, False),
    ]
    store.prune_document_versions("payments", "dev", 3)
    row, versions = store.get_document("payments", "dev")  # type: ignore[misc]
    assert (row.oldest_version, [v.version for v in versions]) == (3, [3])
    store.delete_document("payments", "dev")
    assert store.get_document("payments", "dev") is None


def test_destroying_secret_versions_spares_the_live_current_one(store: Storage) -> None:
    for _ in range(3):
        write(store)
    assert store.destroy_secret_versions("payments", "dev", "DB", [1, 3]) == 1
    assert [v.version for v in store.history("payments", "dev", "DB")] == [2, 3]
    store.soft_delete("payments", "dev", "DB", NOW)
    assert store.destroy_secret_versions("payments", "dev", "DB", [3]) == 1
    assert store.destroy_secret_versions("payments", "dev", "NOPE", [1]) == 0
