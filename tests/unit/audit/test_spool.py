"""The server's audit spool: events reach a file before the caller gets a value, reach the
database in order and chained, and survive a killed process; a tampered spool is caught."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from tests.unit.audit.conftest import OpenVault

from sealbox.audit import recorder as recorder_module
from sealbox.audit import spool as spool_module
from sealbox.errors import AuditUnavailable
from sealbox.model import SecretRef, SecretValue
from sealbox.vault import Vault

REF = SecretRef("payments", "dev", "DB_PASSWORD")
CANARY = "spool-canary-7f3e91"


def _stored(home: Path, operation: str | None = None) -> list[tuple[str, int, str]]:
    """(node, seq, operation) of the events in the database, read without sealbox."""
    with sqlite3.connect(home / "vault.db") as conn:
        rows = conn.execute(
            "SELECT node, seq, operation FROM sb_audit WHERE seq IS NOT NULL ORDER BY id"
        ).fetchall()
    return [r for r in rows if operation is None or r[2] == operation]


def _spool_files(home: Path) -> list[Path]:
    return sorted((home / "vault.db.audit-spool").glob("*.spool"))


def _served(make_vault: OpenVault) -> Vault:
    vault = make_vault(source="api", audit_node="srv")
    vault.serve()
    return vault


def _seed(make_vault: OpenVault) -> None:
    vault = make_vault()
    vault.set(REF, SecretValue(CANARY))
    vault.close()


def test_reads_are_spooled_then_stored_chained_in_one_drain(
    make_vault: OpenVault, home: Path
) -> None:
    _seed(make_vault)
    vault = _served(make_vault)
    for _ in range(3):
        vault.get(REF, reveal=True)
    assert _stored(home, "reveal") == []  # not in the database yet...
    (spool,) = _spool_files(home)
    assert spool.stat().st_size > 0  # ...but on disk before get() returned
    assert oct(spool.stat().st_mode & 0o777) == "0o600"
    assert CANARY.encode() not in spool.read_bytes()  # values only as HMACs
    assert vault.audit_commit.backlog == 3

    assert vault.audit_commit.store() == 3
    assert [seq for _, seq, _ in _stored(home, "reveal")] == [1, 2, 3]
    assert {node for node, _, _ in _stored(home, "reveal")} == {"srv"}
    # Stored: the drained records stay (up to KEEP_BYTES), vouched for by the database's
    # mark of this drain, so a spool cut below it is found.
    size = spool.stat().st_size
    assert size > 0
    with sqlite3.connect(home / "vault.db") as conn:
        (mark,) = conn.execute("SELECT spool FROM sb_audit_heads WHERE node = 'srv'").fetchone()
    assert mark.startswith(spool.name) and mark.endswith(f" 3 {size}")
    assert vault.audit.verify().findings == []
    vault.close()


def test_queries_writes_and_close_store_what_is_spooled(make_vault: OpenVault, home: Path) -> None:
    _seed(make_vault)
    vault = _served(make_vault)
    vault.get(REF)
    # A query answers with this process's spooled events.
    assert [e["operation"] for e in vault.audit.who_read(REF)] == ["read"]
    vault.get(REF)
    vault.set(REF, SecretValue("next"))  # its event lands after the spooled read
    vault.get(REF)
    ops = [op for node, _, op in _stored(home) if node == "srv"]
    assert ops[-2:] == ["read", "write"]
    vault.close()  # stores the last read
    srv = [(seq, op) for node, seq, op in _stored(home) if node == "srv"]
    assert [seq for seq, _ in srv] == list(range(1, len(srv) + 1))
    assert srv[-1][1] == "read"
    reopened = make_vault()
    assert reopened.audit.verify().findings == []
    reopened.close()


def test_two_serving_processes_take_two_chains(make_vault: OpenVault, home: Path) -> None:
    _seed(make_vault)
    first, second = _served(make_vault), _served(make_vault)
    first.get(REF)
    second.get(REF)
    second.get(REF)
    first.close()
    second.close()
    nodes = [node for node, _, op in _stored(home, "read")]
    assert sorted(nodes) == ["srv", "srv#1", "srv#1"]
    check = make_vault()
    assert check.audit.verify().findings == []
    check.close()


KILLED = """
import os, sys
from sealbox import factory
from sealbox.model import SecretRef
vault = factory.open_vault(source="api", audit_node=sys.argv[2])
vault.serve()
for _ in range(int(sys.argv[1])):
    vault.get(SecretRef("payments", "dev", "DB_PASSWORD"))
