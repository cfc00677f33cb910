"""Writers and readers of one vault in concurrent processes, all on one audit chain
(issue 17): on PostgreSQL a read's audit event used to take the chain position a
concurrent write had read as free, and the write failed with "a concurrent write created
the same secret" (226 of 300 writes in a quick check). Every process here opens its own
storage; they start together (a barrier on stdin) and run a fixed number of operations,
so nothing depends on timing. The same runs on SQLite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from tests.pg import throwaway_database
from tests.unit.storage.contract import KEK, KEYS, NOW, audit_row

from sealbox import factory
from sealbox.cli.main import main
from sealbox.errors import Conflict
from sealbox.model import SecretRef, SecretValue
from sealbox.storage.rows import GENESIS, AuditRow

if TYPE_CHECKING:
    from sealbox.storage.postgres import PostgresStorage

pytestmark = pytest.mark.integration

#: One process: opens the vault, says ready, waits for "go", runs COUNT operations of
#: ROLE on its own secret (readers: KEY_0), prints {"ok": n, "errors": [...]}.
CHILD = r"""
import json, sys
from pathlib import Path
role, home, count, index = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
from sealbox import factory
from sealbox.errors import SealboxError
from sealbox.model import SecretRef, SecretValue
vault = factory.open_vault(home=home)
ref = SecretRef("app", "prod", f"KEY_{0 if role == 'read' else index}")
print("ready", flush=True)
sys.stdin.readline()
ok, errors = 0, []
for n in range(count):
    try:
        if role == "write":
            vault.set(ref, SecretValue(f"value-{index}-{n}".encode()))
        elif role == "read":
            vault.get(ref, reveal=True)
            vault.resolve("app", "prod")
        elif role == "meta":
            vault.update_meta(ref, owner=f"team-{n}")
        elif role == "delete":
            vault.delete(ref)
            vault.undelete(ref)
        elif role == "rotate":
            info = vault.rotations.start(ref)
            if info.state != "succeeded":
                raise SystemExit(f"rotation {info.state}: {info.error}")
        elif role == "token":
            new = vault.accounts.create_token(identity=f"machine-{index}")
            vault.accounts.revoke_token(new.accessor)
        ok += 1
    except SealboxError as exc:
        errors.append(f"{exc.code}: {exc}")
vault.close()
print(json.dumps({"ok": ok, "errors": errors}), flush=True)
"""

WRITES = 25
READS = 60


@pytest.fixture(params=["postgres", "sqlite"])
def home(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """An initialised vault (project app/prod, KEY_0..KEY_3 written once) on each backend."""
    home = tmp_path / "home"
    monkeypatch.setenv("SEALBOX_HOME", str(home))
    for name in [k for k in os.environ if k.startswith("SEALBOX_") and k != "SEALBOX_HOME"]:
        monkeypatch.delenv(name)
    key = ["--key-file", str(tmp_path / "k.key")]
    if request.param == "postgres":
        with throwaway_database() as dsn:
            assert main(["init", "--storage", dsn, *key]) == 0
            _seed(home)
            yield home
    else:
        assert main(["init", *key]) == 0
        _seed(home)
        yield home


def _seed(home: Path) -> None:
    vault = factory.open_vault(home=home)
    try:
        vault.create_project("app")
        for i in range(4):
            vault.set(SecretRef("app", "prod", f"KEY_{i}"), SecretValue(b"first"))
    finally:
        vault.close()


def _run_together(home: Path, jobs: list[tuple[str, int, int]]) -> list[dict[str, object]]:
    """Start one process per (role, count, index), release them at once, collect results."""
    env = {**os.environ, "SEALBOX_HOME": str(home)}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, role, str(home), str(count), str(index)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for role, count, index in jobs
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        results = []
        for child in children:
            out, _ = child.communicate(timeout=300)
            assert child.returncode == 0, out
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        for child in children:
            if child.poll() is None:  # pragma: no cover - a hung child fails the test
                child.kill()


def _assert_all_succeeded(
    results: list[dict[str, object]], jobs: list[tuple[str, int, int]]
) -> None:
    for (role, count, index), result in zip(jobs, results, strict=True):
        assert result == {"ok": count, "errors": []}, (role, index)


def _assert_audit_intact(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vault = factory.open_vault(home=home)
    try:
        assert vault.audit.verify().findings == []
    finally:
        vault.close()
    capsys.readouterr()
    assert main(["audit", "verify"]) == 0
    assert "audit trail intact" in capsys.readouterr().err


def test_writers_and_readers_on_one_chain_all_succeed(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three writers and two readers, all on the default node ("local"): every write
    succeeds, each secret's versions are contiguous, the chain verifies."""
    jobs = [("write", WRITES, i) for i in (1, 2, 3)] + [("read", READS, i) for i in (0, 1)]
    _assert_all_succeeded(_run_together(home, jobs), jobs)
    vault = factory.open_vault(home=home)
    try:
        for i in (1, 2, 3):
            versions = [v.version for v in vault.history(SecretRef("app", "prod", f"KEY_{i}"))]
            assert versions == list(range(1, WRITES + 2))
        events = vault.audit.log(
            secret=SecretRef("app", "prod", "KEY_1"), operations=("write",), limit=None
        )
        assert len(events) == WRITES + 1  # the seed's write and each of the loop's
    finally:
        vault.close()
    _assert_audit_intact(home, capsys)


