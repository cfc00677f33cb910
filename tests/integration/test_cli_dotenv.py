"""`sealbox import`, `export`, `example` and `doctor`, driven in-process.

Also the integrity faults that doctor and `secret get` must report: a tampered ciphertext
and one moved onto another secret's row.
"""

from __future__ import annotations

import base64
import io
import json
import os
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest
from dotenv import dotenv_values
from tests.cli_harness import Cli

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_INVALID = 2
EXIT_NOT_FOUND = 3
EXIT_INTEGRITY = 7
EXIT_KEY_PROVIDER = 9


def get(cli: Cli, name: str) -> str:
    r = cli("secret", "get", name, "--json")
    assert r.status == EXIT_OK, r.err
    value = json.loads(r.out)["value"]
    assert isinstance(value, str)
    return value


def names(cli: Cli, *extra: str) -> list[str]:
    r = cli("secret", "list", "--json", *extra)
    assert r.status == EXIT_OK, r.err
    return [d["name"] for d in json.loads(r.out)]


# -- import ---------------------------------------------------------------------------------------
GOOD_DOTENV = """\
# a comment line
PLAIN=plain-value
export EXPORTED=exported-value
SINGLE='single $NOT_EXPANDED and "double" inside'
DOUBLE="double with \\"escaped\\" quotes"
INLINE=inline-value # a trailing comment
MULTI="first line
second line
third line"
ESCAPED_NEWLINE="a\\nb"
SPACED = spaced-value
REF=${HOME}/literal
QREF="${USER}:$PATH"
EMPTY=
"""

GOOD_EXPECTED = {
    "PLAIN": "plain-value",
    "EXPORTED": "exported-value",
    "SINGLE": 'single $NOT_EXPANDED and "double" inside',
    "DOUBLE": 'double with "escaped" quotes',
    "INLINE": "inline-value",
    "MULTI": "first line\nsecond line\nthird line",
    "ESCAPED_NEWLINE": "a\nb",
    "SPACED": "spaced-value",
    "REF": "${HOME}/literal",
    "QREF": "${USER}:$PATH",
    "EMPTY": "",
}


def test_import_good_dotenv_round_trips(keyfile_vault: Path, cli: Cli, tmp_path: Path) -> None:
    env_file = tmp_path / ".env.local"
    env_file.write_text(GOOD_DOTENV)
    # What the ecosystem's parser reads from the file is what sealbox must store.
    assert dotenv_values(env_file, interpolate=False) == GOOD_EXPECTED
    r = cli("import", str(env_file), "--json")
    assert r.status == EXIT_OK, r.err
    assert set(json.loads(r.out)["imported"]) == set(GOOD_EXPECTED)
    assert sorted(names(cli)) == sorted(GOOD_EXPECTED)
    for name, value in GOOD_EXPECTED.items():
        assert get(cli, name) == value, name
    # No value leaks into the import's own output.
    for value in GOOD_EXPECTED.values():
        if len(value) > 3:
            assert value not in r.err


def test_import_from_stdin(keyfile_vault: Path, cli: Cli) -> None:
    r = cli("import", "-", stdin="FROM_STDIN=piped-value\n")
    assert r.status == EXIT_OK, r.err
    assert get(cli, "FROM_STDIN") == "piped-value"


