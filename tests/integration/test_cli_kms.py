"""``sealbox kms list/status/add/remove`` on an embedded vault, with local providers (the
HSM, Transit and cloud families have their own tests under tests/unit/kms/)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from tests.cli_harness import Cli
from tests.conftest import PASSPHRASE

EXIT_OK = 0


@pytest.fixture
def vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli) -> Path:
    monkeypatch.setenv("SEALBOX_PASSPHRASE", PASSPHRASE)
    assert cli("init").status == EXIT_OK
    assert cli("project", "create", "app").status == EXIT_OK
    r = cli("secret", "set", "DB", "-p", "app", "-e", "dev", stdin="s3cret")
    assert r.status == EXIT_OK, r.err
    return tmp_path / "home"


def _events(home: Path, operation: str) -> list[tuple[str, str, str]]:
    with sqlite3.connect(home / "vault.db") as conn:
        rows = conn.execute(
            "SELECT outcome, path, reason FROM sb_audit WHERE operation = ? ORDER BY seq",
            (operation,),
        ).fetchall()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def test_add_a_key_file_provider_then_drop_the_passphrase(
    cli: Cli, vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "second.key"
    r = cli("kms", "add", "disk", "--kind", "local", "--option", "method=keyfile",
            "--option", f"key_file={key}")  # fmt: skip
    assert r.status == EXIT_OK, r.err
    assert key.stat().st_mode & 0o777 == 0o600
    listed = json.loads(cli("kms", "list", "--json").out)
    assert [p["name"] for p in listed["providers"]] == ["local", "disk"]
    assert listed["keks"][0]["versions"] == 1
    status = cli("kms", "status", "--json")
    assert status.status == EXIT_OK, status.out
    found = json.loads(status.out)
    assert found["problems"] == []
    by_name = {p["name"]: p for p in found["providers"]}
    assert by_name["disk"]["opens"] == by_name["disk"]["wraps"] != []
    assert _events(vault, "kms.add")[0][:2] == ("allowed", "sys/kms/disk")

    # The key file opens the vault on its own: the passphrase provider can go.
    assert cli("kms", "remove", "local", "--yes").status == EXIT_OK
    monkeypatch.delenv("SEALBOX_PASSPHRASE")
    r = cli("secret", "get", "DB", "-p", "app", "-e", "dev")
    assert r.status == EXIT_OK, r.err
    assert r.out.strip() == "s3cret"
    # The last provider that opens the KEKs cannot be removed.
    r = cli("kms", "remove", "disk", "--yes")
    assert r.status != EXIT_OK
    assert "only one" in r.err
    assert _events(vault, "kms.remove")[-1][0] == "error"
    r = cli("secret", "get", "DB", "-p", "app", "-e", "dev")
    assert r.status == EXIT_OK and r.out.strip() == "s3cret"


def test_status_shows_a_provider_that_no_longer_opens_its_wrapping(
    cli: Cli, vault: Path, tmp_path: Path
) -> None:
    key = tmp_path / "second.key"
    assert cli("kms", "add", "disk", "--kind", "local", "--option", "method=keyfile",
               "--option", f"key_file={key}").status == EXIT_OK  # fmt: skip
    # Someone replaced the key file with another key: config and wrapping disagree.
    key.unlink()
    import base64
    import os

    key.write_bytes(base64.b64encode(os.urandom(32)) + b"\n")
    key.chmod(0o600)
    r = cli("kms", "status", "--json")
    assert r.status == 1
    found = json.loads(r.out)
    assert any("disk" in p and "does not open" in p for p in found["problems"])


def test_bad_input_changes_nothing(cli: Cli, vault: Path) -> None:
    for args, said in [
        (("kms", "add", "Bad Name", "--kind", "local"), "invalid key provider name"),
        (("kms", "add", "x", "--kind", "nope"), "unknown key provider kind"),
        (("kms", "add", "x", "--kind", "local", "--option", "oops"), "KEY=VALUE"),
        (("kms", "add", "x", "--kind", "local", "--option", "pin=1"), "unknown option"),
        (("kms", "add", "local", "--kind", "local"), "already exists"),
        (("kms", "remove", "ghost", "--yes"), "does not exist"),
    ]:
        r = cli(*args)
        assert r.status != EXIT_OK, args
        assert said in r.err, (args, r.err)
    listed = json.loads(cli("kms", "list", "--json").out)
    assert [p["name"] for p in listed["providers"]] == ["local"]