def test_every_audited_transaction_survives_concurrent_readers(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Metadata, delete/undelete, rotation steps (start, create, promote, save) and
    token changes each commit an audit event in (or right after) their transaction: none
    fails because readers append to the chain meanwhile."""
    vault = factory.open_vault(home=home)
    try:
        vault.rotations.configure(SecretRef("app", "prod", "KEY_3"), "random")
        vault.accounts.create_machine("machine-0", [])
    finally:
        vault.close()
    jobs = [
        ("meta", WRITES, 1),
        ("delete", WRITES, 2),
        ("rotate", 10, 3),
        ("token", WRITES, 0),
        ("read", READS, 0),
        ("read", READS, 1),
    ]
    _assert_all_succeeded(_run_together(home, jobs), jobs)
    vault = factory.open_vault(home=home)
    try:
        versions = [v.version for v in vault.history(SecretRef("app", "prod", "KEY_3"))]
        assert versions == list(range(1, 12))  # the seed's and one per rotation
        assert len(vault.rotations.history(SecretRef("app", "prod", "KEY_3"))) == 10
    finally:
        vault.close()
    _assert_audit_intact(home, capsys)


def test_a_genuine_compare_and_set_conflict_is_still_a_conflict(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Readers appending meanwhile change nothing about a real conflict: a write that
    expects a version the secret has left is refused, with the versions in the message,
    and writes nothing."""
    ref = SecretRef("app", "prod", "KEY_0")
    readers = [("read", READS, i) for i in (0, 1)]
    env = {**os.environ, "SEALBOX_HOME": str(home)}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, role, str(home), str(count), str(index)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for role, count, index in readers
    ]
    vault = factory.open_vault(home=home)
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        for n in range(WRITES):
            assert vault.set(ref, SecretValue(f"v{n}".encode()), if_version=n + 1) == n + 2
            with pytest.raises(Conflict, match=rf"is at version {n + 2}, not {n + 1}"):
                vault.set(ref, SecretValue(b"stale"), if_version=n + 1)
        for child in children:
            out, _ = child.communicate(timeout=300)
            assert json.loads(out.strip().splitlines()[-1]) == {"ok": READS, "errors": []}
        assert [v.version for v in vault.history(ref)] == list(range(1, WRITES + 2))
    finally:
        vault.close()
        for child in children:
            if child.poll() is None:  # pragma: no cover
                child.kill()
    _assert_audit_intact(home, capsys)


# -- the storage layer, step by step (PostgreSQL: chain locks are advisory locks) ------------
@pytest.fixture
def pg_pair() -> Iterator[tuple[PostgresStorage, PostgresStorage, str]]:
    """Two storages (two processes' connections) on one initialised database, and its DSN."""
    from sealbox.storage.postgres import PostgresStorage

    with throwaway_database() as dsn:
        first = PostgresStorage(dsn)
        first.initialise("v1", {}, KEK, NOW, **KEYS)
        second = PostgresStorage(dsn)
        try:
            yield first, second, dsn
        finally:
            first.close()
            second.close()


