"""Lifecycle contract: initialising, migrating, checking; SQLite's durability and serving."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.unit.storage.contract import KEK, KEYS, NOW, stage_map, undo_after, write
from tests.unit.storage.test_accounts import identity, token

from sealbox import stages
from sealbox.errors import AlreadyExists, NotInitialised
from sealbox.storage.interface import Storage
from sealbox.storage.rows import SCHEMA_VERSION, AuditRow, IdentityRow


def test_uninitialised(raw: Storage) -> None:
    assert not raw.is_initialised()
    with pytest.raises(NotInitialised):
        raw.get_setting("vault_id")


def test_initialise_once(store: Storage) -> None:
    assert store.is_initialised()
    assert store.get_setting("vault_id") == "vault-1"
    assert store.settings()["unlock_method"] == "keyfile"
    assert store.list_keks() == [KEK]
    with pytest.raises(AlreadyExists):
        store.initialise("vault-2", {}, KEK, NOW, **KEYS)


def test_check_finds_a_missing_current_version(store: Storage) -> None:
    write(store)
    assert store.check() == []
    with store._tx(write=True) as tx:  # type: ignore[attr-defined]
        tx.execute("DELETE FROM sb_versions")
    assert store.check() == ["1 secret(s) point at a missing current version"]


def _downgrade_to_8(raw: Storage) -> None:
    with raw._tx(write=True) as tx:  # type: ignore[attr-defined]
        undo_after(tx, 8)
        tx.execute("UPDATE sb_settings SET value = '8' WHERE key = 'schema_version'")
    raw._schema_ok = False  # type: ignore[attr-defined]


def test_schema_13_migrates_from_12(store: Storage) -> None:
    """A version 12 vault's identities get empty login settings (sealbox's defaults)."""
    store.create_identity(IdentityRow("id-r", "robot", "machine", None, "rid", "[]", NOW, False))
    with store._tx(write=True) as tx:  # type: ignore[attr-defined]
        undo_after(tx, 12)
        tx.execute("UPDATE sb_settings SET value = '12' WHERE key = 'schema_version'")
    store._schema_ok = False  # type: ignore[attr-defined]
    assert store.migrate() == SCHEMA_VERSION - 12
    row = store.get_identity(role_id="rid")
    assert row is not None and (row.name, row.settings) == ("robot", "{}")


def test_schema_10_migrates_from_9(store: Storage) -> None:
    """A version 9 vault gets the credentials tables and keeps its secrets."""
    write(store)
    with store._tx(write=True) as tx:  # type: ignore[attr-defined]
        undo_after(tx, 9)
        tx.execute("UPDATE sb_settings SET value = '9' WHERE key = 'schema_version'")
    store._schema_ok = False  # type: ignore[attr-defined]
    with pytest.raises(NotInitialised, match="was not migrated"):
        store.list_cred_roles()
    assert store.migrate() == SCHEMA_VERSION - 9
    assert store.list_cred_roles() == [] and store.list_leases() == []
    assert store.read_version("payments", "dev", "DB", None).version == 1


def _downgrade_to_7(raw: Storage) -> None:
    _downgrade_to_8(raw)
    with raw._tx(write=True) as tx:  # type: ignore[attr-defined]
        tx.execute("ALTER TABLE sb_secrets DROP COLUMN last_version")
        tx.execute("UPDATE sb_settings SET value = '7' WHERE key = 'schema_version'")
    raw._schema_ok = False  # type: ignore[attr-defined]


def test_schema_8_migrates_from_7(store: Storage) -> None:
    """A version 7 vault (numbers taken from the current version) keeps its versions and
    numbers on after the migration; a pending version then takes the next number."""
    write(store)
    write(store)
    write(store, "OTHER")
    _downgrade_to_7(store)
    with pytest.raises(NotInitialised, match="was not migrated"):
        store.read_version("payments", "dev", "DB", None)
    assert store.migrate() == SCHEMA_VERSION - 7
    assert store.get_setting("schema_version") == str(SCHEMA_VERSION)
    assert store.read_version("payments", "dev", "DB", None).version == 2
    assert write(store, plan=stages.new_pending()) == 3
    assert write(store) == 4
    assert stage_map(store) == {1: "archived", 2: "previous", 3: "pending", 4: "current"}
    assert write(store, "OTHER") == 2
    assert store.check() == []


def test_schema_9_migrates_from_8(store: Storage) -> None:
    """A version 8 vault gets the rotation tables; its versions' stage times are taken
    from what the rows tell (a previous version: when the current one was written)."""
    from tests.unit.storage.contract import sealed

    store.write_version("payments", "dev", "DB", sealed, now="2026-01-01T00:00:00+00:00",
                        actor="t", plan=stages.new_current())  # fmt: skip
    store.write_version("payments", "dev", "DB", sealed, now="2026-02-01T00:00:00+00:00",
                        actor="t", plan=stages.new_current())  # fmt: skip
    _downgrade_to_8(store)
    assert store.migrate() == SCHEMA_VERSION - 8
    rows = {v.version: v for v in store.history("payments", "dev", "DB")}
    assert (rows[1].stage, rows[1].staged_at) == ("previous", "2026-02-01T00:00:00+00:00")
    assert (rows[2].stage, rows[2].staged_at) == ("current", "2026-02-01T00:00:00+00:00")
    assert rows[2].rotation_id is None
    assert store.list_rotations() == []
    assert store.get_rotation_config("payments", "dev", "DB") is None


def test_schema_6_migrates_from_5(raw: Storage) -> None:
    """A version 5 vault (no token parents) gets the column; its tokens are roots."""
    raw.initialise("vault-1", {"unlock_method": "keyfile"}, KEK, NOW, **KEYS)
    alice = identity(raw, "alice")
    token(raw, "old", alice)
    with raw._tx(write=True) as tx:  # type: ignore[attr-defined]
        tx.execute("DROP INDEX sb_tokens_parent")
        tx.execute("ALTER TABLE sb_tokens DROP COLUMN parent")
        # and the columns of versions 7 and 8, which the migration from 5 adds again
        for column in ("at", "checkpoint_seq", "signature", "since", "spool"):
            tx.execute(f"ALTER TABLE sb_audit_heads DROP COLUMN {column}")
        tx.execute("ALTER TABLE sb_audit_checkpoints DROP COLUMN prev_seq")
        undo_after(tx, 8)
        tx.execute("ALTER TABLE sb_secrets DROP COLUMN last_version")
        tx.execute("UPDATE sb_settings SET value = '5' WHERE key = 'schema_version'")
    raw._schema_ok = False  # type: ignore[attr-defined]
    assert raw.migrate() == SCHEMA_VERSION - 5
    assert raw.get_token(accessor="old").parent is None  # type: ignore[union-attr]
    token(raw, "new", alice, parent="old")
    assert raw.revoke_tokens(accessor="old", now=NOW) == 2


def test_sqlite_durability_levels(tmp_path: Path) -> None:
    """Secret writes fsync (FULL); audit batches and reads share the NORMAL connection."""
    from sealbox.storage.sqlite import SqliteStorage

    store = SqliteStorage(tmp_path / "vault.db", create=True)
    try:
        conn = store._conn
        level = "PRAGMA synchronous"
        assert conn.execute(level).fetchone()[0] == 1  # NORMAL between transactions
        with store._tx(write=True) as tx:
            assert tx.execute(level).fetchone()[0] == 2  # FULL inside a write
        assert conn.execute(level).fetchone()[0] == 1
        with store._audit_tx() as tx:
            assert tx.execute(level).fetchone()[0] == 1
        with pytest.raises(RuntimeError), store._tx(write=True):
            raise RuntimeError("a failed write still restores NORMAL")
        assert conn.execute(level).fetchone()[0] == 1
    finally:
        store.close()


def test_sqlite_serving_checkpoints_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server's commits never run a WAL checkpoint; a thread does, and stops on close."""
    import time

    from sealbox.storage import sqlite, sqlite_serving

    monkeypatch.setattr(sqlite_serving, "CHECKPOINT_INTERVAL", 0.005)
    store = sqlite.SqliteStorage(tmp_path / "vault.db", create=True)
    store.initialise("v1", {}, KEK, NOW, **KEYS)
    store.serve()
    store.serve()  # idempotent: one thread
    thread = store._checkpointer
    assert thread is not None
    assert store._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    deadline = time.monotonic() + 10
    while thread.runs < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert thread.runs >= 2
    store.close()
    assert not thread.is_alive()


