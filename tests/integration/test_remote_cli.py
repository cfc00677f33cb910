"""The CLI in remote mode (SEALBOX_ADDR + a token) behaves as it does embedded.

The same representative command lines run against an embedded vault and against a live
server; their exit statuses and (normalised) outputs must match.
"""

from __future__ import annotations

import io
import json
import re
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.unit.client.live import ADMIN_PASSWORD, Live, live_server

from sealbox.cli.main import main

CANARY = "remote-cli-canary-41d2"

#: (argv, stdin) — a tour of the embedded commands.
SCRIPT: list[tuple[list[str], str | None]] = [
    (["project", "create", "payments"], None),
    (["project", "create", "payments"], None),  # already exists: 5
    (["project", "list", "--json"], None),
    (["env", "create", "qa", "-p", "payments"], None),
    (["env", "list", "-p", "payments", "--json"], None),
    (["secret", "set", "DB_PASSWORD", "--json"], CANARY),
    (["secret", "set", "DB_PASSWORD", "--if-version", "1", "--json"], "second"),
    (["secret", "set", "DB_PASSWORD", "--if-version", "1"], "conflict"),  # 5
    (["secret", "get", "DB_PASSWORD"], None),
    (["secret", "get", "DB_PASSWORD", "--version", "1", "--json"], None),
    (["secret", "get", "NOPE"], None),  # 3
    (["secret", "get", "payments/dev/bad name"], None),  # 2
    (["secret", "set", "api-key", "--json"], "a kv-style name"),
    (["secret", "get", "payments/dev:db/user"], None),  # 3: no such folder
    (["secret", "list", "--json"], None),
    (["secret", "list", "--reveal", "--json"], None),
    (["secret", "history", "DB_PASSWORD", "--json"], None),
    (["secret", "rollback", "DB_PASSWORD", "1"], None),
    (["secret", "meta", "DB_PASSWORD", "--owner", "team-db", "--classification", "high"], None),
    (["secret", "meta", "DB_PASSWORD", "--tag", "pci", "--json"], None),
    (["secret", "meta", "DB_PASSWORD", "--clear", "owner", "--json"], None),
    (["secret", "delete", "DB_PASSWORD"], None),
    (["secret", "get", "DB_PASSWORD"], None),  # 3
    (["secret", "list", "--deleted", "--json"], None),
    (["secret", "undelete", "DB_PASSWORD"], None),
    (["import", "-", "--json"], "API_KEY=abc\nTOKEN='x y'\n"),
    (["export", "--format", "json"], None),
    (["export", "--format", "dotenv", "--only", "API_KEY"], None),
    (["example", "-o", "ex.env"], None),
    (["secret", "purge", "TOKEN", "--yes"], None),
    (
        ["policy", "apply", "-", "--format", "json"],
        json.dumps(
            {
                "name": "ci-read",
                "rules": [{"path": "payments/dev/*", "capabilities": ["read", "list"]}],
            }
        ),
    ),
    (["policy", "list", "--json"], None),
    (["policy", "show", "ci-read"], None),
    (["identity", "create", "ci", "--policy", "ci-read", "--json"], None),
    (["identity", "list", "--json"], None),
    (
        [
            "policy",
            "explain",
            "--identity",
            "ci",
            "--path",
            "payments/dev/X",
            "--capability",
            "read",
            "--json",
        ],
        None,
    ),
    (
        [
            "policy",
            "explain",
            "--identity",
            "ci",
            "--path",
            "payments/prod/X",
            "--capability",
            "read",
        ],
        None,
    ),  # 4
    (["identity", "policies", "ci"], None),
    (["token", "revoke", "--identity", "ci"], None),
    (["identity", "delete", "ci"], None),
    (["policy", "delete", "ci-read"], None),
]

VOLATILE = re.compile(
    r"\d{4}-\d\d-\d\dT[0-9:.+]+|\d{4}-\d\d-\d\d \d\d:\d\d|[0-9a-f]{16,}|local:[\w.-]+|admin"
)


def _normalise(text: str) -> Any:
    """Outputs without times, ids and the acting identity's name (they differ by design)."""
    text = VOLATILE.sub("<v>", text)
    try:
        data = json.loads(text)
    except ValueError:
        return text

    def scrub(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: scrub(v) for k, v in x.items() if k not in ("id", "role_id", "created_by")}
        if isinstance(x, list):
            # The server's bootstrap admin has no embedded counterpart.
            return [scrub(v) for v in x if not (isinstance(v, dict) and v.get("name") == "<v>")]
        return x

    return scrub(data)