def test_import_again_makes_new_versions(keyfile_vault: Path, cli: Cli, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("A=one\n")
    assert cli("import", str(env_file)).status == EXIT_OK
    env_file.write_text("A=two\n")
    assert cli("import", str(env_file)).status == EXIT_OK
    assert get(cli, "A") == "two"
    assert len(json.loads(cli("secret", "history", "A", "--json").out)) == 2


BAD_DOTENV = """\
GOOD_ONE=1
1BAD=starts-with-digit
GOOD_TWO=2
BAD-NAME=dash
NO_EQUALS_SIGN
UNTERMINATED="never closed
"""


def test_import_reports_every_bad_line_and_writes_nothing(
    keyfile_vault: Path, cli: Cli, tmp_path: Path
) -> None:
    env_file = tmp_path / "bad.env"
    env_file.write_text(BAD_DOTENV)
    r = cli("import", str(env_file))
    assert r.status == EXIT_INVALID
    for line in (2, 4, 5, 6):
        assert f":{line}:" in r.err, (line, r.err)
    for line in (1, 3):
        assert f":{line}:" not in r.err
    assert "nothing imported" in r.err
    assert names(cli) == []
    assert names(cli, "--deleted") == []


def test_import_skip_invalid_imports_the_good_lines(
    keyfile_vault: Path, cli: Cli, tmp_path: Path
) -> None:
    env_file = tmp_path / "bad.env"
    env_file.write_text(BAD_DOTENV)
    r = cli("import", str(env_file), "--skip-invalid")
    assert r.status == EXIT_OK, r.err
    assert ":2:" in r.err  # still reported
    assert sorted(names(cli)) == ["GOOD_ONE", "GOOD_TWO"]
    assert get(cli, "GOOD_ONE") == "1"
    assert get(cli, "GOOD_TWO") == "2"


def test_import_missing_file_is_invalid_input(
    keyfile_vault: Path, cli: Cli, tmp_path: Path
) -> None:
    r = cli("import", str(tmp_path / "does-not-exist.env"))
    assert r.status == EXIT_INVALID
    assert "does-not-exist.env" in r.err
    assert names(cli) == []


def test_import_does_not_echo_values_of_bad_lines(
    keyfile_vault: Path, cli: Cli, tmp_path: Path
) -> None:
    """A value broken onto its own line (e.g. an unquoted PEM body) is reported by line number,
    never echoed: the error stream ends up in CI logs."""
    leaked = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"
    leaked_with_dash = "sk-live-4f9d2c8e1b7a6f3d"
    env_file = tmp_path / ".env"
    header = "-----BEGIN " + "PRIVATE KEY-----"  # built at run time: not a key in this file
    env_file.write_text(f"PRIVATE_KEY={header}\n{leaked}\n{leaked_with_dash}\n")
    r = cli("import", str(env_file))
    assert r.status == EXIT_INVALID
    assert ":2:" in r.err
    assert ":3:" in r.err
    assert leaked not in r.err
    assert leaked_with_dash not in r.err


# -- export ---------------------------------------------------------------------------------------------
TRICKY = {
    "SIMPLE": "simple",
    "SINGLE_QUOTE": "it's here",
    "DOUBLE_QUOTE": 'say "hi"',
    "BOTH_QUOTES": """it's "both" """,
    "DOLLAR": "$HOME ${USER} $(id) `id` $$",
    "SPACES": "  leading and trailing  ",
    "NEWLINES": "line1\nline2\n\nline4\n",
    "BACKSLASH": "C:\\path\\to\\file",
    "BACKSLASH_N": "literal \\n not a newline",
    "DOUBLE_BACKSLASH": "\\\\server\\share",
    "BACKSLASH_QUOTE": "x\\'y\\\"z",
    "HASH": "#not a comment",
    "EQUALS": "a=b=c",
    "UNICODE": "päss wörd ✓",
    "TAB": "a\tb",
    "EMPTY": "",
}


@pytest.fixture
def tricky_vault(keyfile_vault: Path, cli: Cli, tmp_path: Path) -> dict[str, str]:
    src = tmp_path / "values"
    src.mkdir()
    for name, value in TRICKY.items():
        f = src / name
        f.write_bytes(value.encode())
        r = cli("secret", "set", name, "--from-file", str(f))
        assert r.status == EXIT_OK, r.err
    # A value in another environment must not be exported.
    assert cli("secret", "set", "PROD_ONLY", "-e", "prod", stdin="prod").status == EXIT_OK
    return TRICKY


def _mismatches(expected: dict[str, str], got: dict[str, str | None]) -> dict[str, object]:
    return {k: (v, got.get(k)) for k, v in expected.items() if got.get(k) != v}


def test_export_json_round_trips(tricky_vault: dict[str, str], cli: Cli) -> None:
    r = cli("export", "--format", "json")
    assert r.status == EXIT_OK, r.err
    assert json.loads(r.out) == tricky_vault


def test_export_dotenv_round_trips(tricky_vault: dict[str, str], cli: Cli) -> None:
    r = cli("export", "--format", "dotenv")
    assert r.status == EXIT_OK, r.err
    back = dotenv_values(stream=io.StringIO(r.out), interpolate=False)
    assert set(back) == set(tricky_vault)
    assert _mismatches(tricky_vault, back) == {}
    # The default format is dotenv.
    assert cli("export").out == r.out


def test_export_dotenv_round_trips_through_import(
    tricky_vault: dict[str, str], cli: Cli, tmp_path: Path
) -> None:
    out = tmp_path / "exported.env"
    assert cli("export", "--output", str(out)).status == EXIT_OK
    assert cli("import", str(out), "-e", "staging").status == EXIT_OK
    r = cli("export", "--format", "json", "-e", "staging")
    assert _mismatches(tricky_vault, json.loads(r.out)) == {}


def test_export_shell_round_trips_through_bash(
    tricky_vault: dict[str, str], cli: Cli, tmp_path: Path
) -> None:
    r = cli("export", "--format", "shell")
    assert r.status == EXIT_OK, r.err
    script = tmp_path / "exports.sh"
    script.write_text(r.out)
    got: dict[str, str | None] = {}
    for name in tricky_vault:
        proc = subprocess.run(
            ["bash", "-c", f'source "$1"; printf %s "${name}"', "bash", str(script)],
            capture_output=True,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent"},
            timeout=30,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        got[name] = proc.stdout.decode()
    assert _mismatches(tricky_vault, got) == {}


def test_export_only_and_missing(tricky_vault: dict[str, str], cli: Cli) -> None:
    r = cli("export", "--format", "json", "--only", "SIMPLE,HASH")
    assert json.loads(r.out) == {"SIMPLE": "simple", "HASH": "#not a comment"}
    assert cli("export", "--only", "SIMPLE,MISSING").status == EXIT_NOT_FOUND
    assert cli("export", "--format", "yaml").status == EXIT_INVALID


def test_export_to_file_is_private(tricky_vault: dict[str, str], cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "secrets.json"
    r = cli("export", "--format", "json", "--output", str(out))
    assert r.status == EXIT_OK, r.err
    assert r.out == ""
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert json.loads(out.read_text()) == tricky_vault
    # Overwriting a world-readable file leaves a private one.
    loose = tmp_path / "loose.env"
    loose.write_text("old\n")
    loose.chmod(0o644)
    assert cli("export", "-o", str(loose)).status == EXIT_OK
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600
    assert "old" not in loose.read_text()


# -- example --------------------------------------------------------------------------------------------
def test_example_lists_every_key_without_values(
    tricky_vault: dict[str, str], cli: Cli, tmp_path: Path
) -> None:
    assert cli("secret", "meta", "SIMPLE", "--purpose", "a plain example").status == EXIT_OK
    r = cli("example")
    assert r.status == EXIT_OK, r.err
    text = (tmp_path / ".env.example").read_text()
    parsed = dotenv_values(stream=io.StringIO(text), interpolate=False)
    assert set(parsed) == set(tricky_vault)
    assert all(not v for v in parsed.values())
    for value in tricky_vault.values():
        if len(value.strip()) >= 4:
            assert value not in text, value
    assert "PROD_ONLY" not in text
    assert "a plain example" in text  # the purpose is a helpful, non-secret comment
    # --output elsewhere
    other = tmp_path / "sub" / "example.env"
    assert cli("example", "-o", str(other)).status == EXIT_OK
    assert set(dotenv_values(other, interpolate=False)) == set(tricky_vault)
    # An example of prod has only prod's keys.
    assert cli("example", "-e", "prod", "-o", str(tmp_path / "prod.example")).status == EXIT_OK
    prod = dotenv_values(tmp_path / "prod.example", interpolate=False)
    assert prod == {"PROD_ONLY": ""}


# -- doctor ----------------------------------------------------------------------------------------------
def doctor(cli: Cli, directory: Path) -> tuple[int, list[dict[str, str]], str]:
    r = cli("doctor", "--dir", str(directory), "--json")
    return r.status, json.loads(r.out), r.out + r.err


def fails(findings: list[dict[str, str]]) -> list[dict[str, str]]:
    return [f for f in findings if f["level"] == "fail"]


def git(directory: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(directory), *args], check=True, capture_output=True)


@pytest.fixture
def workdir(keyfile_vault: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "work"
    d.mkdir()
    monkeypatch.chdir(d)
    return d


def test_doctor_clean_directory_is_ok(keyfile_vault: Path, cli: Cli, workdir: Path) -> None:
    assert cli("secret", "set", "A", stdin="v").status == EXIT_OK
    assert cli("setup", "-p", "payments", "-e", "dev").status == EXIT_OK
    status, findings, _ = doctor(cli, workdir)
    assert status == EXIT_OK, findings
    assert fails(findings) == []
    assert any(f["check"] == "integrity" and f["level"] == "ok" for f in findings)
    # The human form works too.
    r = cli("doctor")
    assert r.status == EXIT_OK
    assert "integrity" in r.out


def test_doctor_unignored_dotenv_in_git_repo(keyfile_vault: Path, cli: Cli, workdir: Path) -> None:
    git(workdir, "init", "-q")
    (workdir / ".env").write_text("API_KEY=a-real-looking-value\n")
    status, findings, text = doctor(cli, workdir)
    assert status == EXIT_FAIL
    assert any(f["check"] == "dotenv" and ".env" in f["message"] for f in fails(findings))
    assert "a-real-looking-value" not in text
    (workdir / ".gitignore").write_text(".env\n")
    status, findings, _ = doctor(cli, workdir)
    assert status == EXIT_OK, findings
    assert any(f["check"] == "dotenv" and f["level"] == "ok" for f in findings)


def test_doctor_dotenv_without_values_is_fine(keyfile_vault: Path, cli: Cli, workdir: Path) -> None:
    git(workdir, "init", "-q")
    (workdir / ".env.local").write_text("# only keys\nAPI_KEY=\n")
    status, findings, _ = doctor(cli, workdir)
    assert status == EXIT_OK, findings


def test_doctor_env_example_with_real_value(keyfile_vault: Path, cli: Cli, workdir: Path) -> None:
    real = "sk_live_real_value_0123456789"
    assert cli("secret", "set", "STRIPE_KEY", stdin=real).status == EXIT_OK
    (workdir / ".env.example").write_text(f"STRIPE_KEY=\nOTHER=placeholder\nCOPIED={real}\n")
    status, findings, text = doctor(cli, workdir)
    assert status == EXIT_FAIL
    bad = [f for f in fails(findings) if f["check"] == "example"]
    assert bad, findings
    assert "COPIED" in bad[0]["message"]
    assert real not in text
    human = cli("doctor", "--dir", str(workdir))
    assert human.status == EXIT_FAIL
    assert real not in human.out + human.err
    # An older version's value counts too.
    assert cli("secret", "set", "STRIPE_KEY", stdin="rotated").status == EXIT_OK
    assert doctor(cli, workdir)[0] == EXIT_FAIL
    (workdir / ".env.example").write_text("STRIPE_KEY=\nCOPIED=<fill me in>\n")
    status, findings, _ = doctor(cli, workdir)
    assert status == EXIT_OK, findings


def test_world_readable_key_file(
    keyfile_vault: Path, cli: Cli, tmp_path: Path, workdir: Path
) -> None:
    assert cli("secret", "set", "A", stdin="v").status == EXIT_OK
    key = tmp_path / "master.key"
    key.chmod(0o644)
    status, findings, _ = doctor(cli, workdir)
    assert status == EXIT_FAIL
    assert any(str(key) in f["message"] for f in fails(findings)), findings
    for args in (
        ("secret", "get", "A"),
        ("secret", "set", "A"),
        ("export",),
        ("unlock",),
    ):
        r = cli(*args, stdin="new-value")
        assert r.status == EXIT_KEY_PROVIDER, (args, r.err)
        assert str(key) in r.err
        assert "chmod 600" in r.err
    key.chmod(0o600)
    assert get(cli, "A") == "v"


# -- integrity faults ------------------------------------------------------------------------------------
def _db(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(home / "vault.db", isolation_level=None)


def _version_row(conn: sqlite3.Connection, name: str, version: int) -> tuple[int, bytes, bytes]:
    row = conn.execute(
        "SELECT v.secret_id, v.ciphertext, v.wrapped_key FROM sb_versions v"
        " JOIN sb_secrets s ON s.id = v.secret_id"
        " WHERE s.project = 'payments' AND s.env = 'dev' AND s.name = ? AND v.version = ?",
        (name, version),
    ).fetchone()
    assert row is not None
    return int(row[0]), bytes(row[1]), bytes(row[2])


def _put(conn: sqlite3.Connection, secret_id: int, version: int, ct: bytes, wk: bytes) -> None:
    conn.execute(
        "UPDATE sb_versions SET ciphertext = ?, wrapped_key = ? WHERE secret_id = ? AND version = ?",
        (ct, wk, secret_id, version),
    )


def _assert_no_value(text: str, value: str) -> None:
    assert value not in text
    assert base64.b64encode(value.encode()).decode() not in text
    assert value.encode().hex() not in text


def test_tampered_ciphertext(keyfile_vault: Path, cli: Cli, workdir: Path) -> None:
    value = "tamper-target-value-42"
    assert cli("secret", "set", "VICTIM", stdin=value).status == EXIT_OK
    assert cli("secret", "set", "BYSTANDER", stdin="fine").status == EXIT_OK
    conn = _db(keyfile_vault)
    try:
        sid, ct, wk = _version_row(conn, "VICTIM", 1)
        flipped = bytearray(ct)
        flipped[len(flipped) // 2] ^= 0x01
        _put(conn, sid, 1, bytes(flipped), wk)
    finally:
        conn.close()

    status, findings, text = doctor(cli, workdir)
    assert status == EXIT_FAIL
    integrity = [f for f in fails(findings) if f["check"] == "integrity"]
    assert len(integrity) == 1, findings
    assert "payments/dev/VICTIM" in integrity[0]["message"]
    _assert_no_value(text, value)

    r = cli("secret", "get", "VICTIM")
    assert r.status == EXIT_INTEGRITY
    assert "payments/dev/VICTIM" in r.err
    assert r.out == ""
    _assert_no_value(r.err, value)
    for args in (
        ("export",),
        ("secret", "list", "--reveal"),
        ("secret", "rollback", "VICTIM", "1"),
    ):
        r = cli(*args)
        assert r.status == EXIT_INTEGRITY, (args, r.err)
        assert "payments/dev/VICTIM" in r.err
        _assert_no_value(r.out + r.err, value)
    # The untouched secret still reads, and a new version repairs the victim.
    assert get(cli, "BYSTANDER") == "fine"
    assert cli("secret", "set", "VICTIM", stdin="replacement").status == EXIT_OK
    assert get(cli, "VICTIM") == "replacement"


def test_tampered_wrapped_key(keyfile_vault: Path, cli: Cli) -> None:
    assert cli("secret", "set", "VICTIM", stdin="wrapped-key-target").status == EXIT_OK
    conn = _db(keyfile_vault)
    try:
        sid, ct, wk = _version_row(conn, "VICTIM", 1)
        flipped = bytearray(wk)
        flipped[-1] ^= 0x80
        _put(conn, sid, 1, ct, bytes(flipped))
    finally:
        conn.close()
    r = cli("secret", "get", "VICTIM")
    assert r.status == EXIT_INTEGRITY, r.err
    assert "payments/dev/VICTIM" in r.err
    assert "wrapped-key-target" not in r.err


def test_ciphertext_moved_to_another_row(keyfile_vault: Path, cli: Cli, workdir: Path) -> None:
    assert cli("secret", "set", "ALPHA", stdin="alpha-value-xyz").status == EXIT_OK
    assert cli("secret", "set", "BETA", stdin="beta-value-xyz").status == EXIT_OK
    assert cli("secret", "set", "BETA", stdin="beta-value-v2").status == EXIT_OK
    conn = _db(keyfile_vault)
    try:
        a_id, a_ct, a_wk = _version_row(conn, "ALPHA", 1)
        b_id, b_ct, b_wk = _version_row(conn, "BETA", 1)
        _put(conn, a_id, 1, b_ct, b_wk)
        _put(conn, b_id, 1, a_ct, a_wk)
        # BETA's own version 1 copied onto its version 2: the version number is bound too.
        _put(conn, b_id, 2, b_ct, b_wk)
    finally:
        conn.close()
    for name in ("ALPHA", "BETA"):
        r = cli("secret", "get", name)
        assert r.status == EXIT_INTEGRITY, (name, r.err)
        assert f"payments/dev/{name}" in r.err
        for v in ("alpha-value-xyz", "beta-value-xyz", "beta-value-v2"):
            assert v not in r.out + r.err
    assert cli("secret", "get", "BETA", "--version", "1").status == EXIT_INTEGRITY
    status, findings, text = doctor(cli, workdir)
    assert status == EXIT_FAIL
    messages = " ".join(f["message"] for f in fails(findings) if f["check"] == "integrity")
    assert "payments/dev/ALPHA" in messages
    assert "payments/dev/BETA" in messages
    assert "alpha-value-xyz" not in text


def test_ciphertext_moved_to_same_name_in_another_environment(
    keyfile_vault: Path, cli: Cli
) -> None:
    assert cli("secret", "set", "KEY", stdin="dev-value").status == EXIT_OK
    assert cli("secret", "set", "KEY", "-e", "prod", stdin="prod-value").status == EXIT_OK
    conn = _db(keyfile_vault)
    try:
        _, dev_ct, dev_wk = _version_row(conn, "KEY", 1)
        prod = conn.execute(
            "SELECT v.secret_id FROM sb_versions v JOIN sb_secrets s ON s.id = v.secret_id"
            " WHERE s.env = 'prod' AND s.name = 'KEY'"
        ).fetchone()
        _put(conn, int(prod[0]), 1, dev_ct, dev_wk)
    finally:
        conn.close()
    r = cli("secret", "get", "KEY", "-e", "prod")
    assert r.status == EXIT_INTEGRITY
    assert "payments/prod/KEY" in r.err
    assert "dev-value" not in r.out + r.err


def test_doctor_dotenv_outside_git_is_a_warning(
    keyfile_vault: Path, cli: Cli, workdir: Path
) -> None:
    (workdir / ".env.production").write_text("TOKEN=not-in-git\n")
    status, findings, text = doctor(cli, workdir)
    assert status == EXIT_OK, findings
    assert any(f["check"] == "dotenv" and f["level"] == "warn" for f in findings)
    assert "not-in-git" not in text


def test_doctor_without_a_vault(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    status, findings, _ = doctor(cli, tmp_path)
    assert status == EXIT_FAIL
    assert any("sealbox init" in f["message"] for f in fails(findings))


def test_doctor_warns_of_audit_events_a_stopped_server_left_spooled(
    keyfile_vault: Path, cli: Cli, workdir: Path
) -> None:
    import os
    import subprocess
    import sys

    assert cli("secret", "set", "A", stdin="v").status == EXIT_OK
    killed = (
        "import os\nfrom sealbox.factory import open_vault\nfrom sealbox.model import SecretRef\n"
        "server = open_vault(source='api', audit_node='srv')\nserver.serve()\n"
        "server.get(SecretRef('payments', 'dev', 'A'))\nos._exit(0)\n"
    )  # a read event spooled, then the server killed before it stored it
    subprocess.run([sys.executable, "-c", killed], env={**os.environ}, check=True)
    status, findings, _ = doctor(cli, workdir)
    (warning,) = [f for f in findings if f["check"] == "audit"]
    assert warning["level"] == "warn" and "did not store yet" in warning["message"]
    assert status == EXIT_OK  # a warning, not a failure
