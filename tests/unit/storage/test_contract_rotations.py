"""RotationStore contract: rotation settings, the record of each rotation (one
unfinished per secret, owned by one process), a rotation's one version, stage moves and
reads by stage — on every backend."""

from __future__ import annotations

import pytest
from tests.unit.storage.contract import NOW, sealed, stage_map, write

from sealbox import stages
from sealbox.errors import Conflict, NotFound
from sealbox.storage.interface import Storage
from sealbox.storage.rows import RotationConfigRow, RotationRow

LATER = "2026-01-01T01:00:00+00:00"


def config(name: str = "DB", method: str = "random") -> RotationConfigRow:
    return RotationConfigRow(
        "payments", "dev", name, method, '{"length": "40"}', 3600, "02:00-04:00", 600, "", NOW, "me"
    )


def rotation(rid: str = "rot_000001", name: str = "DB", owner: str = "node-a") -> RotationRow:
    return RotationRow(
        rid, "payments", "dev", name, "random", "running", "create", "", False, 1, None, NOW, NOW,
        None, "", "{}", "[]", "me", owner, LATER,
    )  # fmt: skip


def test_config_round_trip_and_replace(store: Storage) -> None:
    write(store)
    assert store.get_rotation_config("payments", "dev", "DB") is None
    store.put_rotation_config(config())
    assert store.get_rotation_config("payments", "dev", "DB") == config()
    store.put_rotation_config(config(method="file"))
    assert store.list_rotation_configs() == [config(method="file")]
    with pytest.raises(NotFound):
        store.put_rotation_config(config("MISSING"))
    with pytest.raises(ValueError):
        store.put_rotation_config(config()._replace(options="{not json"))


def test_one_unfinished_rotation_per_secret_the_second_names_the_first(store: Storage) -> None:
    write(store)
    write(store, "OTHER")
    store.start_rotation(rotation())
    with pytest.raises(Conflict, match="unfinished rotation rot_000001"):
        store.start_rotation(rotation("rot_000002"))
    store.start_rotation(rotation("rot_000003", "OTHER"))  # another secret: fine
    with pytest.raises(Conflict):
        store.start_rotation(rotation("rot_000001", "OTHER"))  # an id is unique
    done = rotation()._replace(state="succeeded", finished_at=LATER)
    store.save_rotation(done, expect_owner="node-a")
    store.start_rotation(rotation("rot_000002"))  # the first finished: a new one starts
    assert [r.id for r in store.list_rotations(name="DB")] == ["rot_000002", "rot_000001"]
    assert [r.id for r in store.list_rotations(open_only=True, name="DB")] == ["rot_000002"]
    assert store.get_rotation("rot_000001") == done
    assert store.get_rotation("rot_nope00") is None


def test_a_rotation_is_saved_only_by_its_owner_and_claimed_once(store: Storage) -> None:
    write(store)
    store.start_rotation(rotation())
    moved = rotation()._replace(step="set", phase="started", pending_version=2, tested="")
    with pytest.raises(Conflict, match="taken over"):
        store.save_rotation(moved, expect_owner="node-b")
    store.save_rotation(moved, expect_owner="node-a")
    assert store.get_rotation("rot_000001") == moved
    assert not store.claim_rotation("rot_000001", "node-c", LATER, expect_owner="node-b")
    assert store.claim_rotation("rot_000001", "node-b", LATER, expect_owner="node-a")
    assert not store.claim_rotation("rot_000001", "node-c", LATER, expect_owner="node-a")
    with pytest.raises(Conflict):
        store.save_rotation(moved, expect_owner="node-a")  # it lost the rotation
    finished = moved._replace(owner="node-b", state="cancelled", finished_at=LATER)
    store.save_rotation(finished, expect_owner="node-b")
    with pytest.raises(Conflict):
        store.save_rotation(finished, expect_owner="node-b")  # finished is final
    assert not store.claim_rotation("rot_000001", "node-c", LATER, expect_owner="node-b")


def test_a_rotation_writes_one_version_whatever_the_retries(store: Storage) -> None:
    write(store)
    calls: list[int] = []

    def seal(version: int):  # type: ignore[no-untyped-def]
        calls.append(version)
        return sealed(version)

    for _ in range(3):
        assert (
            store.write_version(
                "payments",
                "dev",
                "DB",
                seal,
                now=NOW,
                actor="t",
                plan=stages.new_pending(),
                rotation_id="rot_000001",
            )
            == 2
        )
    assert calls == [2]
    assert store.version_for_rotation("payments", "dev", "DB", "rot_000001") == 2
    assert store.version_for_rotation("payments", "dev", "DB", "rot_000002") is None
    assert store.read_version("payments", "dev", "DB", 2).rotation_id == "rot_000001"
    assert stage_map(store) == {1: "current", 2: "pending"}


def test_promotion_moves_stages_and_the_current_version(store: Storage) -> None:
    write(store)
    write(store)
    write(store, plan=stages.new_pending())
    assert stage_map(store) == {1: "previous", 2: "current", 3: "pending"}
    assert store.read_stage("payments", "dev", "DB", "pending").version == 3
    store.restage("payments", "dev", "DB", stages.promote(3), LATER)
    assert stage_map(store) == {1: "archived", 2: "previous", 3: "current"}
    assert store.get_secret("payments", "dev", "DB").current_version == 3
    assert store.read_version("payments", "dev", "DB", None).version == 3
    previous = store.read_stage("payments", "dev", "DB", "previous")
    assert (previous.version, previous.staged_at, previous.ciphertext) == (2, LATER, b"ct-2")
    with pytest.raises(Conflict, match="not pending"):
        store.restage("payments", "dev", "DB", stages.promote(3), LATER)  # twice: refused
    with pytest.raises(NotFound, match="no pending version"):
        store.read_stage("payments", "dev", "DB", "pending")
    assert store.check() == []


def test_drop_and_revoke_change_one_version_only(store: Storage) -> None:
    write(store)
    write(store, plan=stages.new_pending())
    store.restage("payments", "dev", "DB", stages.drop_pending(2), LATER)
    assert stage_map(store) == {1: "current", 2: None}
    with pytest.raises(Conflict):
        store.restage("payments", "dev", "DB", stages.promote(2), LATER)
    write(store)
    store.restage("payments", "dev", "DB", stages.revoke(1), LATER)
    assert stage_map(store) == {1: "revoked", 2: None, 3: "current"}
    with pytest.raises(NotFound):
        store.restage("payments", "dev", "DB", stages.revoke(9), LATER)


def test_purge_forgets_rotations(store: Storage) -> None:
    write(store)
    store.put_rotation_config(config())
    store.start_rotation(rotation())
    store.purge("payments", "dev", "DB")
    assert store.list_rotation_configs() == []
    assert store.list_rotations() == []
