"""The ``sealbox`` CLI driven in-process: vault lifecycle, sessions, scopes and secrets.

Every test calls :func:`sealbox.cli.main.main` with an argv list and checks the exit
status (the stable table in ``sealbox.cli.exit_codes``) and what was printed. Values go
in on a fake, non-tty stdin. Key-file vaults are used unless a test is about passphrases
(Argon2id costs a noticeable fraction of a second per derivation).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.cli_harness import Cli

PASSPHRASE = "correct horse battery staple"
NEW_PASSPHRASE = "a whole new passphrase, longer"

EXIT_OK = 0
EXIT_INVALID = 2
EXIT_NOT_FOUND = 3
EXIT_AUTH = 4
EXIT_EXISTS = 5
EXIT_SEALED = 6


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def session_from(stdout: str) -> str:
    line = next(ln for ln in stdout.splitlines() if ln.startswith("export SEALBOX_SESSION="))
    return line.split("=", 1)[1].strip().strip("'\"")


@pytest.fixture
def passphrase_vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli) -> Path:
    """A passphrase vault with project `payments`; SEALBOX_PASSPHRASE is set."""
    monkeypatch.setenv("SEALBOX_PASSPHRASE", PASSPHRASE)
    assert cli("init").status == EXIT_OK
    assert cli("project", "create", "payments").status == EXIT_OK
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEALBOX_PROJECT", "payments")
    monkeypatch.setenv("SEALBOX_ENV", "dev")
    return tmp_path / "home"


# -- init ---------------------------------------------------------------------------------------
def test_init_with_key_file_creates_private_files(cli: Cli, tmp_path: Path, home: Path) -> None:
    key = tmp_path / "keys" / "master.key"
    r = cli("init", "--key-file", str(key))
    assert r.status == EXIT_OK, r.err
    assert key.is_file()
    assert mode(key) == 0o600
    assert mode(home / "vault.db") == 0o600
    assert mode(home / "config.toml") == 0o600
    # The key file holds a key, and the vault works with it.
    assert cli("project", "create", "payments").status == EXIT_OK
    assert cli("secret", "set", "payments/dev/A", stdin="v").status == EXIT_OK
    assert cli("secret", "get", "payments/dev/A").out == "v"


def test_init_twice_is_refused_and_writes_no_new_key(cli: Cli, tmp_path: Path) -> None:
    assert cli("init", "--key-file", str(tmp_path / "one.key")).status == EXIT_OK
    r = cli("init", "--key-file", str(tmp_path / "two.key"))
    assert r.status == EXIT_EXISTS
    assert "already" in r.err
    assert not (tmp_path / "two.key").exists()


def test_init_with_passphrase_from_environment(passphrase_vault: Path, cli: Cli) -> None:
    assert mode(passphrase_vault / "vault.db") == 0o600
    assert cli("secret", "set", "A", stdin="pass-protected").status == EXIT_OK
    assert cli("secret", "get", "A").out == "pass-protected"
    # The passphrase itself is nowhere on disk in the clear.
    for f in passphrase_vault.iterdir():
        assert PASSPHRASE.encode() not in f.read_bytes(), f


def test_init_refuses_an_existing_key_file_and_can_be_retried(
    cli: Cli, tmp_path: Path, home: Path
) -> None:
    existing = tmp_path / "existing.key"
    existing.write_bytes(b"do not overwrite me\n")
    r = cli("init", "--key-file", str(existing))
    assert r.status == EXIT_INVALID
    assert existing.read_bytes() == b"do not overwrite me\n"
    assert not (home / "config.toml").exists()
    assert cli("init", "--key-file", str(tmp_path / "fresh.key")).status == EXIT_OK
    assert cli("project", "create", "payments").status == EXIT_OK


def test_init_with_relative_storage_path_works_from_another_directory(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    monkeypatch.chdir(first)
    r = cli("init", "--storage", "relative-vault.db", "--key-file", "relative.key")
    assert r.status == EXIT_OK, r.err
    monkeypatch.chdir(second)
    r = cli("project", "create", "payments")
    assert r.status == EXIT_OK, f"the vault is not found from another directory: {r.err}"
    assert cli("secret", "set", "payments/dev/A", stdin="v").status == EXIT_OK
    assert not (second / "relative-vault.db").exists()


def test_init_without_any_passphrase_source_is_invalid_input(cli: Cli, home: Path) -> None:
    r = cli("init")
    assert r.status == EXIT_INVALID
    assert "SEALBOX_PASSPHRASE" in r.err
    assert not (home / "config.toml").exists()


# -- passphrases and sessions --------------------------------------------------------------
def test_wrong_passphrase_is_refused_and_changes_nothing(
    passphrase_vault: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("secret", "set", "A", stdin="original").status == EXIT_OK
    monkeypatch.setenv("SEALBOX_PASSPHRASE", "not the passphrase")
    r = cli("secret", "set", "A", stdin="attacker")
    assert r.status == EXIT_AUTH
    assert "passphrase" in r.err
    assert "attacker" not in r.err
    assert cli("secret", "get", "A").status == EXIT_AUTH
    assert cli("unlock").status == EXIT_AUTH
    monkeypatch.setenv("SEALBOX_PASSPHRASE", PASSPHRASE)
    hist = json.loads(cli("secret", "history", "A", "--json").out)
    assert [h["version"] for h in hist] == [1]
    assert cli("secret", "get", "A").out == "original"


def test_locked_vault_without_passphrase_or_tty_is_sealed_with_hint(
    passphrase_vault: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("secret", "set", "A", stdin="v").status == EXIT_OK
    monkeypatch.delenv("SEALBOX_PASSPHRASE")
    for args in (("secret", "get", "A"), ("secret", "set", "A", "--if-version", "1")):
        r = cli(*args, stdin="new")
        assert r.status == EXIT_SEALED, args
        assert "locked" in r.err
        assert "sealbox unlock" in r.err  # the hint
    monkeypatch.setenv("SEALBOX_PASSPHRASE", PASSPHRASE)
    assert cli("secret", "get", "A").out == "v"


def test_unlock_session_then_lock(
    passphrase_vault: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("secret", "set", "A", stdin="before").status == EXIT_OK
    r = cli("unlock", "--for", "1h")
    assert r.status == EXIT_OK, r.err
    assert r.out.startswith("export SEALBOX_SESSION=")
    token = session_from(r.out)
    # The session value is not stored anywhere on disk.
    for f in passphrase_vault.iterdir():
        assert token.encode() not in f.read_bytes()
    monkeypatch.delenv("SEALBOX_PASSPHRASE")
    monkeypatch.setenv("SEALBOX_SESSION", token)
    assert cli("secret", "get", "A").out == "before"
    assert cli("secret", "set", "A", stdin="during").status == EXIT_OK
    assert cli("secret", "get", "A").out == "during"
    r = cli("lock")
    assert r.status == EXIT_OK
    r = cli("secret", "get", "A")
    assert r.status == EXIT_SEALED
    assert "unlock" in r.err
    assert "during" not in r.err


@pytest.mark.slow
def test_expired_session_is_sealed(
    passphrase_vault: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("secret", "set", "A", stdin="v").status == EXIT_OK
    r = cli("unlock", "--for", "1s")
    assert r.status == EXIT_OK
    monkeypatch.delenv("SEALBOX_PASSPHRASE")
    monkeypatch.setenv("SEALBOX_SESSION", session_from(r.out))
    time.sleep(1.2)
    r = cli("secret", "get", "A")
    assert r.status == EXIT_SEALED
    assert "expired" in r.err


def test_tampered_session_value_fails_authentication(
    passphrase_vault: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("secret", "set", "A", stdin="v").status == EXIT_OK
    token = session_from(cli("unlock").out)
    monkeypatch.delenv("SEALBOX_PASSPHRASE")
    # sbxsess_<id>_<secret>: the secret is base64url and may itself hold "_". Its middle
    # character carries six bits of the key (the last one carries padding bits too).
    kind, session_id, secret = token.split("_", 2)
    prefix = f"{kind}_{session_id}"
    middle = len(secret) // 2
    flipped = "B" if secret[middle] != "B" else "C"
    tampered = f"{prefix}_{secret[:middle]}{flipped}{secret[middle + 1 :]}"
    for bad in (tampered, "garbage", token[:-5]):
        monkeypatch.setenv("SEALBOX_SESSION", bad)
        r = cli("secret", "get", "A")
        assert r.status == EXIT_AUTH, (bad, r.err)
        assert r.out == ""
    monkeypatch.setenv("SEALBOX_SESSION", token)
    assert cli("secret", "get", "A").out == "v"


def test_passphrase_change(
    passphrase_vault: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = {"A": "alpha", "B": "beta\nwith newline"}
    for name, value in values.items():
        assert cli("secret", "set", name, "--keep-newline", stdin=value).status == EXIT_OK
    monkeypatch.setenv("SEALBOX_NEW_PASSPHRASE", NEW_PASSPHRASE)
    r = cli("passphrase", "change")
    assert r.status == EXIT_OK, r.err
    monkeypatch.delenv("SEALBOX_NEW_PASSPHRASE")
    # The old passphrase no longer opens the vault.
    assert cli("secret", "get", "A").status == EXIT_AUTH
    monkeypatch.setenv("SEALBOX_PASSPHRASE", NEW_PASSPHRASE)
    for name, value in values.items():
        assert cli("secret", "get", name).out == value


def test_passphrase_change_with_wrong_old_passphrase_changes_nothing(
    passphrase_vault: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("secret", "set", "A", stdin="v").status == EXIT_OK
    monkeypatch.setenv("SEALBOX_PASSPHRASE", "wrong")
    monkeypatch.setenv("SEALBOX_NEW_PASSPHRASE", NEW_PASSPHRASE)
    assert cli("passphrase", "change").status == EXIT_AUTH
    monkeypatch.delenv("SEALBOX_NEW_PASSPHRASE")
    monkeypatch.setenv("SEALBOX_PASSPHRASE", PASSPHRASE)
    assert cli("secret", "get", "A").out == "v"


# -- setup, projects, environments ---------------------------------------------------------------
def test_setup_writes_binding_without_secrets_and_creates_project(
    keyfile_vault: Path, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("secret", "set", "TOKEN", stdin="s3cr3t-value").status == EXIT_OK
    app = tmp_path / "app"
    app.mkdir()
    r = cli("setup", "--project", "shop", "--env", "staging", "--dir", str(app))
    assert r.status == EXIT_OK, r.err
    toml = (app / "sealbox.toml").read_text()
    import tomllib

    data = tomllib.loads(toml)
    assert data["project"] == "shop"
    assert data["env"] == "staging"
    assert "s3cr3t-value" not in toml
    assert "shop" in json.loads(cli("project", "list", "--json").out)
    assert set(json.loads(cli("env", "list", "-p", "shop", "--json").out)) == {
        "dev",
        "staging",
        "prod",
    }
    # The directory's binding is used when nothing else selects a scope.
    monkeypatch.delenv("SEALBOX_PROJECT")
    monkeypatch.delenv("SEALBOX_ENV")
    monkeypatch.chdir(app)
    assert cli("secret", "set", "SHOP_KEY", stdin="shop-value").status == EXIT_OK
    assert cli("secret", "get", "shop/staging/SHOP_KEY").out == "shop-value"


def test_setup_with_missing_environment_is_not_found(keyfile_vault: Path, cli: Cli) -> None:
    r = cli("setup", "--project", "payments", "--env", "qa")
    assert r.status == EXIT_NOT_FOUND
    assert "env create" in r.err
    assert not (keyfile_vault.parent / "sealbox.toml").exists()


def test_env_create_and_list(keyfile_vault: Path, cli: Cli) -> None:
    assert cli("env", "create", "qa", "-p", "payments").status == EXIT_OK
    envs = json.loads(cli("env", "list", "-p", "payments", "--json").out)
    assert set(envs) == {"dev", "staging", "prod", "qa"}
    r = cli("env", "list")  # project from SEALBOX_PROJECT
    assert r.status == EXIT_OK
    for e in envs:
        assert e in r.out
    assert cli("env", "create", "qa", "-p", "payments").status == EXIT_EXISTS
    assert cli("env", "create", "qa", "-p", "nosuch").status == EXIT_NOT_FOUND
    assert cli("secret", "set", "payments/qa/A", stdin="in qa").status == EXIT_OK
    assert cli("secret", "get", "A", "-e", "qa").out == "in qa"


def test_project_create_with_custom_environments(keyfile_vault: Path, cli: Cli) -> None:
    assert cli("project", "create", "web", "--env", "dev", "--env", "live").status == EXIT_OK
    assert set(json.loads(cli("env", "list", "-p", "web", "--json").out)) == {"dev", "live"}
    assert cli("project", "create", "web").status == EXIT_EXISTS
    assert cli("project", "list").out.split() == ["payments", "web"]


def test_project_isolation(keyfile_vault: Path, cli: Cli, tmp_path: Path) -> None:
    assert cli("secret", "set", "DEV_ONLY", stdin="dev-only-value").status == EXIT_OK
    assert cli("secret", "set", "SHARED", "-e", "prod", stdin="prod-shared").status == EXIT_OK
    assert cli("secret", "set", "SHARED", stdin="dev-shared").status == EXIT_OK

    assert cli("secret", "get", "DEV_ONLY", "-e", "prod").status == EXIT_NOT_FOUND
    assert cli("secret", "get", "payments/prod/DEV_ONLY").status == EXIT_NOT_FOUND
    assert cli("secret", "get", "SHARED", "-e", "prod").out == "prod-shared"
    assert cli("secret", "get", "SHARED").out == "dev-shared"

    listed = json.loads(cli("secret", "list", "-e", "prod", "--json").out)
    assert [s["name"] for s in listed] == ["SHARED"]
    r = cli("secret", "list", "-e", "prod", "--reveal")
    assert "DEV_ONLY" not in r.out
    assert "dev-only-value" not in r.out
    assert "dev-shared" not in r.out

    exported = json.loads(cli("export", "-e", "prod", "--format", "json").out)
    assert exported == {"SHARED": "prod-shared"}
    assert cli("export", "-e", "prod", "--only", "DEV_ONLY").status == EXIT_NOT_FOUND

    # Another project does not see payments' secrets either.
    assert cli("project", "create", "other").status == EXIT_OK
    assert cli("secret", "get", "other/dev/SHARED").status == EXIT_NOT_FOUND
    assert json.loads(cli("export", "-p", "other", "-e", "dev", "--format", "json").out) == {}

    # `run` (a subprocess: it replaces the process) sees prod's values only.
    exe = shutil.which("sealbox", path=os.path.dirname(sys.executable))
    assert exe is not None
    dump = (
        "import json, os; print(json.dumps({k: os.environ.get(k) for k in ('DEV_ONLY', 'SHARED')}))"
    )
    proc = subprocess.run(
        [exe, "run", "-e", "prod", "--", sys.executable, "-c", dump],
        capture_output=True,
        text=True,
        env={**os.environ, "SEALBOX_ENV": "dev"},
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"DEV_ONLY": None, "SHARED": "prod-shared"}


# -- set and get ---------------------------------------------------------------------------------------
def test_set_from_stdin_strips_one_trailing_newline(
    keyfile_vault: Path, cli: Cli, tmp_path: Path
) -> None:
    from sealbox.factory import open_vault
    from sealbox.model import SecretRef

    cases = {
        "ONE": (b"value\n", b"value"),
        "CRLF": (b"value\r\n", b"value"),
        "TWO": (b"value\n\n", b"value\n"),
        "NONE": (b"value", b"value"),
        "INNER": (b"line1\nline2\n", b"line1\nline2"),
        "SPACES": (b"  padded  \n", b"  padded  "),
    }
    for name, (raw, _) in cases.items():
        r = cli("secret", "set", name, stdin=raw)
        assert r.status == EXIT_OK, r.err
    assert cli("secret", "set", "KEPT", "--keep-newline", stdin=b"value\n").status == EXIT_OK
    payload = b"\x00\x01binary\xff\xfe\r\n trailing \n\n"
    (tmp_path / "blob").write_bytes(payload)
    assert cli("secret", "set", "FILE", "--from-file", str(tmp_path / "blob")).status == EXIT_OK

    vault = open_vault()
    try:
        for name, (_, stored) in cases.items():
            got = vault.get(SecretRef("payments", "dev", name)).value.reveal_bytes()
            assert got == stored, name
        kept = vault.get(SecretRef("payments", "dev", "KEPT")).value.reveal_bytes()
        assert kept == b"value\n"
        from_file = vault.get(SecretRef("payments", "dev", "FILE")).value.reveal_bytes()
        assert from_file == payload
    finally:
        vault.close()


def test_set_from_missing_file_is_invalid(keyfile_vault: Path, cli: Cli, tmp_path: Path) -> None:
    r = cli("secret", "set", "A", "--from-file", str(tmp_path / "nope"))
    assert r.status == EXIT_INVALID
    assert json.loads(cli("secret", "list", "--json").out) == []


def test_value_on_argv_warns_about_shell_history(keyfile_vault: Path, cli: Cli) -> None:
    r = cli("secret", "set", "A", "argv-value")
    assert r.status == EXIT_OK
    assert "history" in r.err
    assert "argv-value" not in r.err
    assert r.out == ""
    assert cli("secret", "get", "A").out == "argv-value"


def test_set_and_stdin_quiet_no_history_warning(keyfile_vault: Path, cli: Cli) -> None:
    r = cli("secret", "set", "A", stdin="piped")
    assert r.status == EXIT_OK
    assert "history" not in r.err
    assert "piped" not in r.err + r.out


def test_get_current_and_specific_versions_and_json(keyfile_vault: Path, cli: Cli) -> None:
    for value in ("one", "two", "three"):
        assert cli("secret", "set", "A", stdin=value).status == EXIT_OK
    assert cli("secret", "get", "A").out == "three"
    assert cli("secret", "get", "A", "--version", "1").out == "one"
    assert cli("secret", "get", "A", "--version", "2").out == "two"
    assert cli("secret", "get", "A", "--version", "4").status == EXIT_NOT_FOUND
    assert cli("secret", "get", "A", "--version", "0").status == EXIT_INVALID
    assert cli("secret", "get", "NOPE").status == EXIT_NOT_FOUND
    data = json.loads(cli("secret", "get", "A", "--json", "--version", "2").out)
    assert data["value"] == "two"
    assert data["version"] == 2
    assert data["path"] == "payments/dev/A"
    set_json = json.loads(cli("secret", "set", "A", "--json", stdin="four").out)
    assert set_json == {"path": "payments/dev/A", "version": 4}


def test_no_scope_selected_is_invalid_input(
    keyfile_vault: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SEALBOX_PROJECT")
    monkeypatch.delenv("SEALBOX_ENV")
    r = cli("secret", "set", "A", stdin="v")
    assert r.status == EXIT_INVALID
    assert "setup" in r.err


def test_full_path_form_works_without_scope(
    keyfile_vault: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SEALBOX_PROJECT")
    monkeypatch.delenv("SEALBOX_ENV")
    assert cli("secret", "set", "payments/dev/NAME", stdin="full-path").status == EXIT_OK
    assert cli("secret", "get", "payments/dev/NAME").out == "full-path"
    assert cli("secret", "get", "payments/prod/NAME").status == EXIT_NOT_FOUND
    hist = json.loads(cli("secret", "history", "payments/dev/NAME", "--json").out)
    assert len(hist) == 1
    r = cli("secret", "meta", "payments/dev/NAME", "--owner", "team-x", "--json")
    assert json.loads(r.out)["meta"]["owner"] == "team-x"
    assert cli("secret", "delete", "payments/dev/NAME").status == EXIT_OK
    assert cli("secret", "undelete", "payments/dev/NAME").status == EXIT_OK
    assert cli("secret", "purge", "payments/dev/NAME", "--yes").status == EXIT_OK
    assert cli("secret", "get", "payments/dev//many").status == EXIT_INVALID
    assert cli("secret", "get", "payments/dev/a:b/x").status == EXIT_INVALID
    assert cli("secret", "get", "payments/NAME").status == EXIT_INVALID


# -- listing, history, rollback, compare-and-set -------------------------------------------------
def test_list_shows_names_never_values_unless_revealed(keyfile_vault: Path, cli: Cli) -> None:
    assert cli("secret", "set", "DB_URL", stdin="pg-value-1234").status == EXIT_OK
    assert cli("secret", "set", "API_KEY", stdin="key-value-5678").status == EXIT_OK
    r = cli("secret", "list")
    assert r.status == EXIT_OK
    assert "DB_URL" in r.out
    assert "API_KEY" in r.out
    for value in ("pg-value-1234", "key-value-5678"):
        assert value not in r.out
        assert value not in r.err
    data = json.loads(cli("secret", "list", "--json").out)
    assert {d["name"] for d in data} == {"DB_URL", "API_KEY"}
    assert all("value" not in d for d in data)
    assert "pg-value-1234" not in json.dumps(data)

    r = cli("secret", "list", "--reveal")
    assert "pg-value-1234" in r.out
    assert "key-value-5678" in r.out
    revealed = json.loads(cli("secret", "list", "--reveal", "--json").out)
    assert {d["name"]: d["value"] for d in revealed} == {
        "DB_URL": "pg-value-1234",
        "API_KEY": "key-value-5678",
    }


def test_history_lists_versions_without_values(keyfile_vault: Path, cli: Cli) -> None:
    for value in ("hist-one", "hist-two", "hist-three"):
        assert cli("secret", "set", "A", stdin=value).status == EXIT_OK
    r = cli("secret", "history", "A")
    assert r.status == EXIT_OK
    assert "hist-" not in r.out
    data = json.loads(cli("secret", "history", "A", "--json").out)
    assert [d["version"] for d in data] == [1, 2, 3]
    assert data[-1]["stage"] == "current"
    assert "hist-" not in json.dumps(data)
    assert cli("secret", "history", "NOPE").status == EXIT_NOT_FOUND


def test_rollback_creates_a_new_version_with_old_content(keyfile_vault: Path, cli: Cli) -> None:
    for value in ("first", "second", "third"):
        assert cli("secret", "set", "A", stdin=value).status == EXIT_OK
    r = cli("secret", "rollback", "A", "1")
    assert r.status == EXIT_OK, r.err
    assert cli("secret", "get", "A").out == "first"
    data = json.loads(cli("secret", "history", "A", "--json").out)
    assert [d["version"] for d in data] == [1, 2, 3, 4]
    assert data[-1]["rollback_of"] == 1
    # Old versions are untouched.
    assert cli("secret", "get", "A", "--version", "3").out == "third"
    assert cli("secret", "rollback", "A", "9").status == EXIT_NOT_FOUND
    assert cli("secret", "rollback", "A", "2", "--if-version", "3").status == EXIT_EXISTS
    assert cli("secret", "rollback", "A", "2", "--if-version", "4").status == EXIT_OK
    assert cli("secret", "get", "A").out == "second"
    assert len(json.loads(cli("secret", "history", "A", "--json").out)) == 5


def test_if_version_compare_and_set(keyfile_vault: Path, cli: Cli) -> None:
    assert cli("secret", "set", "A", "--if-version", "1", stdin="x").status == EXIT_EXISTS
    assert cli("secret", "list", "--json").out.strip() == "[]"
    assert cli("secret", "set", "A", "--if-version", "0", stdin="v1").status == EXIT_OK
    r = cli("secret", "set", "A", "--if-version", "0", stdin="cas-loser-value")
    assert r.status == EXIT_EXISTS
    assert "cas-loser-value" not in r.err
    assert cli("secret", "set", "A", "--if-version", "2", stdin="wrong").status == EXIT_EXISTS
    assert cli("secret", "set", "A", "--if-version", "1", stdin="v2").status == EXIT_OK
    assert cli("secret", "set", "A", "--if-version", "1", stdin="stale").status == EXIT_EXISTS
    assert cli("secret", "set", "A", "--if-version", "-1", stdin="neg").status == EXIT_INVALID
    assert cli("secret", "get", "A").out == "v2"
    data = json.loads(cli("secret", "history", "A", "--json").out)
    assert [d["version"] for d in data] == [1, 2]


# -- bad names --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["A:B", ".A", "A B", "", "A" * 300, "A@B", "É", "A=B"])
def test_invalid_secret_names_are_refused(keyfile_vault: Path, cli: Cli, name: str) -> None:
    r = cli("secret", "set", name, stdin="value")
    assert r.status == EXIT_INVALID, r.err
    assert "name" in r.err
    assert len(r.err) < 1000  # one clear line (plus hint), not a 300-char echo
    assert cli("secret", "list", "--json", "--deleted").out.strip() == "[]"
    assert cli("secret", "get", name).status == EXIT_INVALID


@pytest.mark.parametrize(
    "scope", ["../x", "a::b", "x/y", "..", ":x", "-x", "a" * 64, "x\x00", "x y"]
)
def test_traversal_like_project_and_env_names_are_refused(
    keyfile_vault: Path, cli: Cli, scope: str, tmp_path: Path
) -> None:
    assert cli("project", "create", scope).status == EXIT_INVALID
    assert cli("env", "create", scope, "-p", "payments").status == EXIT_INVALID
    assert cli("secret", "set", "A", "-p", scope, stdin="v").status == EXIT_INVALID
    assert cli("secret", "set", "A", "-e", scope, stdin="v").status == EXIT_INVALID
    assert cli("secret", "list", "-e", scope).status == EXIT_INVALID
    app = tmp_path / "bind"
    app.mkdir()
    assert cli("setup", "-p", scope, "--dir", str(app)).status == EXIT_INVALID
    assert not (app / "sealbox.toml").exists()
    assert cli("project", "list").out.split() == ["payments"]
    assert set(json.loads(cli("env", "list", "-p", "payments", "--json").out)) == {
        "dev",
        "staging",
        "prod",
    }


def test_explicitly_empty_scope_is_refused_not_defaulted(keyfile_vault: Path, cli: Cli) -> None:
    """`-e "$DEPLOY_ENV"` with an unset variable must not silently use the default scope."""
    assert cli("project", "create", "").status == EXIT_INVALID
    r = cli("secret", "set", "A", "-e", "", stdin="meant-for-some-env")
    assert r.status == EXIT_INVALID, "an empty --env fell back to SEALBOX_ENV/sealbox.toml"
    r = cli("secret", "set", "A", "-p", "", stdin="meant-for-some-project")
    assert r.status == EXIT_INVALID, "an empty --project fell back to SEALBOX_PROJECT"
    assert cli("secret", "list", "--json").out.strip() == "[]"


# -- delete, undelete, purge ----------------------------------------------------------------------
def test_delete_undelete_purge(
    keyfile_vault: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("secret", "set", "A", stdin="a1").status == EXIT_OK
    assert cli("secret", "set", "A", stdin="a2").status == EXIT_OK
    assert cli("secret", "set", "B", stdin="b1").status == EXIT_OK

    assert cli("secret", "delete", "A").status == EXIT_OK
    assert cli("secret", "get", "A").status == EXIT_NOT_FOUND
    assert cli("secret", "get", "A", "--version", "1").status == EXIT_NOT_FOUND
    assert [d["name"] for d in json.loads(cli("secret", "list", "--json").out)] == ["B"]
    assert "A" not in cli("secret", "list").out.split()
    deleted = json.loads(cli("secret", "list", "--deleted", "--json").out)
    assert {d["name"]: d["deleted_at"] is not None for d in deleted} == {"A": True, "B": False}
    assert "A" in cli("secret", "list", "--deleted").out.split()
    assert json.loads(cli("export", "--format", "json").out) == {"B": "b1"}
    assert cli("secret", "delete", "A").status == EXIT_NOT_FOUND

    assert cli("secret", "undelete", "A").status == EXIT_OK
    assert cli("secret", "get", "A").out == "a2"
    assert cli("secret", "get", "A", "--version", "1").out == "a1"
    assert cli("secret", "undelete", "A").status == EXIT_EXISTS  # not deleted: a conflict

    # purge without --yes and without a terminal refuses.
    r = cli("secret", "purge", "A")
    assert r.status == EXIT_INVALID
    assert "--yes" in r.err
    assert cli("secret", "get", "A").out == "a2"

    assert cli("secret", "purge", "A", "--yes").status == EXIT_OK
    assert cli("secret", "history", "A").status == EXIT_NOT_FOUND
    assert cli("secret", "get", "A").status == EXIT_NOT_FOUND
    assert cli("secret", "undelete", "A").status == EXIT_NOT_FOUND
    assert [d["name"] for d in json.loads(cli("secret", "list", "--deleted", "--json").out)] == [
        "B"
    ]
    assert cli("secret", "purge", "A", "--yes").status == EXIT_NOT_FOUND
    # A new secret under the purged name starts again at version 1.
    assert json.loads(cli("secret", "set", "A", "--json", stdin="new").out)["version"] == 1


def test_writing_a_deleted_secret(keyfile_vault: Path, cli: Cli) -> None:
    assert cli("secret", "set", "A", stdin="a1").status == EXIT_OK
    assert cli("secret", "delete", "A").status == EXIT_OK
    assert cli("secret", "set", "A", stdin="a2").status == EXIT_OK
    assert cli("secret", "get", "A").out == "a2"
    assert [d["version"] for d in json.loads(cli("secret", "history", "A", "--json").out)] == [1, 2]


# -- metadata --------------------------------------------------------------------------------------------
def test_meta_set_show_clear(keyfile_vault: Path, cli: Cli) -> None:
    assert cli("secret", "set", "DB", stdin="meta-secret-value").status == EXIT_OK
    r = cli(
        "secret",
        "meta",
        "DB",
        "--owner",
        "team-payments",
        "--purpose",
        "orders database",
        "--classification",
        "critical",
        "--rotate-every",
        "90d",
        "--rotation-method",
        "manual",
        "--expires",
        "2027-01-01",
        "--depends-on",
        "checkout-api",
        "--depends-on",
        "billing",
        "--contact",
        "oncall@example.com",
        "--upstream",
        "rds",
        "--tag",
        "pci",
        "--tag",
        "db",
        "--json",
    )
    assert r.status == EXIT_OK, r.err
    meta = json.loads(r.out)["meta"]
    assert meta["owner"] == "team-payments"
    assert meta["purpose"] == "orders database"
    assert meta["classification"] == "critical"
    assert meta["rotate_every_days"] == 90
    assert meta["rotation_method"] == "manual"
    assert meta["expires"].startswith("2027-01-01")
    assert meta["depends_on"] == ["checkout-api", "billing"]
    assert meta["contact"] == "oncall@example.com"
    assert meta["upstream"] == "rds"
    assert meta["tags"] == ["pci", "db"]

    # Show (no changes) returns the same, and the table shows fields but not the value.
    assert json.loads(cli("secret", "meta", "DB", "--json").out)["meta"] == meta
    shown = cli("secret", "meta", "DB")
    assert shown.status == EXIT_OK
    assert "team-payments" in shown.out
    assert "meta-secret-value" not in shown.out
    # The listing shows owner and classification.
    listing = cli("secret", "list")
    assert "team-payments" in listing.out
    assert "critical" in listing.out
    assert json.loads(cli("secret", "list", "--json").out)[0]["meta"] == meta
    # Metadata is not a new version.
    assert len(json.loads(cli("secret", "history", "DB", "--json").out)) == 1

    cleared_args: list[str] = []
    for field in (
        "owner",
        "purpose",
        "classification",
        "rotate-every",
        "rotation-method",
        "expires",
        "depends-on",
        "contact",
        "upstream",
        "tags",
    ):
        cleared_args += ["--clear", field]
    r = cli("secret", "meta", "DB", *cleared_args, "--json")
    assert r.status == EXIT_OK, r.err
    cleared = json.loads(r.out)["meta"]
    assert cleared == {
        "owner": None,
        "purpose": None,
        "classification": None,
        "rotate_every_days": None,
        "rotation_method": None,
        "expires": None,
        "depends_on": [],
        "contact": None,
        "upstream": None,
        "tags": [],
    }
    assert json.loads(cli("secret", "meta", "DB", "--json").out)["meta"] == cleared


def test_meta_bad_input(keyfile_vault: Path, cli: Cli) -> None:
    assert cli("secret", "set", "DB", stdin="v").status == EXIT_OK
    assert cli("secret", "meta", "DB", "--owner", "keep").status == EXIT_OK
    bad = [
        ("--classification", "secret"),
        ("--expires", "tomorrow"),
        ("--expires", "2027-13-45"),
        ("--rotate-every", "ninety"),
        ("--rotate-every", "0d"),
        ("--clear", "no_such_field"),
    ]
    for option, value in bad:
        r = cli("secret", "meta", "DB", option, value, "--owner", "changed")
        assert r.status == EXIT_INVALID, (option, value, r.err)
    assert json.loads(cli("secret", "meta", "DB", "--json").out)["meta"]["owner"] == "keep"
    assert cli("secret", "meta", "NOPE", "--owner", "x").status == EXIT_NOT_FOUND


# -- more bad input -----------------------------------------------------------------------------------
def test_unlock_duration_bounds(keyfile_vault: Path, cli: Cli) -> None:
    for bad in ("0s", "31d", "abc", "8", "-1h", "1y"):
        r = cli("unlock", "--for", bad)
        assert r.status == EXIT_INVALID, (bad, r.err)
        assert "export SEALBOX_SESSION" not in r.out
    r = cli("unlock", "--for", "30d")
    assert r.status == EXIT_OK
    assert r.out.startswith("export SEALBOX_SESSION=")


def test_session_ends_when_passphrase_changes(
    passphrase_vault: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("secret", "set", "A", stdin="v").status == EXIT_OK
    token = session_from(cli("unlock").out)
    monkeypatch.setenv("SEALBOX_NEW_PASSPHRASE", NEW_PASSPHRASE)
    assert cli("passphrase", "change").status == EXIT_OK
    monkeypatch.delenv("SEALBOX_NEW_PASSPHRASE")
    monkeypatch.delenv("SEALBOX_PASSPHRASE")
    monkeypatch.setenv("SEALBOX_SESSION", token)
    r = cli("secret", "get", "A")
    assert r.status == EXIT_SEALED
    assert r.out == ""


def test_passphrase_change_on_key_file_vault_is_refused(
    keyfile_vault: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEALBOX_PASSPHRASE", "x")
    monkeypatch.setenv("SEALBOX_NEW_PASSPHRASE", "y")
    assert cli("passphrase", "change").status == EXIT_INVALID
    monkeypatch.delenv("SEALBOX_PASSPHRASE")
    monkeypatch.delenv("SEALBOX_NEW_PASSPHRASE")
    assert cli("secret", "set", "A", stdin="still works").status == EXIT_OK


def test_value_larger_than_the_limit_is_refused(keyfile_vault: Path, cli: Cli) -> None:
    from sealbox.model import MAX_VALUE_BYTES

    r = cli("secret", "set", "BIG", stdin=b"x" * (MAX_VALUE_BYTES + 1))
    assert r.status == EXIT_INVALID
    assert len(r.err) < 500
    assert cli("secret", "list", "--json").out.strip() == "[]"
    assert cli("secret", "set", "BIG", stdin=b"x" * MAX_VALUE_BYTES).status == EXIT_OK


@pytest.mark.parametrize(
    "content",
    [
        'project = "../etc"\nenv = "dev"\n',
        'project = "payments"\nenv = "../prod"\n',
        'project = "payments"\n',
        "not toml at all [",
    ],
)
def test_binding_file_is_validated(
    keyfile_vault: Path,
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    content: str,
) -> None:
    monkeypatch.delenv("SEALBOX_PROJECT")
    monkeypatch.delenv("SEALBOX_ENV")
    app = tmp_path / "app"
    app.mkdir()
    (app / "sealbox.toml").write_text(content)
    monkeypatch.chdir(app)
    r = cli("secret", "set", "A", stdin="v")
    assert r.status == EXIT_INVALID, r.err
    assert cli("secret", "list", "-p", "payments", "-e", "dev", "--json").out.strip() == "[]"


def test_bad_binding_error_names_the_file(
    keyfile_vault: Path, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user did not type '../etc': the error must say where it came from."""
    monkeypatch.delenv("SEALBOX_PROJECT")
    monkeypatch.delenv("SEALBOX_ENV")
    (tmp_path / "sealbox.toml").write_text('project = "../etc"\nenv = "dev"\n')
    r = cli("secret", "set", "A", stdin="v")
    assert r.status == EXIT_INVALID
    assert "sealbox.toml" in r.err


