"""One contract suite, run against every storage backend."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.pg import throwaway_database

from sealbox.errors import AlreadyExists, Conflict, NotFound, NotInitialised
from sealbox.storage.interface import Storage
from sealbox.storage.rows import AuditRow, KekRecord, SealedRow, SessionRow

NOW = "2026-01-01T00:00:00+00:00"
KEK = KekRecord("kek1", b"wrapped-kek", NOW, True)


def sealed(version: int) -> SealedRow:
    return SealedRow(f"ct-{version}".encode(), f"wk-{version}".encode(), "kek1")


@pytest.fixture(scope="module")
def pg_dsn() -> Iterator[str]:
    try:
        with throwaway_database() as dsn:
            yield dsn
    except Exception as exc:  # pragma: no cover - only without a server
        pytest.skip(f"PostgreSQL unavailable: {type(exc).__name__}")


def _make(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Storage:
    if kind == "sqlite":
        from sealbox.storage.sqlite import SqliteStorage

        return SqliteStorage(tmp_path / "vault.db", create=True)
    from sealbox.storage.postgres import PostgresStorage

    dsn = request.getfixturevalue("pg_dsn")
    store = PostgresStorage(dsn)
    # Each test starts from an empty database.
    with store._tx(write=True) as tx:
        for (table,) in tx.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'sb_%'"
        ).fetchall():
            tx.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    return store


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.integration),
]


@pytest.fixture(params=BACKENDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def raw(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Storage]:
    store = _make(kind, tmp_path, request)
    yield store
    store.close()


@pytest.fixture
def store(raw: Storage) -> Storage:
    raw.initialise("vault-1", {"unlock_method": "keyfile"}, KEK, NOW)
    raw.create_project("payments", NOW)
    for env in ("dev", "prod"):
        raw.create_env("payments", env, NOW)
    return raw


def write(store: Storage, name: str = "DB", **kw: object) -> int:
    return store.write_version("payments", "dev", name, sealed, now=NOW, actor="t", **kw)  # type: ignore[arg-type]


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
        store.initialise("vault-2", {}, KEK, NOW)


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


def test_versions_are_monotonic_and_immutable(store: Storage) -> None:
    assert [write(store) for _ in range(3)] == [1, 2, 3]
    row = store.read_version("payments", "dev", "DB", None)
    assert (row.version, row.ciphertext, row.stage) == (3, b"ct-3", "current")
    assert store.read_version("payments", "dev", "DB", 1).ciphertext == b"ct-1"
    stages = [(v.version, v.stage) for v in store.history("payments", "dev", "DB")]
    assert stages == [(1, "archived"), (2, "previous"), (3, "current")]
    with pytest.raises(NotFound):
        store.read_version("payments", "dev", "DB", 9)


def test_environments_are_separate(store: Storage) -> None:
    write(store)
    with pytest.raises(NotFound):
        store.read_version("payments", "prod", "DB", None)
    assert store.read_current("payments", "prod") == []
    assert [r.name for r in store.read_current("payments", "dev")] == ["DB"]


def test_missing_scope(store: Storage) -> None:
    with pytest.raises(NotFound, match="environment"):
        store.write_version("payments", "qa", "DB", sealed, now=NOW, actor="t")
    with pytest.raises(NotFound, match="project"):
        store.read_current("nope", "dev")


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
        store.write_version("payments", "dev", "DB", boom, now=NOW, actor="t")
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


def test_sessions(store: Storage) -> None:
    store.put_session(SessionRow("s1", b"w", NOW, "2026-01-01T01:00:00+00:00"))
    store.put_session(SessionRow("s2", b"w", NOW, "2026-01-03T00:00:00+00:00"))
    assert store.get_session("s1") == SessionRow("s1", b"w", NOW, "2026-01-01T01:00:00+00:00")
    assert store.delete_sessions(expired_before="2026-01-02T00:00:00+00:00") == 1
    assert store.get_session("s1") is None
    assert store.delete_sessions() == 1
    assert store.get_session("s2") is None


def test_replace_master_ends_sessions(store: Storage) -> None:
    store.put_session(SessionRow("s1", b"w", NOW, "2027-01-01T00:00:00+00:00"))
    store.replace_master([KekRecord("kek1", b"new", NOW, True)], {"kdf": "x"})
    assert store.list_keks()[0].wrapped == b"new"
    assert store.get_setting("kdf") == "x"
    assert store.get_session("s1") is None


def test_iter_versions_and_audit(store: Storage) -> None:
    write(store, "A")
    write(store, "B")
    write(store, "B")
    assert [(v.name, v.version) for v in store.iter_versions()] == [("A", 1), ("B", 1), ("B", 2)]

    def build(seq: int, prev: str) -> AuditRow:
        return AuditRow(
            NOW,
            "me",
            "cli",
            "read",
            "payments/dev/A",
            1,
            "allowed",
            "",
            "n1",
            seq,
            "{}",
            prev,
            f"{seq:064x}",
            "sha256",
        )

    store.append_audit_event("n1", build)
    row = store.append_audit_event("n1", build)
    assert (row.seq, row.prev) == (2, f"{1:064x}")
    assert store.list_audit()[-1].operation == "read"
    assert store.audit_heads() == {"n1": (2, f"{2:064x}")}
    assert [r.seq for r in store.audit_chain("n1")] == [1, 2]
    assert store.audit_nodes() == ["n1"]
    assert store.check() == []


def test_concurrent_writers_lose_nothing(
    kind: str, store: Storage, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Several connections writing one secret: every write gets its own version."""
    writers = 4
    per_writer = 10
    errors: list[BaseException] = []

    def worker() -> None:
        own = _reopen(kind, store, tmp_path, request)
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


