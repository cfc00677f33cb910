"""KeyStore contract: KEKs, key providers, each KEK's wrappings, the data keys' re-wrap."""

from __future__ import annotations

import pytest
from tests.unit.storage.contract import KEK, NOW, PROVIDER, WRAPPING, write

from sealbox.errors import AlreadyExists, Conflict, NotFound
from sealbox.storage.interface import Storage
from sealbox.storage.rows import KekRecord, KekWrapping, KeyProviderRow, SessionRow

HSM = KeyProviderRow("hsm", "pkcs11", '{"token_label": "t"}', 1, NOW)


def _hsm_wrap(kek_id: str = "kek1") -> KekWrapping:
    return KekWrapping(kek_id, "hsm", b"hsm-wrapped-" + kek_id.encode(), "label:k", NOW)


def test_keys_as_initialised(store: Storage) -> None:
    assert store.list_keks() == [KEK]
    assert store.list_key_providers() == [PROVIDER]
    assert store.list_kek_wrappings() == [WRAPPING]


def test_add_provider_with_its_wrappings(store: Storage) -> None:
    events: list[str] = []
    store.add_key_provider(HSM, [_hsm_wrap()], audit=lambda: events.append("added"))
    assert [p.name for p in store.list_key_providers()] == ["local", "hsm"]
    assert {(w.kek_id, w.provider) for w in store.list_kek_wrappings()} == {
        ("kek1", "local"),
        ("kek1", "hsm"),
    }
    assert events == ["added"]


def test_add_provider_refuses_a_duplicate_name_and_missing_wrappings(store: Storage) -> None:
    with pytest.raises(AlreadyExists):
        store.add_key_provider(PROVIDER._replace(position=3), [WRAPPING])
    with pytest.raises(Conflict):
        store.add_key_provider(HSM, [])  # would not wrap kek1
    assert [p.name for p in store.list_key_providers()] == ["local"]


def test_remove_refuses_the_only_provider_of_a_kek(store: Storage) -> None:
    with pytest.raises(Conflict) as err:
        store.remove_key_provider("local")
    assert "only one" in err.value.message
    assert store.list_kek_wrappings() == [WRAPPING]
    store.add_key_provider(HSM, [_hsm_wrap()])
    store.put_session(SessionRow("s1", b"w", NOW, "2027-01-01T00:00:00+00:00", "local"))
    store.remove_key_provider("local")
    assert [p.name for p in store.list_key_providers()] == ["hsm"]
    assert store.get_session("s1") is None  # it held the removed provider's master key
    with pytest.raises(NotFound):
        store.remove_key_provider("local")


def test_update_provider_replaces_config_and_wrappings_and_ends_its_sessions(
    store: Storage,
) -> None:
    store.put_session(SessionRow("s1", b"w", NOW, "2027-01-01T00:00:00+00:00"))
    new = WRAPPING._replace(wrapped=b"rewrapped")
    store.update_key_provider("local", config='{"method": "x"}', wrappings=[new], end_sessions=True)
    assert store.list_kek_wrappings() == [new]
    assert store.list_key_providers()[0].config == '{"method": "x"}'
    assert store.get_session("s1") is None
    with pytest.raises(Conflict):
        store.update_key_provider("local", wrappings=[_hsm_wrap()])
    with pytest.raises(NotFound):
        store.update_key_provider("nope", config="{}")


def test_add_kek_needs_every_providers_wrapping_and_becomes_active(store: Storage) -> None:
    store.add_key_provider(HSM, [_hsm_wrap()])
    kek2 = KekRecord("kek2", "2026-02-01T00:00:00+00:00", True)
    local2 = KekWrapping("kek2", "local", b"l2", "", NOW)
    with pytest.raises(Conflict):
        store.add_kek(kek2, [local2])  # hsm would not hold it
    store.add_kek(kek2, [local2, _hsm_wrap("kek2")])
    assert [(k.kek_id, k.active) for k in store.list_keks()] == [("kek1", False), ("kek2", True)]


def test_rewrap_versions_moves_data_keys_and_retire_waits_for_it(store: Storage) -> None:
    write(store)
    write(store)
    write(store, "API")
    kek2 = KekRecord("kek2", "2026-02-01T00:00:00+00:00", True)
    store.add_kek(kek2, [KekWrapping("kek2", "local", b"l2", "", NOW)])
    assert store.count_versions_by_kek() == {"kek1": 3}
    with pytest.raises(Conflict):
        store.delete_kek("kek1")  # still wraps data keys
    with pytest.raises(Conflict):
        store.delete_kek("kek2")  # the active one
    first = store.versions_to_rewrap("kek2", limit=2)
    assert [(r.name, r.version) for r in first] == [("DB", 1), ("DB", 2)]
    rest = store.versions_to_rewrap("kek2", after=(first[-1].secret_id, first[-1].version))
    assert [(r.name, r.version) for r in rest] == [("API", 1)]
    counted: list[int] = []
    done = store.rewrap_versions(
        [
            (r.secret_id, r.version, r.kek_id, "kek2", b"new-" + r.name.encode())
            for r in first + rest
        ],
        audit=counted.append,
    )
    assert done == 3 and counted == [3]
    # A row already re-wrapped (by another process) is left alone.
    assert store.rewrap_versions([(first[0].secret_id, 1, "kek1", "kek2", b"late")]) == 0
    assert store.versions_to_rewrap("kek2") == []
    assert store.count_versions_by_kek() == {"kek2": 3}
    store.delete_kek("kek1")
    assert [k.kek_id for k in store.list_keks()] == ["kek2"]
    assert {w.kek_id for w in store.list_kek_wrappings()} == {"kek2"}
    assert {r.wrapped_key for r in store.versions_to_rewrap("none")} == {b"new-DB", b"new-API"}


