"""Standing suite "Tamper": every kind of tampering with the audit trail is found by
`sealbox audit verify` (exit 7, one line naming the position), on SQLite and PostgreSQL.

The attacker here can write the database (and, for spools, the spool directory) but holds
no key: that is what verification promises to catch (docs/audit.md, "What verification can
and cannot detect"). Each detected kind is counted in the standing-suite summary.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.cli_harness import Cli
from tests.pg import throwaway_database
from tests.standing_summary import record
from tests.unit.audit.test_spool import _records

from sealbox.audit.events import canonical


@dataclass
class Vault:
    """A CLI vault under attack, and raw SQL on its database (no sealbox in between)."""

    kind: str
    home: Path
    dsn: str | None
    cli: Cli

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.dsn is None:
            with contextlib.closing(sqlite3.connect(self.home / "vault.db")) as conn:
                cur = conn.execute(statement, params)
                rows = cur.fetchall()
                conn.commit()
                return rows
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            cur = conn.execute(statement.replace("?", "%s"), params)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def set(self, name: str, value: str) -> None:
        assert self.cli("secret", "set", name, stdin=value + "\n").status == 0

    def get(self, name: str) -> None:
        assert self.cli("secret", "get", name).status == 0

    def seqs(self) -> list[int]:
        return [
            r[0] for r in self.sql("SELECT seq FROM sb_audit WHERE node = 'local' ORDER BY seq")
        ]

    def checkpoint(self) -> int:
        """`sealbox audit checkpoint`; the seq it signed."""
        assert self.cli("audit", "checkpoint").status == 0
        return int(self.sql("SELECT MAX(seq) FROM sb_audit_checkpoints")[0][0])

    def rewrite(self, rows: list[tuple[Any, ...]]) -> None:
        """Store these rows, in this order, ids renumbered (an attacker can drop the
        index that stops a chain from forking)."""
        self.sql("DROP INDEX IF EXISTS sb_audit_node_seq")
        self.sql("DELETE FROM sb_audit")
        marks = ", ".join("?" for _ in rows[0])
        for i, row in enumerate(rows, start=1):
            self.sql(f"INSERT INTO sb_audit VALUES ({marks})", (i, *row[1:]))

    def rows(self) -> list[tuple[Any, ...]]:
        return self.sql("SELECT * FROM sb_audit ORDER BY id")

    def column(self, name: str) -> int:
        found = self.sql("SELECT * FROM sb_audit LIMIT 1")
        names = [d for d in self._names()]
        assert found
        return names.index(name)

    def _names(self) -> list[str]:
        if self.dsn is None:
            with contextlib.closing(sqlite3.connect(self.home / "vault.db")) as conn:
                return [d[1] for d in conn.execute("PRAGMA table_info(sb_audit)").fetchall()]
        rows = self.sql(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'sb_audit'"
            " ORDER BY ordinal_position"
        )
        return [str(r[0]) for r in rows]


def _backends() -> list[Any]:
    return ["sqlite", pytest.param("postgres", marks=pytest.mark.integration)]


@pytest.fixture(params=_backends())
def vault(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cli: Cli,
) -> Iterator[Vault]:
    """A vault with some history: three versions of A, one of B, reads, a checkpoint."""
    with contextlib.ExitStack() as stack:
        dsn = None
        args = ["init", "--key-file", str(tmp_path / "master.key")]
        if request.param == "postgres":
            dsn = stack.enter_context(throwaway_database())
            args += ["--storage", dsn]
        assert cli(*args).status == 0
        assert cli("project", "create", "payments").status == 0
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("SEALBOX_PROJECT", "payments")
        monkeypatch.setenv("SEALBOX_ENV", "dev")
        v = Vault(request.param, tmp_path / "home", dsn, cli)
        for i in range(3):
            v.set("A", f"tamper-canary-{i}")
        v.get("A")
        v.checkpoint()
        v.set("B", "tamper-canary-b")
        v.get("B")
        v.get("A")
        assert cli("audit", "verify").status == 0
        yield v


def _tampered(v: Vault) -> str:
    """`sealbox audit verify` must exit 7; its one error line."""
    result = v.cli("audit", "verify")
    lines = [x for x in result.err.splitlines() if x.startswith("sealbox: error:")]
    assert result.status == 7, result.err
    assert len(lines) == 1
    return lines[0].removeprefix("sealbox: error: audit trail tampered: ")


_KINDS: set[str] = set()


def _detected(kind: str) -> None:
    """Count a detected case, and its kind the first time it is detected."""
    if kind not in _KINDS:
        _KINDS.add(kind)
        record("tamper", "kinds detected", 1)
    record("tamper", "cases", 1)


def test_edit(vault: Vault) -> None:
    seq = vault.seqs()[4]
    vault.sql("UPDATE sb_audit SET actor = 'mallory' WHERE node = 'local' AND seq = ?", (seq,))
    line = _tampered(vault)
    assert f"(seq {seq}): event modified (column actor differs" in line
    _detected("edit")


def test_edit_of_the_record(vault: Vault) -> None:
    """The record and its query column edited alike: the chain's MAC fails."""
    seq = vault.seqs()[3]
    vault.sql(
        "UPDATE sb_audit SET outcome = 'denied',"
        ' event = replace(event, \'"outcome":"allowed"\', \'"outcome":"denied"\')'
        " WHERE node = 'local' AND seq = ?",
        (seq,),
    )
    line = _tampered(vault)
    assert f"(seq {seq}): event seq {seq} modified" in line
    _detected("edit")