def _reopen(kind: str, store: Storage, tmp_path: Path, request: pytest.FixtureRequest) -> Storage:
    if kind == "sqlite":
        from sealbox.storage.sqlite import SqliteStorage

        return SqliteStorage(tmp_path / "vault.db")
    from sealbox.storage.postgres import PostgresStorage

    return PostgresStorage(request.getfixturevalue("pg_dsn"))


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
    store.initialise("v1", {}, KEK, NOW)
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
    store.initialise("v1", {}, KEK, NOW)
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


def test_audit_heads_of_several_chains(store: Storage) -> None:
    def row(node: str, seq: int) -> AuditRow:
        return AuditRow(NOW, "me", "cli", "read", "p/e/N", 1, "allowed", "", node, seq,
                        "{}", "0" * 64, f"h-{node}-{seq}", "sha256")  # fmt: skip

    for node, count in (("b", 3), ("a", 2), ("c", 1)):
        for _ in range(count):
            store.append_audit_event(node, lambda s, p, n=node: row(n, s))
    assert store.audit_heads() == {"a": (2, "h-a-2"), "b": (3, "h-b-3"), "c": (1, "h-c-1")}


def test_sqlite_audit_batch_without_waiting(tmp_path: Path) -> None:
    """A batch that must not wait fails at once, changing nothing, while another process
    writes; SQLite's busy handler would have slept the caller (10 s, then a different
    error: BackendUnavailable, not StorageBusy)."""
    from sealbox.errors import StorageBusy
    from sealbox.storage.sqlite import SqliteStorage

    store = SqliteStorage(tmp_path / "vault.db", create=True)
    store.initialise("v1", {}, KEK, NOW)
    other = SqliteStorage(tmp_path / "vault.db")
    try:
        with (
            other._tx(write=True),
            pytest.raises(StorageBusy),
            store.audit_batch("n", wait=False),
        ):
            pytest.fail("the batch must not start")  # pragma: no cover
        assert store._conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0  # restored
        assert not store._conn.in_transaction
        with store.audit_batch("n", wait=False):
            store.append_audit_event(
                "n",
                lambda seq, prev: AuditRow(
                    NOW,
                    "me",
                    "api",
                    "read",
                    "p/e/N",
                    1,
                    "allowed",
                    "",
                    "n",
                    seq,
                    "{}",
                    prev,
                    "h1",
                    "sha256",
                ),
            )
        assert store.audit_heads() == {"n": (1, "h1")}
    finally:
        other.close()
        store.close()