def test_sqlite_wal_starts_over_under_constant_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint that cannot copy the last frames before the next write (writes keep
    coming, or a reader holds an older snapshot) leaves the WAL growing; once it is long,
    the serving connection finishes a checkpoint after its next audit commit."""
    import sqlite3

    from sealbox.storage import sqlite as sq
    from sealbox.storage import sqlite_serving

    monkeypatch.setattr(sqlite_serving, "CHECKPOINT_INTERVAL", 3600.0)  # the test plays the thread
    monkeypatch.setattr(sqlite_serving, "WAL_RESTART_PAGES", 20)
    path = tmp_path / "vault.db"
    store = sq.SqliteStorage(path, create=True)
    store.initialise("v1", {}, KEK, NOW, **KEYS)
    store.serve()
    thread = store._checkpointer
    assert thread is not None
    other = sqlite3.connect(path, isolation_level=None)
    reader = sqlite3.connect(path, isolation_level=None)

    def row(seq: int, prev: str) -> AuditRow:
        return AuditRow(NOW, "me", "api", "read", f"p/e/N{seq}", 1, "allowed", "", "n", seq,
                        "x" * 3000, prev, f"{seq:064x}", "sha256")  # fmt: skip

    def batch() -> None:
        with store.audit_batch("n"):
            store.append_audit_event("n", row)

    def wal_generation() -> int:
        # The WAL header's checkpoint sequence number: it changes when the WAL starts over.
        return int.from_bytes(Path(f"{path}-wal").read_bytes()[12:16], "big")

    batch()
    start, size = wal_generation(), Path(f"{path}-wal").stat().st_size
    for _ in range(10):
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM sb_audit").fetchone()
        batch()  # frames past the reader's snapshot
        thread.checkpoint(other)  # copies up to that snapshot only
        reader.execute("COMMIT")
    assert wal_generation() == start
    assert Path(f"{path}-wal").stat().st_size > size
    assert thread.restart_due
    batch()  # commits, then copies the last frames itself
    assert not thread.restart_due
    batch()  # starts the WAL over
    assert wal_generation() != start
    assert store.audit_heads() == {"n": (13, f"{13:064x}")}
    for conn in (other, reader):
        conn.close()
    store.close()
