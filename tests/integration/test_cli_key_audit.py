"""``unlock``, ``lock`` and ``passphrase change`` are audited core operations (issue 11).

Each leaves exactly one event — allowed on success, denied for a wrong passphrase —
visible in ``sealbox audit log`` and accepted by ``sealbox audit verify``; no event and no
stored row holds a passphrase or the session secret.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from tests.cli_harness import Cli
from tests.conftest import PASSPHRASE

EXIT_OK, EXIT_AUTH = 0, 4
WRONG = "not the passphrase at all"
NEW = "a brand new passphrase"
KEY_OPS = ("unlock", "lock", "passphrase.change")


@pytest.fixture
def vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli) -> Path:
    monkeypatch.setenv("SEALBOX_PASSPHRASE", PASSPHRASE)
    assert cli("init").status == EXIT_OK
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


def key_events(cli: Cli) -> list[dict[str, Any]]:
    args = ["audit", "log", "--json", "--limit", "1000"]
    for op in KEY_OPS:
        args += ["--operation", op]
    r = cli(*args)
    assert r.status == EXIT_OK, r.err
    events: list[dict[str, Any]] = json.loads(r.out)
    return events


def stored_audit(home: Path) -> str:
    with sqlite3.connect(home / "vault.db") as conn:
        rows = conn.execute("SELECT * FROM sb_audit").fetchall()
    return repr(rows)


def assert_verifies(cli: Cli) -> None:
    r = cli("audit", "verify")
    assert r.status == EXIT_OK, r.out + r.err


def session_of(out: str) -> str:
    return out.strip().split("=", 1)[1]


def test_unlock_leaves_one_allowed_event(vault: Path, cli: Cli) -> None:
    r = cli("unlock", "--for", "1h")
    assert r.status == EXIT_OK, r.err
    session = session_of(r.out)
    [event] = key_events(cli)
    assert (event["operation"], event["outcome"], event["path"]) == (
        "unlock",
        "allowed",
        "sys/sessions",
    )
    assert event["identity"].startswith("local:")
    assert (event["auth_method"], event["source"]) == ("local", "cli")
    session_id = session.removeprefix("sbxsess_").split("_", 1)[0]
    assert session_id in event["reason"]
    secret_part = session.removeprefix("sbxsess_").split("_", 1)[1]
    for text in (json.dumps(event), stored_audit(vault)):
        assert secret_part not in text and PASSPHRASE not in text
    assert_verifies(cli)


def test_wrong_passphrase_on_unlock_is_an_audited_denial(
    vault: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEALBOX_PASSPHRASE", WRONG)
    r = cli("unlock")
    assert r.status == EXIT_AUTH
    assert "export" not in r.out
    monkeypatch.setenv("SEALBOX_PASSPHRASE", PASSPHRASE)
    [event] = key_events(cli)
    assert (event["operation"], event["outcome"], event["reason"]) == (
        "unlock",
        "denied",
        "bad credentials",
    )
    with sqlite3.connect(vault / "vault.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM sb_sessions").fetchone()[0] == 0
    for text in (json.dumps(event), stored_audit(vault)):
        assert WRONG not in text and PASSPHRASE not in text
    assert_verifies(cli)


def test_lock_leaves_one_allowed_event(vault: Path, cli: Cli) -> None:
    assert cli("unlock").status == EXIT_OK
    assert cli("unlock").status == EXIT_OK
    r = cli("lock")
    assert r.status == EXIT_OK, r.err
    locks = [e for e in key_events(cli) if e["operation"] == "lock"]
    assert [(e["outcome"], e["path"], e["reason"]) for e in locks] == [
        ("allowed", "sys/sessions", "2 sessions ended")
    ]
    assert_verifies(cli)


def test_passphrase_change_leaves_one_allowed_event(
    vault: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("unlock").status == EXIT_OK
    monkeypatch.setenv("SEALBOX_NEW_PASSPHRASE", NEW)
    r = cli("passphrase", "change")
    assert r.status == EXIT_OK, r.err
    monkeypatch.setenv("SEALBOX_PASSPHRASE", NEW)
    changes = [e for e in key_events(cli) if e["operation"] == "passphrase.change"]
    assert [(e["outcome"], e["path"]) for e in changes] == [("allowed", "sys/keys")]
    assert "sessions ended" in changes[0]["reason"]
    for text in (json.dumps(changes), stored_audit(vault)):
        assert NEW not in text and PASSPHRASE not in text
    assert_verifies(cli)


def test_wrong_old_passphrase_on_change_is_an_audited_denial(
    vault: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEALBOX_PASSPHRASE", WRONG)
    monkeypatch.setenv("SEALBOX_NEW_PASSPHRASE", NEW)
    assert cli("passphrase", "change").status == EXIT_AUTH
    monkeypatch.setenv("SEALBOX_PASSPHRASE", PASSPHRASE)
    [event] = key_events(cli)
    assert (event["operation"], event["outcome"], event["reason"]) == (
        "passphrase.change",
        "denied",
        "bad credentials",
    )
    for text in (json.dumps(event), stored_audit(vault)):
        assert WRONG not in text and NEW not in text and PASSPHRASE not in text
    # The old passphrase still opens the vault: nothing was changed.
    assert cli("unlock").status == EXIT_OK
    assert_verifies(cli)


def test_a_key_file_vault_refuses_passphrase_change_with_an_error_event(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("init", "--key-file", str(tmp_path / "master.key")).status == EXIT_OK
    monkeypatch.setenv("SEALBOX_PASSPHRASE", "x")
    monkeypatch.setenv("SEALBOX_NEW_PASSPHRASE", NEW)
    r = cli("passphrase", "change")
    assert r.status != EXIT_OK and "not protected by a passphrase" in r.err
    [event] = key_events(cli)
    assert (event["operation"], event["outcome"], event["reason"]) == (
        "passphrase.change",
        "error",
        "invalid_input",
    )
    assert_verifies(cli)