def test_audit_batch_without_waiting_while_another_process_appends(
    kind: str, store: Storage, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Two processes on one chain: while one appends a batch, the other's non-waiting batch
    fails at once (StorageBusy) and changes nothing; afterwards it appends on top."""
    from sealbox.errors import StorageBusy

    if kind == "sqlite":
        from sealbox.storage.sqlite import SqliteStorage

        other: Storage = SqliteStorage(tmp_path / "vault.db")
    else:
        from sealbox.storage.postgres import PostgresStorage

        other = PostgresStorage(request.getfixturevalue("pg_dsn"))

    def row(seq: int, prev: str) -> AuditRow:
        return AuditRow(NOW, "me", "api", "read", "payments/dev/DB", 1, "allowed", "", "n",
                        seq, "{}", prev, f"h{seq}", "sha256")  # fmt: skip

    try:
        with other.audit_batch("n"):
            other.append_audit_event("n", row)
            with pytest.raises(StorageBusy), store.audit_batch("n", wait=False):
                pytest.fail("the batch must not start")  # pragma: no cover
        with store.audit_batch("n", wait=False):
            store.append_audit_event("n", row)
        assert store.audit_heads() == {"n": (2, "h2")}
    finally:
        other.close()


# -- the token tree (issue 10) ------------------------------------------------------------------
def _identity(store: Storage, name: str) -> str:
    from sealbox.storage.rows import IdentityRow

    store.create_identity(IdentityRow(f"id-{name}", name, "person", None, None, "[]", NOW, False))
    return f"id-{name}"


def _token(store: Storage, accessor: str, identity_id: str, parent: str | None = None) -> None:
    from sealbox.storage.rows import TokenRow

    store.put_token(
        TokenRow(
            accessor,
            f"hash-{accessor}",
            identity_id,
            "[]",
            "token",
            NOW,
            "2026-01-02T00:00:00+00:00",
            "2026-01-03T00:00:00+00:00",
            None,
            accessor,
            parent,
        )
    )


def _revoked(store: Storage) -> dict[str, bool]:
    return {t.accessor: t.revoked_at is not None for t in store.list_tokens()}


def test_revoking_a_token_revokes_its_subtree(store: Storage) -> None:
    """root -> child -> grandchild, and a sibling tree that must stay alive."""
    alice, bob = _identity(store, "alice"), _identity(store, "bob")
    _token(store, "root", alice)
    _token(store, "child", bob, parent="root")
    _token(store, "grandchild", alice, parent="child")
    _token(store, "other", alice)
    assert store.get_token(accessor="child").parent == "root"  # type: ignore[union-attr]
    assert store.get_token(accessor="root").parent is None  # type: ignore[union-attr]
    assert store.revoke_tokens(accessor="child", now=NOW) == 2
    assert _revoked(store) == {"root": False, "child": True, "grandchild": True, "other": False}
    assert store.revoke_tokens(accessor="child", now=NOW) == 0  # nothing left alive there
    assert store.revoke_tokens(accessor="root", now=NOW) == 1
    # All of an identity's tokens, with what descends from them (bob's own is already gone).
    _token(store, "b1", bob)
    _token(store, "b1-child", alice, parent="b1")
    assert store.revoke_tokens(identity_id=bob, now=NOW) == 2
    assert _revoked(store)["b1-child"] and not _revoked(store)["other"]


def test_deleting_an_identity_revokes_what_its_tokens_made(store: Storage) -> None:
    alice, bob = _identity(store, "alice"), _identity(store, "bob")
    _token(store, "a", alice)
    _token(store, "b-under-a", bob, parent="a")
    _token(store, "b-alone", bob)
    store.delete_identity(alice, now=NOW)
    assert store.get_token(accessor="a") is None
    assert _revoked(store) == {"b-under-a": True, "b-alone": False}


def test_schema_6_migrates_from_5(raw: Storage) -> None:
    """A version 5 vault (no token parents) gets the column; its tokens are roots."""
    from sealbox.storage.rows import SCHEMA_VERSION

    raw.initialise("vault-1", {"unlock_method": "keyfile"}, KEK, NOW)
    alice = _identity(raw, "alice")
    _token(raw, "old", alice)
    with raw._tx(write=True) as tx:  # type: ignore[attr-defined]
        tx.execute("DROP INDEX sb_tokens_parent")
        tx.execute("ALTER TABLE sb_tokens DROP COLUMN parent")
        # and version 7's columns, which the migration from 5 adds again
        for column in ("at", "checkpoint_seq", "signature", "since", "spool"):
            tx.execute(f"ALTER TABLE sb_audit_heads DROP COLUMN {column}")
        tx.execute("ALTER TABLE sb_audit_checkpoints DROP COLUMN prev_seq")
        tx.execute("UPDATE sb_settings SET value = '5' WHERE key = 'schema_version'")
    raw._schema_ok = False  # type: ignore[attr-defined]
    assert raw.migrate() == SCHEMA_VERSION - 5
    assert raw.get_token(accessor="old").parent is None  # type: ignore[union-attr]
    _token(raw, "new", alice, parent="old")
    assert raw.revoke_tokens(accessor="old", now=NOW) == 2
