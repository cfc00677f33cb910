"""Queries (log, who-read, last access, readers) and the canary: no value anywhere."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from tests.unit.audit.conftest import OpenVault

from sealbox.auth.policy import parse_policy
from sealbox.caller import Actor
from sealbox.errors import AccessDenied, SealboxError
from sealbox.model import SecretRef, SecretValue

REF = SecretRef("payments", "prod", "DB_PASSWORD")
CANARY = "canary-4b1d9e-VALUE"
PASSWORD = "canary-pw-31f7aa-long"  # sealbox:allow (a test canary)


def _reader(vault, name: str = "ci"):  # type: ignore[no-untyped-def]
    acc = vault.accounts
    acc.apply_policy(
        parse_policy(
            {
                "name": "prod-read",
                "rules": [{"path": "payments/prod/*", "capabilities": ["read", "list"]}],
            }
        )
    )
    info = acc.create_machine(name, ["prod-read"])
    secret_id = acc.new_secret_id(name)
    token = vault.authenticator().login(
        "approle", {"role_id": info.role_id, "secret_id": secret_id}, Actor(name, "api")
    )
    principal = vault.authenticator().resolve(token.value)
    actor = Actor(name, "api", remote_addr="10.0.0.7", user_agent="sdk/1.0", request_id="req-1")
    return vault.as_principal(principal, actor)


def test_who_read_a_version_and_a_leaked_value(make_vault: OpenVault) -> None:
    vault = make_vault()
    for value in ("old-1", "leaked-2", "new-3"):
        vault.set(REF, SecretValue(value))
    ci = _reader(vault)
    ci.get(REF, version=2)
    ci.resolve("payments", "prod")  # reads version 3 through a run
    vault.get(REF, version=3, reveal=True)
    vault.list_secrets("payments", "prod")  # metadata: not a read
    vault.history(REF)

    v2 = vault.audit.who_read(REF, version=2)
    assert [(e["identity"], e["operation"], e["source"]) for e in v2] == [("ci", "read", "api")]
    assert v2[0]["remote_addr"] == "10.0.0.7" and v2[0]["request_id"] == "req-1"
    assert v2[0]["auth_method"] == "token" and v2[0]["token_accessor"]
    v3 = vault.audit.who_read(REF, version=3)
    assert [(e["identity"], e["operation"]) for e in v3] == [
        ("ci", "run"),
        (vault.actor.identity, "reveal"),
    ]
    digest = vault.audit.value_hmac(SecretValue("leaked-2"))
    by_value = vault.audit.who_read(value_hmac=digest)
    assert [(e["identity"], e["versions"][0]["version"]) for e in by_value] == [("ci", 2)]
    assert (
        vault.audit.who_read(value_hmac=vault.audit.value_hmac(SecretValue("never-stored"))) == []
    )

    readers = vault.audit.readers(REF)
    assert {r.identity: r.versions for r in readers} == {"ci": (2, 3), vault.actor.identity: (3,)}
    last = vault.audit.last_access("payments", "prod")
    assert last[REF.path].operation == "history"


def test_log_filters(make_vault: OpenVault) -> None:
    vault = make_vault()
    vault.set(REF, SecretValue("x"))
    ci = _reader(vault)
    with pytest.raises(AccessDenied):
        ci.set(REF, SecretValue("y"))
    denied = vault.audit.log(denied=True)
    assert [(e["identity"], e["operation"], e["outcome"]) for e in denied] == [
        ("ci", "write", "denied")
    ]
    assert {e["operation"] for e in vault.audit.log(identity="ci")} >= {"write", "login"}
    assert all(e["source"] == "api" for e in vault.audit.log(source="api"))
    assert [e["operation"] for e in vault.audit.log(secret=REF, operations=["write"])] == [
        "write",
        "write",
    ]
    future = vault.audit.log(since=vault._clock() + timedelta(days=1))
    assert future == []
    with pytest.raises(AccessDenied):
        ci.audit.log()


def test_canary_appears_in_no_record_log_or_error(
    make_vault: OpenVault,
    tmp_path: Path,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("SEALBOX_AUDIT_SINKS", f"db,file:{log}")
    caplog.set_level(logging.DEBUG)
    errors: list[str] = []

    def expect_error(call) -> None:  # type: ignore[no-untyped-def]
        try:
            call()
        except SealboxError as exc:
            errors.append(f"{exc!r} {exc.diagnostics()}")

    vault = make_vault()
    other = SecretRef("payments", "prod", "OTHER")
    vault.set(REF, SecretValue(CANARY))  # set / import
    vault.set(other, SecretValue(CANARY + "-2"))
    vault.get(REF)
    vault.get(REF, reveal=True)
    vault.list_secrets("payments", "prod")
    vault.history(REF)
    vault.info(REF)
    vault.update_meta(REF, owner="team")
    vault.rollback(REF, 1)
    vault.resolve("payments", "prod", purpose="run")
    vault.resolve("payments", "prod", purpose="export")
    vault.delete(other)
    vault.undelete(other)
    vault.purge(other)
    vault.audit.value_hmac(SecretValue(CANARY))
    vault.audit.who_read(REF)
    # accounts, logins and tokens
    acc = vault.accounts
    acc.create_person("alice", PASSWORD, [])
    auth = vault.authenticator()
    token = auth.login("password", {"name": "alice", "password": PASSWORD}, Actor("alice", "cli"))
    auth.renew(token.value, timedelta(minutes=5))
    expect_error(
        lambda: auth.login("password", {"name": "alice", "password": CANARY}, Actor("alice", "cli"))
    )
    expect_error(lambda: auth.resolve(CANARY))
    new = acc.create_token(identity="alice")
    acc.revoke_token(new.accessor)
    # denied and failed attempts
    ci = _reader(vault)
    expect_error(lambda: ci.set(REF, SecretValue(CANARY)))
    expect_error(lambda: ci.get(SecretRef("payments", "dev", "X")))
    expect_error(lambda: vault.get(SecretRef("payments", "prod", "MISSING")))
    expect_error(lambda: vault.set(REF, SecretValue(CANARY), if_version=1))
    assert vault.audit.verify().findings == []
    vault.close()

    secrets = (CANARY.encode(), PASSWORD.encode(), token.value.encode(), new.value.encode())
    assert len(errors) == 6
    for blob, where in (
        ((home / "vault.db").read_bytes(), "vault.db"),
        (log.read_bytes(), "audit.jsonl"),
        (caplog.text.encode(), "log lines"),
        (" ".join(errors).encode(), "errors"),
    ):
        for secret in secrets:
            assert secret not in blob, where
    # ... and the trail recorded every operation.
    assert {
        "write",
        "read",
        "reveal",
        "list",
        "history",
        "metadata.read",
        "metadata.write",
        "rollback",
        "run",
        "export",
        "delete",
        "undelete",
        "purge",
        "login",
        "token.renew",
        "token.create",
        "token.revoke",
        "identity.create",
    } <= {
        line.split('"operation":"')[1].split('"')[0]
        for line in log.read_text().splitlines()
        if '"operation":"' in line
    }