def _run(
    argv: list[str], stdin: str | None, capsys: pytest.CaptureFixture[str], mp: pytest.MonkeyPatch
) -> tuple[int, Any]:
    mp.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO((stdin or "").encode()), encoding="utf-8"))
    code = main(argv)
    out = capsys.readouterr().out
    return code, _normalise(out)


def _tour(capsys: pytest.CaptureFixture[str], mp: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    mp.setenv("SEALBOX_IDENTITY_PASSWORD", "unused for machines")
    results = []
    for argv, stdin in SCRIPT:
        code, out = _run(argv, stdin, capsys, mp)
        results.append((" ".join(argv), code, out))
    return results


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Live]:
    with live_server(tmp_path / "srv") as live:
        yield live


def test_cli_remote_matches_embedded(
    server: Live,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("SEALBOX_PROJECT", "payments")
    monkeypatch.setenv("SEALBOX_ENV", "dev")

    # Remote: a client home with no vault at all.
    monkeypatch.setenv("SEALBOX_HOME", str(tmp_path / "client-home"))
    monkeypatch.setenv("SEALBOX_ADDR", server.url)
    monkeypatch.setenv("SEALBOX_TOKEN", server.token)
    remote = _tour(capsys, monkeypatch)
    remote_example = (work / "ex.env").read_text()

    # Embedded: a fresh key-file vault.
    monkeypatch.delenv("SEALBOX_ADDR")
    monkeypatch.delenv("SEALBOX_TOKEN")
    monkeypatch.setenv("SEALBOX_HOME", str(tmp_path / "embedded-home"))
    assert main(["init", "--key-file", str(tmp_path / "e.key")]) == 0
    capsys.readouterr()
    embedded = _tour(capsys, monkeypatch)
    embedded_example = (work / "ex.env").read_text()

    for r, e in zip(remote, embedded, strict=True):
        assert r == e, r[0]
    assert remote_example == embedded_example
    codes = [c for _, c, _ in remote]
    assert codes.count(0) < len(codes) and {2, 3, 4, 5} <= set(codes)
    assert CANARY in json.dumps([o for _, _, o in remote])  # the reveal really went through


def test_embedded_only_commands_say_so(
    server: Live, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEALBOX_ADDR", server.url)
    monkeypatch.setenv("SEALBOX_TOKEN", server.token)
    monkeypatch.setenv("SEALBOX_PASSPHRASE", "x")
    monkeypatch.setenv("SEALBOX_NEW_PASSPHRASE", "y")
    for argv in (["init"], ["unlock"], ["lock"], ["passphrase", "change"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "embedded vault only" in err and "remote mode" in err, argv


def test_remote_errors_and_exit_statuses(
    server: Live,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sealbox.server.testing import free_port

    monkeypatch.setenv("SEALBOX_HOME", str(tmp_path / "client-home"))
    monkeypatch.setenv("SEALBOX_ADDR", server.url)
    # No token at all.
    assert main(["project", "list"]) == 4
    assert "sealbox login" in capsys.readouterr().err
    # A wrong token.
    monkeypatch.setenv("SEALBOX_TOKEN", "sbx_s_" + "W" * 49)
    assert main(["project", "list"]) == 4
    err = capsys.readouterr().err
    assert "invalid or expired token" in err and "W" * 49 not in err
    # An expired (here: revoked) token.
    from sealbox.client import Client

    admin = Client(server.url, server.token)
    short = admin.accounts.create_token()
    admin.accounts.revoke_token(short.accessor)
    monkeypatch.setenv("SEALBOX_TOKEN", short.value)
    assert main(["project", "list"]) == 4
    capsys.readouterr()
    # The server is down.
    monkeypatch.setenv("SEALBOX_ADDR", f"http://127.0.0.1:{free_port()}")
    assert main(["project", "list"]) == 8
    err = capsys.readouterr().err
    assert "connection refused" in err and "Traceback" not in err and short.value not in err
    # A malformed address.
    monkeypatch.setenv("SEALBOX_ADDR", "localhost:8200")
    assert main(["project", "list"]) == 2
    assert "http(s)://" in capsys.readouterr().err
    admin.close()


def test_login_logout(
    server: Live,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sealbox.client import Client

    home = tmp_path / "client-home"
    monkeypatch.setenv("SEALBOX_HOME", str(home))
    monkeypatch.setenv("SEALBOX_TOKEN_STORE", "file")
    monkeypatch.setenv("SEALBOX_PASSWORD", "wrong password!!")
    assert main(["login", "--addr", server.url, "--name", "admin"]) == 4
    assert not (home / "credentials.json").exists()
    monkeypatch.setenv("SEALBOX_PASSWORD", ADMIN_PASSWORD)
    assert main(["login", "--addr", server.url, "--name", "admin"]) == 0
    err = capsys.readouterr().err
    assert "Logged in" in err and "export SEALBOX_ADDR" in err
    creds = home / "credentials.json"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    saved = json.loads(creds.read_text())["servers"][server.url]
    token = saved["token"]
    assert saved["store"] == "file" and saved["identity"] == "admin"
    assert token not in err

    # The saved token is used in remote mode.
    monkeypatch.delenv("SEALBOX_PASSWORD")
    monkeypatch.setenv("SEALBOX_ADDR", server.url)
    assert main(["project", "create", "payments"]) == 0
    assert main(["project", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == ["payments"]

    # A machine logs in with a secret id from a file.
    admin = Client(server.url, server.token)
    machine = admin.accounts.create_machine("ci", ["root"])
    sid = tmp_path / "sid"
    sid.write_text(admin.accounts.new_secret_id("ci") + "\n")
    assert main(["login", "--role-id", machine.role_id or "", "--secret-id-file", str(sid)]) == 0
    assert json.loads(creds.read_text())["servers"][server.url]["identity"] == "ci"
    assert main(["login", "--role-id", "x"]) == 2  # no secret id file

    # Logout revokes the token and forgets it.
    ci_token = json.loads(creds.read_text())["servers"][server.url]["token"]
    assert main(["logout"]) == 0
    assert server.url not in json.loads(creds.read_text())["servers"]
    with pytest.raises(Exception, match="invalid or expired"):
        Client(server.url, ci_token).list_projects()
    assert main(["project", "list"]) == 4  # no token any more
    assert main(["logout"]) == 3  # nothing saved
    admin.close()


def test_doctor_in_remote_mode(
    server: Live,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    work = tmp_path / "proj"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("SEALBOX_HOME", str(tmp_path / "client-home"))
    monkeypatch.setenv("SEALBOX_ADDR", server.url)
    monkeypatch.setenv("SEALBOX_TOKEN", server.token)
    assert main(["project", "create", "shop"]) == 0
    (work / "sealbox.toml").write_text('project = "shop"\nenv = "dev"\n')
    capsys.readouterr()
    assert main(["doctor", "--json"]) == 0
    checks = {f["check"]: f for f in json.loads(capsys.readouterr().out)}
    assert checks["server"]["level"] == "ok" and "logged in as" in checks["server"]["message"]
    assert checks["binding"]["level"] == "ok"

    (work / "sealbox.toml").write_text('project = "shop"\nenv = "qa"\n')
    assert main(["doctor", "--json"]) == 1
    capsys.readouterr()
    monkeypatch.setenv("SEALBOX_TOKEN", "sbx_s_" + "A" * 49)
    assert main(["doctor", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert any(f["check"] == "server" and f["level"] == "fail" for f in out)
    assert server.token not in json.dumps(out)


def test_audit_commands_in_remote_mode(
    server: Live,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SEALBOX_HOME", str(tmp_path / "client-home"))
    monkeypatch.setenv("SEALBOX_ADDR", server.url)
    monkeypatch.setenv("SEALBOX_TOKEN", server.token)
    leaked = "remote-audit-leak-8c1f"
    assert main(["project", "create", "shop"]) == 0
    monkeypatch.setattr("sys.stdin", _stdin(leaked))
    assert main(["secret", "set", "shop/prod/API_KEY"]) == 0
    assert main(["secret", "get", "shop/prod/API_KEY"]) == 0
    capsys.readouterr()

    assert main(["audit", "log", "--secret", "shop/prod/API_KEY", "--json"]) == 0
    ops = [e["operation"] for e in json.loads(capsys.readouterr().out)]
    assert "write" in ops and "reveal" in ops
    monkeypatch.setattr("sys.stdin", _stdin(leaked))
    assert main(["audit", "who-read", "--value", "-", "--json"]) == 0
    out = capsys.readouterr().out
    readers = json.loads(out)
    assert readers and readers[0]["path"] == "shop/prod/API_KEY"
    assert leaked not in out
    assert main(["audit", "verify"]) == 0
    assert "audit trail intact" in capsys.readouterr().err
    assert main(["audit", "checkpoint", "--json"]) == 0
    signed = json.loads(capsys.readouterr().out)
    assert signed and all(c["seq"] > 0 and len(c["signature"]) == 128 for c in signed)
    # A local JSONL file is verified on the server's host, never through the server.
    assert main(["audit", "verify", "--file", str(tmp_path / "x.jsonl")]) == 2
    assert "run it on the server's host" in capsys.readouterr().err


def _stdin(text: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(text.encode()), encoding="utf-8")
