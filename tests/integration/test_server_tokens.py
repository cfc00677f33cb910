"""Issue 10 over HTTP: the token tree, typed admin bodies, the last admin, login limits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.integration.test_server_native import ADMIN_PASSWORD, Server, make_server

from sealbox.factory import open_vault
from sealbox.server.app import create_app
from sealbox.server.auth import RateLimiter
from sealbox.server.settings import ServerSettings


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[Server]:
    yield from make_server(tmp_path)


def login(client: TestClient, name: str = "admin", password: str = ADMIN_PASSWORD) -> Any:
    return client.post("/v1/auth/login", json={"name": name, "password": password})


def admin_login(srv: Server) -> str:
    r = login(srv.client)
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


# -- defect 3: null, missing and mistyped fields; the last admin -------------------------------
@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("PUT", "/v1/identities/admin/policies", {"policies": None}),
        ("PUT", "/v1/identities/admin/policies", {"policies": "root"}),
        ("PUT", "/v1/identities/admin/policies", {"policies": [None]}),
        ("PUT", "/v1/identities/admin/policies", {}),
        ("POST", "/v1/identities", {"name": "m", "kind": "machine", "policies": None}),
        ("POST", "/v1/identities", {"name": None, "kind": "machine"}),
        ("POST", "/v1/identities/admin/secret-ids", {"uses": None}),
        ("POST", "/v1/identities/admin/secret-ids", {"uses": True}),
        ("POST", "/v1/tokens", {"ttl": None}),
        ("POST", "/v1/tokens", {"policies": None}),
        ("POST", "/v1/tokens", {"orphan": "yes"}),
        ("POST", "/v1/policies/explain", {"identity": "admin", "path": None, "capability": "read"}),
        ("POST", "/v1/auth/token/renew", {"increment": None}),
        ("POST", "/v1/auth/login", {"name": "admin", "password": None}),
        ("POST", "/v1/auth/approle/login", {"role_id": 1, "secret_id": "x"}),
    ],
)
def test_null_missing_or_mistyped_fields_are_400(
    srv: Server, method: str, url: str, body: dict[str, Any]
) -> None:
    r = srv.call(method, url, body)
    assert r.status_code == 400, r.text
    if url.startswith("/v1/auth/approle/"):  # Vault's path: Vault's error shape
        assert r.json()["errors"]
    else:
        assert r.json()["error"]["code"] == "invalid_input"
    assert srv.call("GET", "/v1/identities/admin").json()["policies"] == ["root"]


def test_null_policies_no_longer_lock_everyone_out(srv: Server) -> None:
    """The issue's request, then every other way to remove the only admin."""
    r = srv.call("PUT", "/v1/identities/admin/policies", {"policies": None})
    assert r.status_code == 400
    assert "field 'policies' must be a list of strings, not null" in r.json()["error"]["message"]
    r = srv.call("PUT", "/v1/identities/admin/policies", {"policies": []})
    assert r.status_code == 409, r.text
    assert "no identity holding root" in r.json()["error"]["message"]
    assert srv.call("GET", "/v1/identities").status_code == 200  # still in charge
    assert srv.call("DELETE", "/v1/policies/root").status_code == 400  # built in
    # A second admin may be removed; forcing the last one out works and is audited.
    srv.call("POST", "/v1/identities", {"name": "bot", "kind": "machine", "policies": ["root"]})
    assert srv.call("DELETE", "/v1/identities/bot").status_code == 204
    srv.call("POST", "/v1/identities", {"name": "bot", "kind": "machine", "policies": ["root"]})
    assert srv.call("DELETE", "/v1/identities/bot?force=true").status_code == 204
    r = srv.call("PUT", "/v1/identities/admin/policies?force=true", {"policies": []})
    assert r.status_code == 200 and r.json()["policies"] == []
    assert srv.call("GET", "/v1/identities").status_code == 403


# -- defect 2: the token tree --------------------------------------------------------------------
def test_a_login_token_cannot_mint_a_longer_lived_child(srv: Server) -> None:
    parent = admin_login(srv)  # 1 h, max 24 h
    r = srv.call("POST", "/v1/tokens", {"ttl": "8700h"}, token=parent)
    assert r.status_code == 400, r.text
    message = r.json()["error"]["message"]
    assert "field 'ttl' asks for 362d12h" in message
    assert "parent token's life" in message
    r = srv.call("POST", "/v1/tokens", {"max_ttl": "48h"}, token=parent)
    assert r.status_code == 400 and "max_ttl" in r.json()["error"]["message"]
    r = srv.call("POST", "/v1/tokens", {"ttl": "30m"}, token=parent)
    assert r.status_code == 200
    child = r.json()
    me = srv.call("GET", "/v1/auth/token/self", token=parent).json()
    assert child["parent"] == me["accessor"]
    assert child["expires_at"] <= me["expires_at"]
    listed = {t["accessor"]: t for t in srv.call("GET", "/v1/tokens").json()["tokens"]}
    assert listed[child["accessor"]]["parent"] == me["accessor"]


def test_renewal_past_the_max_is_capped_with_a_warning(srv: Server) -> None:
    token = admin_login(srv)
    r = srv.call("POST", "/v1/auth/token/renew", {"increment": "2h"}, token=token)
    assert r.status_code == 200 and r.json()["warnings"] == []
    r = srv.call("POST", "/v1/auth/token/renew", {"increment": "8700h"}, token=token)
    assert r.status_code == 200
    body = r.json()
    assert len(body["warnings"]) == 1 and "capped" in body["warnings"][0]
    listed = srv.call("GET", "/v1/tokens?identity=admin").json()["tokens"]
    mine = next(t for t in listed if t["expires_at"] == body["expires_at"])
    assert mine["expires_at"] == mine["max_expires_at"]


