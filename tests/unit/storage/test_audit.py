"""AuditStore contract: chained appends, batches, heads, checkpoints, queries."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.unit.storage.contract import KEK, KEYS, NOW, audit_row, reopen

from sealbox.errors import StorageBusy
from sealbox.storage.interface import Storage
from sealbox.storage.rows import AuditQuery, AuditRow, CheckpointRow


def test_appends_chain(store: Storage) -> None:
    def build(seq: int, prev: str) -> AuditRow:
        return audit_row("n1", seq, prev, f"{seq:064x}", path="payments/dev/A")

    store.append_audit_event("n1", build)
    row = store.append_audit_event("n1", build)
    assert (row.seq, row.prev) == (2, f"{1:064x}")
    assert store.list_audit()[-1].operation == "read"
    assert store.audit_heads() == {"n1": (2, f"{2:064x}")}
    assert store.audit_head("n1") == (2, f"{2:064x}")
    assert [r.seq for r in store.audit_chain("n1")] == [1, 2]
    assert store.audit_nodes() == ["n1"]
    assert store.count_unchained_audit() == 0
    assert store.check() == []


def test_queries_and_checkpoints(store: Storage) -> None:
    for _ in range(2):
        store.append_audit_event("n", lambda s, p: audit_row("n", s, p, f"h{s}"))
    found = store.query_audit(AuditQuery(paths=("p/e/N",), limit=1))
    assert [r.seq for r in found] == [2]  # newest first
    assert store.query_audit(AuditQuery(operations=("write",))) == []
    store.add_audit_checkpoint(CheckpointRow("n", 2, "h2", NOW, "sig", "key", 0))
    assert store.list_audit_checkpoints() == [CheckpointRow("n", 2, "h2", NOW, "sig", "key", 0)]
    assert not store.has_keyed_audit()


def test_audit_heads_of_several_chains(store: Storage) -> None:
    def row(node: str, seq: int) -> AuditRow:
        return audit_row(node, seq, "0" * 64, f"h-{node}-{seq}")

    for node, count in (("b", 3), ("a", 2), ("c", 1)):
        for _ in range(count):
            store.append_audit_event(node, lambda s, p, n=node: row(n, s))
    assert store.audit_heads() == {"a": (2, "h-a-2"), "b": (3, "h-b-3"), "c": (1, "h-c-1")}


def test_sqlite_audit_batch_without_waiting(tmp_path: Path) -> None:
    """A batch that must not wait fails at once, changing nothing, while another process
    writes; SQLite's busy handler would have slept the caller (10 s, then a different
    error: BackendUnavailable, not StorageBusy)."""
    from sealbox.storage.sqlite import SqliteStorage

    store = SqliteStorage(tmp_path / "vault.db", create=True)
    store.initialise("v1", {}, KEK, NOW, **KEYS)
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
    other = reopen(kind, tmp_path, request)

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