def test_rewrap_of_a_batch_counts_only_the_rows_it_changed(store: Storage) -> None:
    for name in ("A", "B", "C", "D"):
        write(store, name)
    kek2 = KekRecord("kek2", "2026-02-01T00:00:00+00:00", True)
    store.add_kek(kek2, [KekWrapping("kek2", "local", b"l2", "", NOW)])
    rows = store.versions_to_rewrap("kek2")
    assert store.rewrap_versions([(r.secret_id, 1, "kek1", "kek2", b"x") for r in rows[:2]]) == 2
    # A batch of two stale rows (re-wrapped meanwhile), two fresh ones and a missing one.
    mixed = [(r.secret_id, 1, "kek1", "kek2", b"y-" + r.name.encode()) for r in rows]
    mixed.append((999_999, 1, "kek1", "kek2", b"none"))
    counted: list[int] = []
    assert store.rewrap_versions(mixed, audit=counted.append) == 2
    assert counted == [2]
    assert store.rewrap_versions([]) == 0
    assert store.count_versions_by_kek() == {"kek2": 4}
    keys = {r.name: r.wrapped_key for r in store.versions_to_rewrap("none")}
    assert keys == {"A": b"x", "B": b"x", "C": b"y-C", "D": b"y-D"}


def test_sessions_name_their_provider(store: Storage) -> None:
    store.put_session(SessionRow("s1", b"w", NOW, "2027-01-01T00:00:00+00:00", "local"))
    found = store.get_session("s1")
    assert found is not None and found.provider == "local"


def test_set_settings_replaces(store: Storage) -> None:
    store.set_settings({"audit_key": "new"})
    assert store.get_setting("audit_key") == "new"


def _kms_sealed(provider: str) -> object:
    """A SealFor writing a version whose data key ``provider`` wraps itself."""
    from sealbox.storage.rows import SealedRow

    def seal_for(version: int) -> SealedRow:
        return SealedRow(f"ct-{version}".encode(), b"kms-wk", f"kms:{provider}")

    return seal_for


def test_remove_refuses_a_provider_that_wraps_data_keys_itself(store: Storage) -> None:
    from sealbox import stages

    store.add_key_provider(HSM, [_hsm_wrap()])
    store.write_version("payments", "dev", "CRIT", _kms_sealed("hsm"),  # type: ignore[arg-type]
                        now=NOW, actor="t", plan=stages.new_current())  # fmt: skip
    with pytest.raises(Conflict) as err:
        store.remove_key_provider("hsm")
    assert err.value.hint_key == "kms_per_version_rewrap"
    assert "1 secret version" in err.value.message
    assert [p.name for p in store.list_key_providers()] == ["local", "hsm"]
    assert {w.provider for w in store.list_kek_wrappings()} == {"local", "hsm"}  # rolled back
    # Once re-wrapped elsewhere, the provider may go.
    row = store.per_version_to_rewrap("kms:local")[0]
    assert (row.name, row.kek_id, row.wrapped_key) == ("CRIT", "kms:hsm", b"kms-wk")
    store.rewrap_versions([(row.secret_id, row.version, "kms:hsm", "kms:local", b"w2")])
    store.remove_key_provider("hsm")
    assert [p.name for p in store.list_key_providers()] == ["local"]


def test_per_version_to_rewrap_lists_only_kms_wrapped_versions(store: Storage) -> None:
    from sealbox import stages

    write(store, "DB")  # KEK-wrapped (kek1): never listed
    for name in ("A", "B", "C"):
        store.write_version("payments", "dev", name, _kms_sealed("hsm"),  # type: ignore[arg-type]
                            now=NOW, actor="t", plan=stages.new_current())  # fmt: skip
    first = store.per_version_to_rewrap("kms:other", limit=2)
    assert [r.name for r in first] == ["A", "B"]
    rest = store.per_version_to_rewrap("kms:other", after=(first[-1].secret_id, 1))
    assert [r.name for r in rest] == ["C"]
    assert store.per_version_to_rewrap("kms:hsm") == []  # already under the target