@pytest.mark.parametrize(
    "value",
    [b"plain", b"ends in a newline\n", b"crlf\r\n", b"two\n\n", b"nul\x00byte", b"\xff\xfe bin"],
)
def test_get_into_a_pipe_is_byte_exact(
    keyfile_vault: Path,
    tmp_path: Path,
    value: bytes,
    monkeypatch: pytest.MonkeyPatch,
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    import base64

    from sealbox.cli.main import main

    source = tmp_path / "value.bin"
    source.write_bytes(value)
    assert main(["secret", "set", "A", "--from-file", str(source)]) == EXIT_OK
    capsysbinary.readouterr()
    assert main(["secret", "get", "A"]) == EXIT_OK
    assert capsysbinary.readouterr().out == value  # no newline added outside a terminal
    assert main(["secret", "list", "--reveal", "--json"]) == EXIT_OK
    (listed,) = json.loads(capsysbinary.readouterr().out)
    got = (
        listed["value"].encode() if "value" in listed else base64.b64decode(listed["value_base64"])
    )
    assert got == value
    # On a terminal a newline follows the value.
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["secret", "get", "A"]) == EXIT_OK
    assert capsysbinary.readouterr().out == value + b"\n"


def test_a_value_on_argv_keeps_its_own_bytes(
    keyfile_vault: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    from sealbox.cli.main import main

    # Python hands undecodable argv bytes over as lone surrogates (surrogateescape).
    assert main(["secret", "set", "A", os.fsdecode(b"\xffarg\xfe")]) == EXIT_OK
    capsysbinary.readouterr()
    assert main(["secret", "get", "A"]) == EXIT_OK
    assert capsysbinary.readouterr().out == b"\xffarg\xfe"
