"""``sealbox kms per-version``, driven in-process."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli_harness import Cli

from sealbox.cli.exit_codes import EXIT_STATUS
from sealbox.errors import InvalidInput


def test_on_write_read_migrate_off(keyfile_vault: Path, cli: Cli) -> None:
    r = cli("kms", "per-version", "--json")
    assert r.status == 0 and json.loads(r.out) == {"setting": None, "versions": {}}
    r = cli("kms", "per-version", "--provider", "local", "--cache-age", "30s", "--cache-uses", "5")
    assert r.status == 0, r.err
    assert cli("secret", "set", "SIGNING_KEY", stdin="v1").status == 0
    assert cli("secret", "meta", "SIGNING_KEY", "--classification", "critical").status == 0
    assert cli("secret", "set", "SIGNING_KEY", stdin="v2").status == 0
    status = json.loads(cli("kms", "per-version", "--json").out)
    assert status["setting"]["cache_max_age"] == 30.0
    assert status["setting"]["cache_max_uses"] == 5
    assert status["versions"] == {"kms:local": 1}
    assert cli("secret", "get", "SIGNING_KEY").out.strip() == "v2"
    r = cli("kms", "per-version", "--migrate-to", "kek", "--json")
    assert r.status == 0 and json.loads(r.out)["versions"] == {}
    assert "re-wrapped 1/1" in r.err
    assert cli("secret", "get", "SIGNING_KEY").out.strip() == "v2"
    r = cli("kms", "per-version", "--off", "--json")
    assert r.status == 0 and json.loads(r.out)["setting"] is None


def test_bad_options_change_nothing(keyfile_vault: Path, cli: Cli) -> None:
    r = cli("kms", "per-version", "--provider", "nope")
    assert r.status == EXIT_STATUS[InvalidInput.code] and "nope" in r.err
    r = cli("kms", "per-version", "--provider", "local", "--cache-age", "soon")
    assert r.status == EXIT_STATUS[InvalidInput.code]
    r = cli("kms", "per-version", "--provider", "local", "--off")
    assert r.status == EXIT_STATUS[InvalidInput.code]
    assert json.loads(cli("kms", "per-version", "--json").out)["setting"] is None