def test_delete(vault: Vault) -> None:
    seq = vault.seqs()[3]
    vault.sql("DELETE FROM sb_audit WHERE node = 'local' AND seq = ?", (seq,))
    line = _tampered(vault)
    assert f"(seq {seq + 1}): event deleted (seq {seq} missing before seq {seq + 1})" in line
    _detected("delete")


def test_insert(vault: Vault) -> None:
    rows = vault.rows()
    si, pi = vault.column("seq"), vault.column("path")
    k = 4
    forged = list(rows[k])  # a copy of an event, claiming another path
    forged[pi] = "payments/dev/OTHER"
    event = json.loads(str(forged[si + 1]))
    event["path"] = "payments/dev/OTHER"
    forged[si + 1] = canonical(event).decode()
    vault.rewrite([*rows[:k], tuple(forged), *rows[k:]])
    line = _tampered(vault)
    assert f"(seq {rows[k][si]}): event inserted" in line
    _detected("insert")


def test_reorder(vault: Vault) -> None:
    rows = vault.rows()
    si = vault.column("seq")
    vault.rewrite([*rows[:4], rows[5], rows[4], *rows[6:]])
    line = _tampered(vault)
    assert f"(seq {rows[5][si]}): events reordered (seq {rows[5][si]} stands where" in line
    _detected("reorder")


def test_truncate_tail_after_the_last_checkpoint(vault: Vault) -> None:
    cp = int(vault.sql("SELECT MAX(seq) FROM sb_audit_checkpoints")[0][0])
    last = vault.seqs()[-1]
    vault.sql("DELETE FROM sb_audit WHERE seq > ?", (cp,))
    line = _tampered(vault)
    assert f"db chain 'local': tail truncated (it ends at seq {cp}; the signed head" in line
    assert f"records seq {last}" in line
    _detected("truncate tail")


def test_truncate_tail_and_move_the_head_back(vault: Vault) -> None:
    cp = int(vault.sql("SELECT MAX(seq) FROM sb_audit_checkpoints")[0][0])
    vault.sql("DELETE FROM sb_audit WHERE seq > ?", (cp,))
    (h,) = vault.sql("SELECT hash FROM sb_audit WHERE seq = ?", (cp,))
    vault.sql("UPDATE sb_audit_heads SET seq = ?, hash = ?", (cp, h[0]))
    line = _tampered(vault)
    assert line.startswith("db chain 'local': head modified (bad signature)")
    _detected("truncate tail")


def test_truncate_tail_and_delete_the_head(vault: Vault) -> None:
    cp = int(vault.sql("SELECT MAX(seq) FROM sb_audit_checkpoints")[0][0])
    vault.sql("DELETE FROM sb_audit WHERE seq > ?", (cp,))
    vault.sql("DELETE FROM sb_audit_heads")
    line = _tampered(vault)
    assert line.startswith("db chain 'local': head deleted (the chain has events recorded")
    _detected("truncate tail")