def _row(seq: int, prev: str, tag: str) -> AuditRow:
    return audit_row("local", seq, prev, f"{tag}-{seq}")


def _wait_for_lock_waiter(dsn: str) -> None:
    """Until some connection waits for an advisory lock (a condition, not a duration)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(2000):
            waiting = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ).fetchone()
            if waiting and waiting[0]:
                return
            conn.execute("SELECT pg_sleep(0.005)")
    pytest.fail("the lone append never waited for the chain lock")  # pragma: no cover


def test_a_lone_event_waits_for_the_chain_lock_a_write_holds(
    pg_pair: tuple[PostgresStorage, PostgresStorage, str],
) -> None:
    """The cause of issue 17: a write holds the chain lock from reading the head to its
    commit; another process's lone event (a read's) now waits for that lock instead of
    taking the position the write read as free, then lands after the write's event."""
    writer, reader, dsn = pg_pair
    reader.append_audit_event("local", lambda s, p: _row(s, p, "read"))  # its head: seq 1
    landed: list[AuditRow] = []
    with writer._audited_tx("local") as tx:
        assert tx is not None
        thread = threading.Thread(
            target=lambda: landed.append(
                reader.append_audit_event("local", lambda s, p: _row(s, p, "read"))
            )
        )
        thread.start()
        _wait_for_lock_waiter(dsn)
        mine = writer.append_audit_event("local", lambda s, p: _row(s, p, "write"))
    thread.join(timeout=60)
    assert mine.seq == 2  # the position read under the lock was the write's to take
    assert [(r.seq, r.prev) for r in landed] == [(3, mine.hash)]
    chain = writer.audit_chain("local")
    assert [r.seq for r in chain] == [1, 2, 3]
    assert [r.prev for r in chain[1:]] == [r.hash for r in chain[:-1]]


def test_a_position_taken_without_the_lock_is_skipped_inside_the_write(
    pg_pair: tuple[PostgresStorage, PostgresStorage, str],
) -> None:
    """A process that appends without the chain lock (an older sealbox in a rolling
    upgrade) takes the position under a write's feet: the write's event is rebuilt on the
    real head inside the same transaction, and the write commits."""
    import psycopg

    writer, _, dsn = pg_pair
    with writer._audited_tx("local"), psycopg.connect(dsn, autocommit=True) as old:
        old.execute(
            "INSERT INTO sb_audit (at, actor, source, operation, path, version, outcome,"
            " reason, node, seq, event, prev, hash, link)"
            " VALUES (%s, 'old', 'cli', 'read', 'p/e/N', 1, 'allowed', '', 'local', 1,"
            " '{}', %s, 'old-1', 'sha256')",
            (NOW, GENESIS),
        )
        mine = writer.append_audit_event("local", lambda s, p: _row(s, p, "write"))
    assert (mine.seq, mine.prev) == (2, "old-1")
    assert [r.hash for r in writer.audit_chain("local")] == ["old-1", "write-2"]


def test_unique_violations_say_what_collided(
    pg_pair: tuple[PostgresStorage, PostgresStorage, str],
) -> None:
    """A unique index refusing a row is a Conflict that names what collided: an audit
    chain position is not "a concurrent write created the same secret"."""
    writer, _, _ = pg_pair
    writer.append_audit_event("local", lambda s, p: _row(s, p, "a"))
    taken = "another process took this position of the audit chain"
    with pytest.raises(Conflict, match=taken), writer._tx(write=True) as tx:
        writer._insert_audit_rows(tx, [_row(1, GENESIS, "b")])
    other = r"conflicted with this one \(sb_settings_pkey\)"
    with pytest.raises(Conflict, match=other), writer._tx(write=True) as tx:
        tx.execute("INSERT INTO sb_settings (key, value) VALUES ('vault_id', 'x')")
    assert writer.get_setting("vault_id") == "v1"