def test_revoking_a_parent_revokes_cached_children_at_once(srv: Server) -> None:
    srv.call("PUT", "/v1/secrets/payments/prod/DB", {"value": "v"})  # 404s are fine here
    parent = admin_login(srv)
    child = srv.call("POST", "/v1/tokens", {}, token=parent).json()["token"]
    grandchild = srv.call("POST", "/v1/tokens", {}, token=child).json()["token"]
    for t in (child, grandchild):  # resolved, so cached in the server's token cache
        assert srv.call("GET", "/v1/auth/token/self", token=t).status_code == 200
    assert srv.call("POST", "/v1/auth/token/revoke-self", token=parent).status_code == 204
    for t in (parent, child, grandchild):
        assert srv.call("GET", "/v1/projects", token=t).status_code == 401


def test_revocation_reaches_another_server_process(srv: Server, tmp_path: Path) -> None:
    """Two servers on one database: a child cached on B dies when A revokes its parent
    (B here caches nothing; with its 1 s cache it would die within that bound, which
    tests/unit/server/test_token_cache.py shows with a fake clock)."""
    other_vault = open_vault(source="api")
    other = create_app(other_vault, ServerSettings(token_cache_ttl=0))
    with TestClient(other, raise_server_exceptions=False) as b:
        parent = admin_login(srv)
        child = srv.call("POST", "/v1/tokens", {}, token=parent).json()["token"]
        h = {"Authorization": f"Bearer {child}"}
        assert b.get("/v1/projects", headers=h).status_code == 200
        assert srv.call("POST", "/v1/auth/token/revoke-self", token=parent).status_code == 204
        assert b.get("/v1/projects", headers=h).status_code == 401
    other_vault.close()


def test_orphans_need_admin(srv: Server) -> None:
    srv.call("PUT", "/v1/policies/self", {"rules": [{"path": "x/*", "capabilities": ["read"]}]})
    srv.call("POST", "/v1/identities", {"name": "m", "kind": "machine", "policies": ["self"]})
    machine = srv.call("POST", "/v1/tokens", {"identity": "m", "orphan": True}).json()["token"]
    r = srv.call("POST", "/v1/tokens", {"orphan": True}, token=machine)
    assert r.status_code == 403
    parent = admin_login(srv)
    orphan = srv.call("POST", "/v1/tokens", {"identity": "m", "orphan": True}, token=parent)
    assert orphan.status_code == 200 and orphan.json()["parent"] is None
    srv.call("POST", "/v1/auth/token/revoke-self", token=parent)
    me = srv.call("GET", "/v1/auth/token/self", token=orphan.json()["token"])
    assert me.status_code == 200


# -- defect 4: login limits --------------------------------------------------------------------
def test_a_guesser_locks_out_neither_its_victim_nor_its_neighbours(srv: Server) -> None:
    """The issue's three scenarios, with the default limits and a stopped clock."""
    defaults = ServerSettings()
    srv.client.app.state.sealbox.login_limits = RateLimiter(  # type: ignore[attr-defined]
        defaults.login_rate, defaults.login_burst, clock=lambda: 1000.0
    )
    attacker = TestClient(srv.client.app, client=("203.0.113.7", 40000))
    victim = TestClient(srv.client.app, client=("198.51.100.2", 40000))
    assert (
        srv.call(
            "POST",
            "/v1/identities",
            {"name": "bob", "kind": "person", "password": "bob's long password", "policies": []},
        ).status_code
        == 201
    )
    statuses = [login(attacker, "admin", "wrong password!").status_code for _ in range(10)]
    # Five free failures and one more, then the pair is backed off (1 s, then 2 s …).
    assert statuses == [401] * 6 + [429] * 4
    # 1. the right password from another address goes through
    assert login(victim).status_code == 200
    # 2. another identity from the guesser's address is not blocked
    assert login(attacker, "bob", "bob's long password").status_code == 200
    # 3. successful logins spend no failure budget: many in a row all succeed
    for _ in range(12):
        assert login(victim, "bob", "bob's long password").status_code == 200


@pytest.mark.integration
def test_the_token_tree_and_the_last_admin_on_postgresql(tmp_path: Path) -> None:
    """Two servers on one PostgreSQL database (two nodes): a child dies on B when its parent
    is revoked through A, and the last admin is kept."""
    from tests.pg import throwaway_database

    from sealbox.cli.main import main
    from sealbox.factory import bootstrap_server

    with throwaway_database() as dsn:
        assert main(["init", "--storage", dsn, "--key-file", str(tmp_path / "k.key")]) == 0
        bootstrap_server(admin="admin", password=ADMIN_PASSWORD)
        vaults = [open_vault(source="api"), open_vault(source="api")]
        apps = [create_app(v, ServerSettings(token_cache_ttl=0)) for v in vaults]
        with TestClient(apps[0]) as a, TestClient(apps[1]) as b:
            parent = login(a).json()["token"]
            child = a.post("/v1/tokens", json={}, headers={"X-Vault-Token": parent}).json()
            h = {"X-Vault-Token": child["token"]}
            assert b.get("/v1/auth/token/self", headers=h).status_code == 200
            revoked = a.post("/v1/auth/token/revoke-self", headers={"X-Vault-Token": parent})
            assert revoked.status_code == 204
            assert b.get("/v1/auth/token/self", headers=h).status_code == 401
            admin = {"X-Vault-Token": login(b).json()["token"]}
            r = b.put("/v1/identities/admin/policies", json={"policies": []}, headers=admin)
            assert r.status_code == 409
            r = b.put("/v1/identities/admin/policies", json={"policies": None}, headers=admin)
            assert r.status_code == 400
        for v in vaults:
            v.close()
