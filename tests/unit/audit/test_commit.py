"""The audit-commit strategy a vault serves with (sealbox/audit_commit.py): chosen once by
serve(), and each keeps its rule: nothing pending once an operation returned (direct,
spool), or nothing stored until the group's commit."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from tests.unit.audit.conftest import OpenVault

from sealbox.errors import StorageBusy
from sealbox.model import SecretRef, SecretValue

REF = SecretRef("payments", "dev", "A")


def _reads(home: Path) -> int:
    with sqlite3.connect(home / "vault.db") as conn:
        (count,) = conn.execute("SELECT count(*) FROM sb_audit WHERE operation = 'read'").fetchone()
    return int(count)


def _seeded(make_vault: OpenVault) -> None:
    vault = make_vault()
    vault.set(REF, SecretValue("x"))
    vault.close()


def test_a_vault_not_served_commits_each_event_with_its_operation(
    make_vault: OpenVault, home: Path
) -> None:
    _seeded(make_vault)
    vault = make_vault()
    commit = vault.audit_commit
    assert commit.kind == "direct" and commit is vault.audit_commit
    vault.get(REF)
    assert (commit.pending, commit.backlog, _reads(home)) == (0, 0, 1)
    commit.commit()
    assert commit.store() == 0
    vault.close()


def test_served_on_sqlite_events_are_spooled_then_stored(make_vault: OpenVault, home: Path) -> None:
    _seeded(make_vault)
    vault = make_vault(source="api", audit_node="srv")
    vault.serve()
    commit = vault.audit_commit
    assert commit.kind == "spool" and commit.store_every > 0
    told: list[int] = []
    commit.on_backlog(lambda: told.append(commit.backlog))
    vault.get(REF)
    vault.get(REF)
    # Durable (in the spool file) before get() returned: a response need not wait.
    assert (commit.pending, commit.backlog, told, _reads(home)) == (0, 2, [1, 2], 0)
    assert commit.store() == 2
    assert (commit.backlog, _reads(home)) == (0, 2)
    vault.close()


def test_served_without_the_spool_events_wait_for_one_group_commit(
    make_vault: OpenVault, home: Path
) -> None:
    _seeded(make_vault)
    vault = make_vault(source="api", audit_node="srv")
    vault.serve(spool=False)
    commit = vault.audit_commit
    assert commit.kind == "group" and commit.backlog == 0
    for _ in range(3):
        vault.get(REF)
    assert (commit.pending, _reads(home)) == (3, 0)
    conn = sqlite3.connect(home / "vault.db")
    conn.execute("BEGIN IMMEDIATE")  # another process writes
    with pytest.raises(StorageBusy):
        commit.commit(wait=False)
    assert commit.pending == 3
    conn.execute("ROLLBACK")
    conn.close()
    commit.commit(wait=False)
    assert (commit.pending, _reads(home)) == (0, 3)
    vault.close()