os._exit(0)  # killed: nothing drained, nothing closed
"""


def _killed_server(reads: int, node: str = "srv") -> None:
    env = {**os.environ}
    subprocess.run([sys.executable, "-c", KILLED, str(reads), node], env=env, check=True)


def test_a_killed_servers_spool_is_stored_by_the_next_start(
    make_vault: OpenVault, home: Path
) -> None:
    _seed(make_vault)
    _killed_server(4)
    assert _stored(home, "read") == []
    cli = make_vault()  # `sealbox audit verify` before the server starts again
    (notice,) = [n for n in cli.audit.verify().notices if "spool" in n]
    assert "did not store yet" in notice
    assert cli.audit.spool_notices() == [notice]  # what `sealbox doctor` warns of
    cli.close()
    (spool,) = _spool_files(home)
    with spool.open("ab") as f:
        f.write(b"\x00\x00\x01")  # a record cut short by the kill
    vault = _served(make_vault)
    assert [seq for _, seq, _ in _stored(home, "read")] == [1, 2, 3, 4]
    assert spool.stat().st_size == 0
    vault.get(REF)  # the chain goes on after the recovered events
    assert not [n for n in vault.audit.verify().notices if "spool" in n]  # owned, stored
    vault.close()
    assert [seq for _, seq, _ in _stored(home, "read")] == [1, 2, 3, 4, 5]
    check = make_vault()
    assert check.audit.verify().findings == []
    check.close()


def _records(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each spool record (after the file's header)."""
    header = spool_module._parse_header(data)
    assert header is not None
    spans, at = [], header[2]
    while at < len(data):
        end = at + 28 + int.from_bytes(data[at : at + 4], "big")
        spans.append((at, end))
        at = end
    return spans


@pytest.mark.parametrize("attack", ["edit", "delete", "reorder", "forge", "salt"])
def test_a_tampered_spool_is_set_aside_and_reported(
    make_vault: OpenVault, home: Path, attack: str
) -> None:
    _seed(make_vault)
    _killed_server(3)
    (spool,) = _spool_files(home)
    data = spool.read_bytes()
    _, (b0, b1), (c0, c1) = _records(data)
    if attack == "edit":
        rec = bytearray(data[b0:b1])
        rec[-5] ^= 1
        data = data[:b0] + bytes(rec) + data[b1:]
    elif attack == "delete":
        data = data[:b0] + data[b1:]
    elif attack == "reorder":
        data = data[:b0] + data[c0:c1] + data[b0:b1]
    elif attack == "forge":  # a record made without the key
        data = data[: b0 + 12] + os.urandom(16) + data[b0 + 28 :]
    else:  # the records of the file re-tagged under a salt the attacker chose
        m = len(spool_module.MAGIC)
        data = data[:m] + os.urandom(16) + data[m + 16 :]
    spool.write_bytes(data)

    vault = _served(make_vault)
    stored = [seq for _, seq, _ in _stored(home, "read")]
    first_bad = 1 if attack == "salt" else 2
    assert stored == list(range(1, first_bad))  # the intact records before the damage
    (kept,) = (home / "vault.db.audit-spool").glob("*.rejected")
    assert kept.read_bytes() == data  # the evidence, as found
    assert oct(kept.stat().st_mode & 0o777) == "0o600"
    vault.close()
    check = make_vault()
    (event,) = check.audit.log(operations=["audit.recover"])
    assert event["outcome"] == "error" and f"record {first_bad} " in event["reason"]
    # Until an operator accepts the rejected spool, verify fails naming it and its record.
    (finding,) = check.audit.verify().findings
    assert kept.name in finding and f"record {first_bad} (byte " in finding
    assert "--accept-rejected" in finding
    assert check.audit.accept_rejected(str(kept)) == kept.name
    verification = check.audit.verify()
    assert verification.findings == []  # the chain itself is whole
    assert any(f"{kept.name}: accepted by" in n for n in verification.notices)
    check.close()