def test_truncate_tail_and_delete_the_head_then_a_write(vault: Vault) -> None:
    """A later honest write must not launder the deleted head."""
    cp = int(vault.sql("SELECT MAX(seq) FROM sb_audit_checkpoints")[0][0])
    vault.sql("DELETE FROM sb_audit WHERE seq > ? AND operation <> 'write'", (cp,))
    vault.sql("DELETE FROM sb_audit WHERE seq > ?", (cp,))
    vault.sql("DELETE FROM sb_audit_heads")
    vault.get("A")
    line = _tampered(vault)
    assert f"head deleted or replaced before seq {cp + 1}" in line
    _detected("truncate tail")


def test_delete_the_last_checkpoint(vault: Vault) -> None:
    cp = int(vault.sql("SELECT MAX(seq) FROM sb_audit_checkpoints")[0][0])
    vault.sql("DELETE FROM sb_audit_checkpoints")
    line = _tampered(vault)
    assert f"checkpoint of seq {cp} deleted (the signed head names it as the newest)" in line
    vault.get("A")  # later honest heads carry the name over: the deletion is not laundered
    assert _tampered(vault) == line
    _detected("delete checkpoint")


def test_delete_a_checkpoint_before_another(vault: Vault) -> None:
    first = int(vault.sql("SELECT MAX(seq) FROM sb_audit_checkpoints")[0][0])
    second = vault.checkpoint()
    vault.sql("DELETE FROM sb_audit_checkpoints WHERE seq = ?", (first,))
    line = _tampered(vault)
    assert f"checkpoint of seq {first} deleted (the db checkpoint 1 of seq {second}" in line
    _detected("delete checkpoint")


def test_delete_everything(vault: Vault) -> None:
    for table in ("sb_audit", "sb_audit_heads", "sb_audit_checkpoints"):
        vault.sql(f"DELETE FROM {table}")
    line = _tampered(vault)
    assert line.startswith("secret payments/dev/A version 1 and 3 more: no write event")
    _detected("delete everything")


def test_delete_the_write_events_only(vault: Vault) -> None:
    """Rewriting the chain without the key fails; so dropping a write's event and
    re-chaining is out of reach — but deleting its row shows up twice."""
    (seq,) = vault.sql(
        "SELECT MAX(seq) FROM sb_audit WHERE operation = 'write' AND path = 'payments/dev/B'"
    )[0]
    vault.sql("DELETE FROM sb_audit WHERE seq = ?", (seq,))
    result = vault.cli("audit", "verify", "--json")
    findings = json.loads(result.out)["findings"]
    assert result.status == 7
    assert any("payments/dev/B version 1: no write event" in f for f in findings)
    _detected("delete")


# -- spools (a SQLite server's) ---------------------------------------------------------------

KILLED = """
import os, sys
from sealbox import factory
from sealbox.model import SecretRef
vault = factory.open_vault(source="api", audit_node="srv")
vault.serve()
drained, after = (int(n) for n in sys.argv[1].split(","))
for _ in range(drained):
    vault.get(SecretRef("payments", "dev", "A"))
vault.audit_commit.store()
for _ in range(after):
    vault.get(SecretRef("payments", "dev", "A"))
os._exit(0)  # killed: the last reads not drained, nothing closed
"""

SERVE = """
from sealbox import factory
vault = factory.open_vault(source="api", audit_node="srv")
vault.serve()
vault.close()
"""


@pytest.fixture
def sqlite_vault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> Iterator[tuple[Vault, Callable[[str, str], None]]]:
    assert cli("init", "--key-file", str(tmp_path / "master.key")).status == 0
    assert cli("project", "create", "payments").status == 0
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEALBOX_PROJECT", "payments")
    monkeypatch.setenv("SEALBOX_ENV", "dev")
    v = Vault("sqlite", tmp_path / "home", None, cli)
    v.set("A", "spool-tamper-canary")

    def run(script: str, reads: str = "0,0") -> None:
        """Run a server process; ``reads``: "drained,undrained" before a KILLED one dies."""
        subprocess.run([sys.executable, "-c", script, reads], env={**os.environ}, check=True)

    yield v, run


def _spool(v: Vault) -> Path:
    (path,) = sorted((v.home / "vault.db.audit-spool").glob("*.spool"))
    return path


