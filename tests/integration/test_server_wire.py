"""What each native route answers decodes with the SDK's codec (sealbox.wire), and the
decoded value is what the embedded vault says: the server and the SDK agree on the wire."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.test_server_native import ADMIN_PASSWORD, Server, make_server

from sealbox.model import Capability, SecretRef, Stage
from sealbox.wire import accounts, audit, errors, policies, secrets

REF = SecretRef("payments", "prod", "DB_URL")
URL = f"/v1/secrets/{REF.path}"


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[Server]:
    yield from make_server(tmp_path)


def _ok(srv: Server, method: str, url: str, body: object = None, status: int = 200) -> object:
    r = srv.call(method, url, body)
    assert r.status_code == status, r.text
    return r.json()


def test_secret_routes_decode(srv: Server) -> None:
    _ok(srv, "POST", "/v1/projects", {"name": "payments"}, status=201)
    assert secrets.decode_projects(_ok(srv, "GET", "/v1/projects")) == ["payments"]
    assert "prod" in secrets.decode_envs(_ok(srv, "GET", "/v1/projects/payments/envs"))
    assert secrets.decode_version(_ok(srv, "PUT", URL, {"value": "one"})) == 1
    assert secrets.decode_version(_ok(srv, "PUT", URL, {"value": "two"})) == 2
    read = secrets.decode_read(_ok(srv, "GET", URL), REF)
    assert (read.version, read.value.reveal()) == (2, "two")
    meta = secrets.decode_meta(_ok(srv, "PATCH", URL + "/meta", {"owner": "pay", "tags": ["a"]}))
    assert (meta.owner, meta.tags) == ("pay", ("a",))
    assert secrets.decode_meta(_ok(srv, "GET", URL + "/meta")) == meta
    (info,) = secrets.decode_listing(_ok(srv, "GET", "/v1/secrets/payments/prod"))
    assert (info.ref, info.current_version, info.meta, info.deleted_at) == (REF, 2, meta, None)
    history = secrets.decode_history(_ok(srv, "GET", URL + "/history"))
    assert [(v.version, v.stage) for v in history] == [(1, Stage.PREVIOUS), (2, Stage.CURRENT)]
    assert secrets.decode_version(_ok(srv, "POST", URL + "/rollback", {"version": 1})) == 3
    resolved = secrets.decode_resolved(_ok(srv, "GET", "/v1/resolve/payments/prod"))
    assert {k: v.reveal() for k, v in resolved.items()} == {"DB_URL": "one"}
    assert srv.call("DELETE", URL).status_code == 204
    assert secrets.decode_destroyed(_ok(srv, "POST", URL + "/purge", {})) == 3


def test_account_and_policy_routes_decode(srv: Server) -> None:
    rules = [{"path": "payments/*/*", "capabilities": ["read", "list"]}]
    policy = policies.decode_policy(
        _ok(srv, "PUT", "/v1/policies/deploy", {"name": "deploy", "rules": rules})
    )
    assert policies.decode_policy(_ok(srv, "GET", "/v1/policies/deploy")) == policy
    assert policy in policies.decode_policies(_ok(srv, "GET", "/v1/policies"))
    body = {"name": "ci", "kind": "machine", "policies": ["deploy"]}
    machine = accounts.decode_identity(_ok(srv, "POST", "/v1/identities", body, status=201))
    assert (machine.kind, machine.policies) == ("machine", ("deploy",)) and machine.role_id
    assert accounts.decode_identity(_ok(srv, "GET", "/v1/identities/ci")) == machine
    assert machine in accounts.decode_identities(_ok(srv, "GET", "/v1/identities"))
    secret_id = accounts.decode_secret_id(_ok(srv, "POST", "/v1/identities/ci/secret-ids", {}))
    r = srv.client.post(
        "/v1/auth/approle/login", json={"role_id": machine.role_id, "secret_id": secret_id}
    )
    token, info = accounts.decode_login(r.json())
    assert token.startswith("sbx_") and info["accessor"]
    r = srv.client.post("/v1/auth/login", json={"name": "admin", "password": ADMIN_PASSWORD})
    assert accounts.decode_login(r.json())[0].startswith("sbx_")
    new = accounts.decode_new_token(_ok(srv, "POST", "/v1/tokens", {"identity": "ci"}))
    assert new.hash == accounts.token_hash(new.value)
    listed = accounts.decode_tokens(_ok(srv, "GET", "/v1/tokens?identity=ci"))
    assert new.accessor in {t.accessor for t in listed}
    assert all(t.identity == "ci" for t in listed)
    body = {"identity": "ci", "path": "payments/prod/X", "capability": "read"}
    decision = policies.decode_decision(
        _ok(srv, "POST", "/v1/policies/explain", body), "payments/prod/X", "read"
    )
    assert (decision.allowed, decision.policy, decision.capability) == (
        True,
        "deploy",
        Capability.READ,
    )
    assert decision.rule == policy.rules[0]
    revoked = _ok(srv, "POST", "/v1/identities/ci/revoke-tokens", {})
    assert accounts.decode_revoked(revoked) >= 2


def test_audit_routes_decode(srv: Server) -> None:
    _ok(srv, "POST", "/v1/projects", {"name": "payments"}, status=201)
    _ok(srv, "PUT", URL, {"value": "v"})
    _ok(srv, "GET", URL)
    events = audit.decode_events(_ok(srv, "POST", "/v1/audit/log", {"limit": 5}))
    assert events and all(isinstance(e, dict) for e in events)
    who = audit.decode_events(_ok(srv, "POST", "/v1/audit/who-read", {"path": REF.path}))
    assert who
    assert len(audit.decode_hmac(_ok(srv, "POST", "/v1/audit/hash", {"value": "v"}))) == 64
    result = audit.decode_verification(_ok(srv, "POST", "/v1/audit/verify", {}))
    assert result.findings == [] and result.summary
    checkpoints = audit.decode_checkpoints(_ok(srv, "POST", "/v1/audit/checkpoint", {}))
    assert checkpoints and all(c.seq > 0 for c in checkpoints)


def test_error_bodies_decode(srv: Server) -> None:
    r = srv.call("GET", "/v1/secrets/payments/prod/NOPE")
    assert r.status_code == 404
    assert errors.decode_error(r.json())[0] == "not_found"
    r = srv.call("GET", "/v1/projects", token="sbx_s_" + "A" * 49)
    assert errors.decode_error(r.json())[0] == "authentication_failed"