def test_a_spool_that_cannot_be_written_refuses_the_read(
    make_vault: OpenVault, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail closed: no value without its event on disk; a short write leaves no part."""
    _seed(make_vault)
    vault = _served(make_vault)
    vault.get(REF)
    (spool,) = _spool_files(home)
    size = spool.stat().st_size

    real_write = os.write

    def short_writev(fd: int, parts: list[bytes]) -> int:
        return real_write(fd, b"".join(parts)[:10])  # as a full disk does

    monkeypatch.setattr(spool_module.os, "writev", short_writev)
    with pytest.raises(AuditUnavailable) as exc:
        vault.get(REF, reveal=True)
    assert CANARY not in str(exc.value)
    assert spool.stat().st_size == size  # the partial record was taken back
    monkeypatch.undo()
    vault.get(REF)
    vault.close()
    assert [op for _, _, op in _stored(home) if op in ("read", "reveal")] == ["read", "read"]


def test_a_checkpoint_falls_due_at_a_drain_not_on_a_read(
    make_vault: OpenVault, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder_module, "CHECKPOINT_EVERY", 5)
    _seed(make_vault)
    vault = _served(make_vault)
    for _ in range(6):
        vault.get(REF)
    with sqlite3.connect(home / "vault.db") as conn:
        before = conn.execute("SELECT COUNT(*) FROM sb_audit_checkpoints WHERE node = 'srv'")
        assert before.fetchone()[0] == 0
    vault.audit_commit.store()
    with sqlite3.connect(home / "vault.db") as conn:
        seqs = conn.execute("SELECT seq FROM sb_audit_checkpoints WHERE node = 'srv'").fetchall()
    assert seqs == [(6,)]  # the head the drain stored, signed
    vault.close()


def test_a_backlog_the_database_does_not_take_refuses_reads(
    make_vault: OpenVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database stays unavailable: reads stop (fail closed) at a bounded backlog
    instead of the spool growing without end; once stored, reads go on."""
    monkeypatch.setattr(spool_module, "MAX_BACKLOG", 3)
    _seed(make_vault)
    vault = _served(make_vault)
    for _ in range(3):
        vault.get(REF)
    with pytest.raises(AuditUnavailable):
        vault.get(REF)
    vault.audit_commit.store()
    vault.get(REF)
    vault.close()


def test_value_hmacs_are_remembered_per_version_and_never_go_stale(
    make_vault: OpenVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sealbox.audit.events import AuditKeys

    computed: list[int] = []
    real = AuditKeys.value_hmac

    def counting(self: AuditKeys, value: bytes) -> str:
        computed.append(len(value))
        return real(self, value)

    _seed(make_vault)
    monkeypatch.setattr(AuditKeys, "value_hmac", counting)
    vault = _served(make_vault)
    for _ in range(3):
        vault.get(REF)
    assert len(computed) == 1  # one HMAC for three reads of one version
    vault.purge(REF)
    vault.set(REF, SecretValue("another value"))  # version 1 again, another value
    vault.get(REF)
    reads = vault.audit.log(operations=["read"], limit=None)
    by_value = {e["versions"][0]["value_hmac"] for e in reads}
    assert by_value == {
        vault.audit.value_hmac(SecretValue(CANARY)),
        vault.audit.value_hmac(SecretValue("another value")),
    }
    vault.close()


def test_other_sinks_are_written_as_each_event_comes_and_the_spool_still_serves_the_db(
    make_vault: OpenVault, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("SEALBOX_AUDIT_SINKS", f"db,file:{log}")
    _seed(make_vault)
    vault = _served(make_vault)
    vault.get(REF)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines[-1]["operation"] == "read"  # in the file before get() returned
    assert _stored(home, "read") == []  # the database's copy is spooled
    assert vault.audit_commit.store() == 1
    assert [op for _, _, op in _stored(home, "read")] == ["read"]
    assert vault.audit.verify().findings == []  # both chains, the file's and the db's
    vault.close()


def test_without_the_db_sink_a_server_does_not_spool(
    make_vault: OpenVault, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEALBOX_AUDIT_SINKS", f"file:{tmp_path / 'audit.jsonl'}")
    _seed(make_vault)
    vault = _served(make_vault)
    vault.get(REF)
    commit = vault.audit_commit
    assert commit.backlog == 0 and commit.pending == 1  # group commit instead
    assert not (home / "vault.db.audit-spool").exists()
    vault.audit_commit.commit()
    vault.close()


def test_a_spool_that_cannot_be_made_stops_the_server_with_a_clear_error(
    make_vault: OpenVault, home: Path
) -> None:
    (home / "vault.db.audit-spool").write_text("not a directory")
    vault = make_vault(source="api", audit_node="srv")
    with pytest.raises(AuditUnavailable) as exc:
        vault.serve()
    assert "vault.db.audit-spool" in exc.value.message
    assert "audit_spool = false" in (exc.value.hint or "")
    vault.serve(spool=False)  # the way out the hint names: group commit
    assert vault.audit_commit.backlog == 0
    vault.close()


def test_a_server_under_another_name_stores_an_orphaned_spool_in_its_own_chain(
    make_vault: OpenVault, home: Path
) -> None:
    """Killed, then started again on another port (another node name): the old spool is
    stored anyway, into the chain it was written for."""
    _seed(make_vault)
    _killed_server(3, node="server:host:8200")
    vault = _served(make_vault)  # node "srv"
    reads = [(node, seq) for node, seq, _ in _stored(home, "read")]
    assert reads == [("server:host:8200", 1), ("server:host:8200", 2), ("server:host:8200", 3)]
    assert all(f.stat().st_size == 0 for f in _spool_files(home))
    assert not vault.audit.spool_notices()
    vault.close()
    check = make_vault()
    assert check.audit.verify().findings == []
    check.close()


def test_a_drain_that_fails_after_its_commit_does_not_store_its_events_twice(
    make_vault: OpenVault, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit whose answer is lost (or an interrupt right after it) leaves the events
    stored: the next drain must not insert them again (the (node, seq) index refuses,
    and every later event and write would wait behind them)."""
    from sealbox.storage.sqlite import SqliteStorage

    _seed(make_vault)
    vault = _served(make_vault)
    for _ in range(2):
        vault.get(REF)
    real = SqliteStorage.store_audit_rows
    failures = [RuntimeError("the answer to COMMIT was lost")]

    def commit_then_fail(self: SqliteStorage, *args: object, **kwargs: object) -> None:
        real(self, *args, **kwargs)  # type: ignore[arg-type]
        if failures:
            raise failures.pop()

    monkeypatch.setattr(SqliteStorage, "store_audit_rows", commit_then_fail)
    assert vault.audit_commit.store() == 2  # stored, though the call failed after its commit
    assert vault.audit_commit.backlog == 0
    vault.get(REF)
    vault.set(REF, SecretValue("next"))  # a write drains first: it must not fail
    assert vault.audit_commit.store() == 0
    assert [seq for _, seq, _ in _stored(home, "read")] == [1, 2, 3]
    assert vault.audit.verify().findings == []
    vault.close()


def test_a_drain_whose_commit_failed_keeps_its_events(
    make_vault: OpenVault, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sealbox.storage.sqlite import SqliteStorage

    _seed(make_vault)
    vault = _served(make_vault)
    vault.get(REF)

    def fail(self: SqliteStorage, *args: object, **kwargs: object) -> None:
        raise RuntimeError("no commit")

    with monkeypatch.context() as m:
        m.setattr(SqliteStorage, "store_audit_rows", fail)
        with pytest.raises(RuntimeError):
            vault.audit_commit.store()
    assert vault.audit_commit.backlog == 1
    assert vault.audit_commit.store() == 1
    assert [seq for _, seq, _ in _stored(home, "read")] == [1]


def test_a_drain_signs_one_head_for_all_its_events(
    make_vault: OpenVault, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The signed head costs a drain one signature, however many events it stores: the
    read path gains no work per event."""
    from sealbox.audit import events

    _seed(make_vault)
    vault = _served(make_vault)
    signed: list[bytes] = []
    real = events.head_tag
    monkeypatch.setattr(events, "head_tag", lambda keys, m: signed.append(m) or real(keys, m))
    for _ in range(50):
        vault.get(REF)
    assert signed == []  # nothing signed on the request path
    assert vault.audit_commit.store() == 50
    (message,) = signed
    assert b'"seq":50' in message and b'"kind":"head"' in message
    vault.close()
