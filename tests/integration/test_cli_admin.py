"""`sealbox policy / identity / token` on the embedded vault."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sealbox.cli.main import main

POLICY = """
name = "ci-payments"
description = "CI reads payments prod, never ROOT_*"
[[rules]]
path = "payments/prod/*"
capabilities = ["read", "list"]
[[rules]]
path = "payments/prod/ROOT_*"
capabilities = ["deny"]
"""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_policy_identity_token_flow(
    keyfile_vault: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    f = tmp_path / "ci.toml"
    f.write_text(POLICY)
    assert run(capsys, "policy", "apply", str(f))[0] == 0
    code, out, _ = run(capsys, "policy", "list", "--json")
    assert code == 0 and {p["name"] for p in json.loads(out)} == {"root", "ci-payments"}

    code, out, _ = run(capsys, "identity", "create", "ci", "--policy", "ci-payments", "--json")
    assert code == 0 and json.loads(out)["role_id"]
    code, out, _ = run(capsys, "identity", "secret-id", "ci", "--uses", "1")
    assert code == 0 and out.startswith("sbx_s_")

    code, out, _ = run(
        capsys,
        "policy",
        "explain",
        "--identity",
        "ci",
        "--path",
        "payments/prod/DB",
        "--capability",
        "read",
    )
    assert code == 0 and out.startswith("ALLOW") and "payments/prod/*" in out
    code, out, _ = run(
        capsys,
        "policy",
        "explain",
        "--identity",
        "ci",
        "--path",
        "payments/prod/ROOT_KEY",
        "--capability",
        "read",
    )
    assert code == 4 and out.startswith("DENY") and "ROOT_*" in out

    code, out, err = run(capsys, "token", "create", "--identity", "ci", "--ttl", "10m")
    assert code == 0 and out.startswith("sbx_s_") and "accessor" in err
    value = out.strip()
    code, out, _ = run(capsys, "token", "list", "--json")
    listed = json.loads(out)
    assert len(listed) == 1 and value not in out
    assert run(capsys, "token", "revoke", listed[0]["accessor"])[0] == 0
    code, out, _ = run(capsys, "token", "list", "--json")
    assert json.loads(out)[0]["revoked"] is True

    monkeypatch.setenv("SEALBOX_IDENTITY_PASSWORD", "a long enough password")
    assert (
        run(capsys, "identity", "create", "alice", "--kind", "person", "--policy", "root")[0] == 0
    )
    code, out, _ = run(capsys, "identity", "list", "--json")
    assert {i["name"] for i in json.loads(out)} == {"ci", "alice"}
    assert run(capsys, "identity", "policies", "ci")[0] == 0
    assert run(capsys, "identity", "delete", "ci")[0] == 0


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (["policy", "show", "nope"], 3),
        (["policy", "delete", "root"], 2),
        (["identity", "create", "Bad Name"], 2),
        (["identity", "create", "m", "--policy", "missing"], 3),
        (["identity", "secret-id", "nobody"], 3),
        (["token", "revoke"], 2),
        (["token", "revoke", "deadbeef"], 3),
        (["token", "create", "--ttl", "forever"], 2),
        (["policy", "explain", "--identity", "x", "--path", "a/b/C", "--capability", "fly"], 2),
    ],
)
def test_bad_admin_input(
    keyfile_vault: Path, capsys: pytest.CaptureFixture[str], args: list[str], status: int
) -> None:
    code, _, err = run(capsys, *args)
    assert code == status, err
    assert "Traceback" not in err


def test_bad_policy_files(
    keyfile_vault: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[[rules]]\npath = "a/*"\ncapabilities = ["fly"]\n')
    code, _, err = run(capsys, "policy", "apply", str(bad))
    assert code == 2 and "rule 1" in err and "fly" in err
    empty = tmp_path / "empty.yaml"
    empty.write_text("name: x\nrules: []\n")
    code, _, err = run(capsys, "policy", "apply", str(empty))
    assert code == 2 and "no rules" in err
    unknown = tmp_path / "p.txt"
    unknown.write_text("x")
    assert run(capsys, "policy", "apply", str(unknown))[0] == 2


def test_last_admin_needs_force_and_recover_admin_restores_one(
    keyfile_vault: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(capsys, "identity", "create", "boss", "--policy", "root")[0] == 0
    code, _, err = run(capsys, "identity", "policies", "boss")
    assert code == 5 and "no identity holding root" in err and "--force" in err
    code, _, err = run(capsys, "identity", "delete", "boss")
    assert code == 5
    assert run(capsys, "identity", "policies", "boss", "--force")[0] == 0
    monkeypatch.setenv("SEALBOX_IDENTITY_PASSWORD", "a new long password")
    code, _, err = run(capsys, "identity", "recover-admin", "rescuer")
    assert code == 0 and "rescuer: policies root" in err
    code, out, _ = run(capsys, "identity", "list", "--json")
    assert {i["name"]: i["policies"] for i in json.loads(out)}["rescuer"] == ["root"]
    code, out, _ = run(capsys, "audit", "log", "--json")
    assert "identity.recover" in out
    monkeypatch.setenv("SEALBOX_ADDR", "http://127.0.0.1:1")
    code, _, err = run(capsys, "identity", "recover-admin", "rescuer")
    assert code == 2 and "embedded vault only" in err
