"""``sealbox rotate`` and ``sealbox rotation …`` driven in-process, with the random
rotator and a test rotator whose upstream is a file: reports, exit statuses, stages,
bad input, and doctor's warnings."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from tests.cli_harness import Cli
from tests.file_rotator import upstream_password

from sealbox.rotation import registry

EXIT_INVALID = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 5
EXIT_UPSTREAM = 11
EXIT_ROTATION_FAILED = 12


@pytest.fixture
def vault(keyfile_vault: Path, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setitem(registry.BUILTIN, "file", "tests.file_rotator:FileRotator")
    assert cli("secret", "set", "TOKEN", stdin="first-token-value").status == 0
    assert cli("secret", "set", "DB", stdin="initial-db-password").status == 0
    (tmp_path / "upstream.json").write_text(json.dumps({"password": "initial-db-password"}))
    (tmp_path / "control.json").write_text("{}")
    r = cli(
        "rotation", "configure", "DB", "--method", "file",
        "--option", f"upstream={tmp_path / 'upstream.json'}",
        "--option", f"control={tmp_path / 'control.json'}",
    )  # fmt: skip
    assert r.status == 0, r.err
    return tmp_path


def steer(tmp: Path, **control: str) -> None:
    (tmp / "control.json").write_text(json.dumps(control))


def test_rotate_a_random_token_and_read_previous(vault: Path, cli: Cli) -> None:
    r = cli("rotation", "configure", "TOKEN", "--method", "random", "--option", "length=40",
            "--option", "prefix=sk_", "--grace", "1h", "--window", "02:00-04:00",
            "--offset", "10m", "--json")  # fmt: skip
    assert r.status == 0, r.err
    cfg = json.loads(r.out)
    assert (cfg["method"], cfg["grace_seconds"], cfg["window"]) == ("random", 3600, "02:00-04:00")
    assert cfg["start_offset_seconds"] == 600 and cfg["options"]["length"] == "40"
    r = cli("rotate", "TOKEN")
    assert r.status == 0, r.err
    assert "succeeded (version 1 -> 2, test passed)" in r.err
    new = cli("secret", "get", "TOKEN").out.strip()
    assert new.startswith("sk_") and len(new) == 43
    assert new not in r.err + r.out  # the report never shows a value
    assert cli("secret", "get", "TOKEN", "--stage", "previous").out == "first-token-value"
    assert cli("secret", "get", "TOKEN", "--stage", "pending").status == EXIT_NOT_FOUND
    history = json.loads(cli("secret", "history", "TOKEN", "--json").out)
    assert [(v["version"], v["stage"]) for v in history] == [(1, "previous"), (2, "current")]
    rotations = json.loads(cli("rotation", "history", "TOKEN", "--json").out)
    assert [(x["state"], x["test"]) for x in rotations] == [("succeeded", "passed")]
    meta = json.loads(cli("secret", "list", "--json").out)
    assert {m["name"]: m["meta"]["rotation_method"] for m in meta}["TOKEN"] == "random"


def test_a_dry_run_reports_and_changes_nothing(vault: Path, cli: Cli) -> None:
    r = cli("rotate", "DB", "--dry-run")
    assert r.status == 0, r.err
    assert "rehearsal" in r.err and "Test passed" in r.err and "current untouched" in r.err
    assert cli("secret", "get", "DB").out == "initial-db-password"
    assert upstream_password(vault / "upstream.json") == "initial-db-password"
    steer(vault, refuse_test="1")
    r = cli("rotate", "DB", "--dry-run", "--json")
    assert r.status == EXIT_ROTATION_FAILED
    report = json.loads(r.out)
    assert (report["state"], report["test"], report["dry_run"]) == ("rehearsed", "failed", True)
    assert "login failed" in report["error"]


def test_a_secret_with_no_method_is_refused_with_the_command_to_configure(
    vault: Path, cli: Cli
) -> None:
    assert cli("secret", "set", "PLAIN", stdin="x").status == 0
    r = cli("rotate", "PLAIN")
    assert r.status == EXIT_INVALID
    assert "has no rotation method" in r.err
    assert "sealbox rotation configure payments/dev/PLAIN --method random" in r.err


def test_unreachable_upstream_then_resume_second_refused(vault: Path, cli: Cli) -> None:
    steer(vault, unreachable="set")
    r = cli("rotate", "DB", "--json")
    assert r.status == EXIT_UPSTREAM
    first = json.loads(r.out)
    assert (first["state"], first["step"]) == ("pending", "set")
    again = cli("rotate", "DB")
    assert again.status == EXIT_CONFLICT
    assert first["id"] in again.err and "sealbox rotation resume" in again.err
    status = cli("rotation", "status", "--failed", "--json")
    assert status.status == EXIT_ROTATION_FAILED
    assert [x["id"] for x in json.loads(status.out)] == [first["id"]]
    assert cli("secret", "get", "DB", "--stage", "pending").status == 0
    steer(vault)
    r = cli("rotation", "resume", "DB")
    assert r.status == 0, r.err
    assert cli("secret", "get", "DB").out.strip() == upstream_password(vault / "upstream.json")
    assert cli("rotation", "status", "--failed").status == 0


def test_cancel_restores_the_old_state(vault: Path, cli: Cli) -> None:
    steer(vault, refuse_test="1")
    r = cli("rotate", "DB", "--json")
    assert r.status == EXIT_ROTATION_FAILED
    rid = json.loads(r.out)["id"]
    listing = cli("rotation", "status").out.splitlines()
    assert listing[0].split()[:2] == ["ID", "SECRET"]
    assert listing[1].split()[:4] == [rid, "payments/dev/DB", "file", "failed"]  # whole id
    r = cli("rotation", "cancel", rid)
    assert r.status == 0, r.err
    assert "cancelled" in r.err
    assert upstream_password(vault / "upstream.json") == "initial-db-password"
    assert cli("secret", "get", "DB").out == "initial-db-password"
    assert cli("rotation", "cancel", rid).status == EXIT_CONFLICT
    assert cli("rotation", "resume", "rot_doesnotexist").status == EXIT_NOT_FOUND


def test_revoked_versions_cannot_be_read(vault: Path, cli: Cli) -> None:
    assert cli("rotate", "DB").status == 0
    r = cli("rotation", "revoke", "DB", "1")
    assert r.status == 0, r.err
    r = cli("secret", "get", "DB", "--version", "1")
    assert r.status == EXIT_NOT_FOUND and "revoked" in r.err
    r = cli("rotation", "revoke", "DB", "2")
    assert r.status == EXIT_CONFLICT and "sealbox rotate payments/dev/DB" in r.err


def test_rotate_due_with_nothing_due(vault: Path, cli: Cli) -> None:
    r = cli("rotate", "--due", "--limit", "5")
    assert r.status == 0 and "no rotation is due" in r.err
    assert json.loads(cli("rotate", "--due", "--json").out) == []


@pytest.mark.parametrize(
    "args",
    [
        ("rotate",),
        ("rotate", "DB", "--due"),
        ("rotate", "--due", "--dry-run"),
        ("rotate", "DB", "--limit", "3"),
        ("rotate", "DB", "--id", "not-an-id"),
        ("rotation", "configure", "DB", "--method", "random", "--option", "length"),
        ("rotation", "configure", "DB", "--method", "random", "--grace", "soon"),
        ("rotation", "configure", "DB", "--method", "random", "--window", "25:00-26:00"),
        ("rotation", "configure", "DB", "--method", "random", "--notify", "ftp://x/"),
        ("rotation", "configure", "DB", "--method", "random", "--option", "length=3"),
        ("rotation", "configure", "DB", "--method", "nope"),
        ("secret", "get", "DB", "--stage", "pending", "--version", "1"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(vault: Path, cli: Cli, args: tuple[str]) -> None:
    before = cli("rotation", "history", "DB", "--json").out
    r = cli(*args)
    assert r.status == EXIT_INVALID, (args, r.err)
    assert r.err.strip()
    assert cli("rotation", "history", "DB", "--json").out == before
    cfg = cli("secret", "get", "DB")
    assert cfg.out == "initial-db-password"


def test_grace_zero_is_accepted(vault: Path, cli: Cli) -> None:
    r = cli("rotation", "configure", "TOKEN", "--method", "random", "--grace", "0")
    assert r.status == 0, r.err
    assert cli("rotate", "TOKEN").status == 0
    r = cli("secret", "get", "TOKEN", "--stage", "previous")
    assert r.status == EXIT_NOT_FOUND and "grace window" in r.err


def test_doctor_warns_about_failed_and_overdue_rotations(vault: Path, cli: Cli) -> None:
    steer(vault, refuse_test="1")
    assert cli("rotate", "DB").status == EXIT_ROTATION_FAILED
    r = cli("doctor", "--json")
    warnings = [f for f in json.loads(r.out) if f["check"] == "rotation"]
    assert [w["level"] for w in warnings] == ["warn"]
    assert "failed at test" in warnings[0]["message"] and "login failed" in warnings[0]["message"]
    # An overdue one too (its interval passed, no window: a day late is overdue).
    assert cli("secret", "meta", "TOKEN", "--rotate-every", "1d").status == 0
    assert cli("rotation", "configure", "TOKEN", "--method", "random").status == 0
    with sqlite3.connect(vault / "home" / "vault.db") as conn:
        conn.execute("UPDATE sb_versions SET created_at = '2020-01-01T00:00:00+00:00'")
    r = cli("doctor", "--json")
    messages = [f["message"] for f in json.loads(r.out) if f["check"] == "rotation"]
    assert any("payments/dev/TOKEN is overdue" in m for m in messages), messages


@pytest.mark.integration
def test_rotations_on_a_postgres_vault(
    tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.pg import throwaway_database

    monkeypatch.setitem(registry.BUILTIN, "file", "tests.file_rotator:FileRotator")
    monkeypatch.setenv("SEALBOX_PROJECT", "payments")
    monkeypatch.setenv("SEALBOX_ENV", "prod")
    with throwaway_database() as dsn:
        assert cli("init", "--storage", dsn, "--key-file", str(tmp_path / "k.key")).status == 0
        assert cli("project", "create", "payments").status == 0
        assert cli("secret", "set", "DB", stdin="initial-db-password").status == 0
        (tmp_path / "upstream.json").write_text(json.dumps({"password": "initial-db-password"}))
        steer(tmp_path, unreachable="test")
        r = cli(
            "rotation", "configure", "DB", "--method", "file", "--grace", "0",
            "--option", f"upstream={tmp_path / 'upstream.json'}",
            "--option", f"control={tmp_path / 'control.json'}",
        )  # fmt: skip
        assert r.status == 0, r.err
        r = cli("rotate", "DB", "--json")
        assert r.status == EXIT_UPSTREAM, r.err
        rid = json.loads(r.out)["id"]
        assert rid in cli("rotate", "DB").err
        steer(tmp_path)
        assert cli("rotation", "resume", rid).status == 0
        assert cli("secret", "get", "DB").out.strip() == upstream_password(
            tmp_path / "upstream.json"
        )
        assert cli("secret", "get", "DB", "--stage", "previous").status == EXIT_NOT_FOUND
        steer(tmp_path, refuse_test="1")
        assert cli("rotate", "DB").status == EXIT_ROTATION_FAILED
        assert cli("rotation", "cancel", "DB").status == 0
        assert cli("rotation", "revoke", "DB", "1").status == 0
        assert cli("secret", "get", "DB", "--version", "1").status == EXIT_NOT_FOUND
        states = [x["state"] for x in json.loads(cli("rotation", "history", "DB", "--json").out)]
        assert states == ["cancelled", "succeeded"]
