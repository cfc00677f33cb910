"""``sealbox audit …`` through the CLI: verify (exit 0 / 7), hash, who-read, log, fail-open."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest

from sealbox.cli.main import main

VALUE = "cli-canary-88e1f0"


class _Stdin(io.TextIOWrapper):
    def isatty(self) -> bool:
        return False


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", _Stdin(io.BytesIO(text.encode())))


def _set(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    _stdin(monkeypatch, value + "\n")
    assert main(["secret", "set", name]) == 0


def test_verify_hash_who_read_and_log(
    keyfile_vault: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    _set(monkeypatch, "DB_PASSWORD", "first")
    _set(monkeypatch, "DB_PASSWORD", VALUE)
    assert main(["secret", "get", "DB_PASSWORD", "--version", "2"]) == 0
    capfd.readouterr()

    assert main(["audit", "verify"]) == 0
    assert "audit trail intact" in capfd.readouterr().err

    _stdin(monkeypatch, VALUE + "\n")
    assert main(["audit", "hash"]) == 0
    digest = capfd.readouterr().out.strip()
    assert len(digest) == 64 and VALUE not in digest

    assert main(["audit", "who-read", "payments/dev/DB_PASSWORD", "--version", "2", "--json"]) == 0
    found = json.loads(capfd.readouterr().out)
    assert [(e["operation"], e["versions"][0]["version"]) for e in found] == [("reveal", 2)]
    assert found[0]["versions"][0]["value_hmac"] == digest

    _stdin(monkeypatch, VALUE + "\n")
    assert main(["audit", "who-read", "--value", "-", "--json"]) == 0
    assert len(json.loads(capfd.readouterr().out)) == 1
    assert main(["audit", "who-read", "--value", VALUE]) == 2  # never on the command line

    assert main(["audit", "log", "--secret", "payments/dev/DB_PASSWORD", "--json"]) == 0
    ops = [e["operation"] for e in json.loads(capfd.readouterr().out)]
    assert ops == ["reveal", "write", "write"]
    assert main(["audit", "log", "--operation", "write", "--since", "1h"]) == 0  # a table
    assert "write" in capfd.readouterr().out
    assert main(["audit", "log", "--operation", "write", "--since", "1h", "--json"]) == 0
    assert {e["path"] for e in json.loads(capfd.readouterr().out)} == {"payments/dev/DB_PASSWORD"}
    assert main(["audit", "log", "--since", "yesterday"]) == 2

    assert main(["audit", "checkpoint"]) == 0
    assert "checkpoint: node local" in capfd.readouterr().err
    out = capfd.readouterr()
    assert VALUE not in out.out + out.err


def test_verify_exits_7_with_one_line_on_tampering(
    keyfile_vault: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    _set(monkeypatch, "A", "one")
    _set(monkeypatch, "A", "two")
    with sqlite3.connect(keyfile_vault / "vault.db") as conn:
        conn.execute("DELETE FROM sb_audit WHERE seq = 2")
    capfd.readouterr()
    assert main(["audit", "verify"]) == 7
    err = capfd.readouterr().err
    first = [line for line in err.splitlines() if line.startswith("sealbox: error:")]
    assert first == [
        "sealbox: error: audit trail tampered: db chain 'local': row 3 (seq 3): "
        "event deleted (seq 2 missing before seq 3)"
    ]


def test_fail_closed_and_fail_open_through_the_cli(
    keyfile_vault: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    _set(monkeypatch, "A", VALUE)
    monkeypatch.setenv("SEALBOX_AUDIT_SINKS", "file:/dev/full")
    capfd.readouterr()
    assert main(["secret", "get", "A"]) == 8
    out = capfd.readouterr()
    assert VALUE not in out.out and "no audit sink accepted" in out.err
    assert main(["--audit-fail-open", "secret", "get", "A"]) == 0
    out = capfd.readouterr()
    assert out.out == VALUE
    assert "WARNING: audit fail-open is on" in out.err


def test_audit_commands_need_admin_on_sys_audit(
    keyfile_vault: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # The local owner holds root; the policy engine denies others (unit-tested). Here:
    # the sinks named in config.toml are validated.
    with (keyfile_vault / "config.toml").open("a") as fh:
        fh.write('\n[audit]\nsinks = ["db", "carrier-pigeon"]\n')
    assert main(["audit", "log"]) == 2
    assert "invalid audit sink 'carrier-pigeon'" in capfd.readouterr().err
