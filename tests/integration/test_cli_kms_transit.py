"""``sealbox kms add --kind transit`` on an embedded vault, against a real ``bao server
-dev`` (tests/unit/kms/bao.py): the vault moves from its passphrase onto Transit and then
opens with only the Transit token."""

from __future__ import annotations

import json
import secrets

import pytest
from tests.cli_harness import Cli
from tests.conftest import PASSPHRASE
from tests.unit.kms import bao

EXIT_OK = 0


def test_a_vault_moves_from_its_passphrase_onto_transit(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = bao.bao_server()
    key = "cli-" + secrets.token_hex(4)
    monkeypatch.setenv("SEALBOX_PASSPHRASE", PASSPHRASE)
    assert cli("init").status == EXIT_OK
    assert cli("project", "create", "app").status == EXIT_OK
    assert cli("secret", "set", "DB", "-p", "app", "-e", "dev", stdin="s3cret").status == EXIT_OK

    # No token in the environment: refused, nothing added.
    r = cli("kms", "add", "bao", "--kind", "transit", "--option", f"address={server.address}",
            "--option", f"key={key}", "--option", "create_key=true")  # fmt: skip
    assert r.status != EXIT_OK and "SEALBOX_TRANSIT_TOKEN" in r.err

    monkeypatch.setenv("SEALBOX_TRANSIT_TOKEN", server.token)
    r = cli("kms", "add", "bao", "--kind", "transit", "--option", f"address={server.address}",
            "--option", f"key={key}", "--option", "create_key=true")  # fmt: skip
    assert r.status == EXIT_OK, r.err
    status = cli("kms", "status", "--json")
    assert status.status == EXIT_OK, status.out
    found = {p["name"]: p for p in json.loads(status.out)["providers"]}
    assert found["bao"]["key_id"] == f"transit:transit/{key} v1"
    assert found["bao"]["opens"] == found["bao"]["wraps"] != []
    listed = cli("kms", "list", "--json").out
    assert server.token not in listed and server.token not in status.out

    assert cli("kms", "remove", "local", "--yes").status == EXIT_OK
    monkeypatch.delenv("SEALBOX_PASSPHRASE")
    r = cli("secret", "get", "DB", "-p", "app", "-e", "dev")
    assert r.status == EXIT_OK, r.err
    assert r.out.strip() == "s3cret"

    # Transit refusing the token: the vault stays closed, and says why.
    wrong = "sbtest-wrong-" + secrets.token_hex(8)
    monkeypatch.setenv("SEALBOX_TRANSIT_TOKEN", wrong)
    r = cli("secret", "get", "DB", "-p", "app", "-e", "dev")
    assert r.status != EXIT_OK
    assert "refused the token" in r.err and wrong not in r.err and "s3cret" not in r.out
