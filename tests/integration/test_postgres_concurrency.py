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
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.pg import throwaway_database

from sealbox import factory
from sealbox.cli.main import main
from sealbox.errors import Conflict
from sealbox.model import SecretRef, SecretValue

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