def test_spool_edit(sqlite_vault: tuple[Vault, Callable[[str, str], None]]) -> None:
    v, run = sqlite_vault
    run(KILLED, "0,4")
    spool = _spool(v)
    data = bytearray(spool.read_bytes())
    start, end = _records(bytes(data))[1]
    data[end - 3] ^= 0x01
    spool.write_bytes(bytes(data))
    # Before any server starts again: the pending spool is checked, nothing stored.
    line = _tampered(v)
    assert f"{spool}: record 2 (byte {start}) is not an intact spooled event" in line
    # A start stores record 1 and keeps the file aside; verify fails until accepted.
    run(SERVE)
    line = _tampered(v)
    (kept,) = spool.parent.glob("*.rejected")
    assert f"record 2 (byte {start})" in line and f"--accept-rejected {kept.name}" in line
    accepted = v.cli("audit", "verify", "--accept-rejected", kept.name)
    assert accepted.status == 0, accepted.err
    assert f"{kept.name}: accepted by " in accepted.err
    after = v.cli("audit", "log", "--operation", "audit.accept", "--json")
    assert kept.name in json.loads(after.out)[0]["reason"]
    assert v.cli("audit", "verify").status == 0
    _detected("spool edit")


def test_spool_delete(sqlite_vault: tuple[Vault, Callable[[str, str], None]]) -> None:
    v, run = sqlite_vault
    run(KILLED, "0,3")
    spool = _spool(v)
    spool.unlink()
    line = _tampered(v)
    assert line.startswith(f"{spool.name}: the audit spool of chain srv (open at ")
    assert "is missing" in line
    run(SERVE)  # the next start records the loss in the chain; still a finding
    line = _tampered(v)
    assert f"[file: {spool.name}]" in line and "audit.recover" in line
    assert v.cli("audit", "verify", "--accept-rejected", spool.name).status == 0
    assert v.cli("audit", "verify").status == 0
    _detected("spool delete")


@pytest.mark.parametrize("cut", ["boundary", "empty"])
def test_spool_cut(sqlite_vault: tuple[Vault, Callable[[str, str], None]], cut: str) -> None:
    """A killed server's spool cut below what its last drain left (at a record boundary,
    or emptied) is found; the undrained tail alone is out of reach (docs/audit.md)."""
    v, run = sqlite_vault
    run(KILLED, "3,2")
    spool = _spool(v)
    data = spool.read_bytes()
    spans = _records(data)
    at = spans[1][1] if cut == "boundary" else 0  # keep records 1-2 of the drained 3
    spool.write_bytes(data[:at])
    line = _tampered(v)
    assert f"{spool}: cut short: it ends at byte {at}, but its last drain stored seq" in line
    assert f"up to byte {spans[2][1]}" in line
    run(SERVE)
    line = _tampered(v)
    (kept,) = spool.parent.glob("*.rejected")
    assert "cut short" in line and f"--accept-rejected {kept.name}" in line
    assert v.cli("audit", "verify", "--accept-rejected", kept.name).status == 0
    assert v.cli("audit", "verify").status == 0
    _detected("spool cut")


def test_a_clean_stop_and_a_restart_leave_nothing_to_flag(
    sqlite_vault: tuple[Vault, Callable[[str, str], None]],
) -> None:
    v, run = sqlite_vault
    run(SERVE)
    result = v.cli("audit", "verify")
    assert result.status == 0 and "spool" not in result.err
    run(KILLED, "0,2")
    run(SERVE)  # stores the killed server's two events
    result = v.cli("audit", "verify")
    assert result.status == 0 and "spool" not in result.err
    run(KILLED, "3,0")  # killed right after a drain: its spool holds only stored events
    result = v.cli("audit", "verify")
    assert result.status == 0, result.err
    assert "without closing this spool" in result.err  # a notice: nothing to account for
    run(SERVE)
    result = v.cli("audit", "verify")
    assert result.status == 0 and "spool" not in result.err
    record("tamper", "cases", 1)


def test_accepting_something_that_is_not_a_rejected_spool_is_refused(
    sqlite_vault: tuple[Vault, Callable[[str, str], None]],
) -> None:
    v, _ = sqlite_vault
    result = v.cli("audit", "verify", "--accept-rejected", "nothing.rejected")
    assert result.status == 2
    assert "is not a rejected or missing audit spool" in result.err
    assert v.cli("audit", "log", "--operation", "audit.accept", "--json").out.strip() == "[]"
    record("tamper", "cases", 1)
