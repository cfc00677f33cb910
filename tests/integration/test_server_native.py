"""The native REST API under /v1, driven in-process through Starlette's test client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from sealbox.cli.main import main
from sealbox.factory import bootstrap_server, open_vault
from sealbox.server.app import create_app
from sealbox.server.settings import ServerSettings
from sealbox.server.testing import audit_stored

ADMIN_PASSWORD = "correct horse battery staple"


@dataclass
class Server:
    client: TestClient
    token: str

    def h(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    def call(self, method: str, url: str, body: Any = None, token: str | None = None) -> Any:
        return self.client.request(method, url, json=body, headers=self.h(token))


def make_server(tmp_path: Path, **settings: Any) -> Iterator[Server]:
    assert main(["init", "--key-file", str(tmp_path / "master.key")]) == 0
    _, token = bootstrap_server(admin="admin", password=ADMIN_PASSWORD)
    vault = open_vault(source="api")
    try:
        app = create_app(vault, ServerSettings(**settings))
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Server(client, token.value)
    finally:
        # NOTE: in a finally: a caller closing the generator (GeneratorExit at the yield)
        # would otherwise leave the vault open, and its WAL checkpoint thread running for
        # the rest of the session (a forking test then risks a child stuck on its lock).
        vault.close()


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[Server]:
    yield from make_server(tmp_path)


@pytest.fixture
def payments(srv: Server) -> Server:
    assert srv.call("POST", "/v1/projects", {"name": "payments"}).status_code == 201
    return srv


def machine_token(srv: Server, name: str, rules: list[dict[str, Any]]) -> str:
    """A machine identity with one policy of these rules, logged in through AppRole."""
    policy = {"name": f"{name}-policy", "rules": rules}
    assert srv.call("PUT", f"/v1/policies/{name}-policy", policy).status_code == 200
    r = srv.call(
        "POST", "/v1/identities", {"name": name, "kind": "machine", "policies": [f"{name}-policy"]}
    )
    assert r.status_code == 201, r.text
    role_id = r.json()["role_id"]
    secret_id = srv.call("POST", f"/v1/identities/{name}/secret-ids", {}).json()["secret_id"]
    r = srv.client.post("/v1/auth/approle/login", json={"role_id": role_id, "secret_id": secret_id})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


# -- auth ---------------------------------------------------------------------------------------
def test_login_self_renew_revoke(srv: Server) -> None:
    r = srv.client.post("/v1/auth/login", json={"name": "admin", "password": ADMIN_PASSWORD})
    assert r.status_code == 200
    body = r.json()
    # the native keys, in Vault's envelope with its auth block (bao login -method, hvac)
    assert {"token", "accessor", "expires_at"} <= set(body)
    assert body["auth"]["client_token"] == body["token"]
    assert body["auth"]["accessor"] == body["accessor"]
    token = body["token"]
    me = srv.call("GET", "/v1/auth/token/self", token=token).json()
    assert me["identity"] == "admin"
    assert me["kind"] == "person"
    assert me["policies"] == ["root"]
    assert me["accessor"] == body["accessor"]
    assert token not in json.dumps(me)
    renewed = srv.call("POST", "/v1/auth/token/renew", {"increment": "2h"}, token=token)
    assert renewed.status_code == 200
    assert renewed.json()["expires_at"] > body["expires_at"]
    assert srv.call("POST", "/v1/auth/token/revoke-self", token=token).status_code == 204
    assert srv.call("GET", "/v1/auth/token/self", token=token).status_code == 401


def test_bad_password_and_unknown_tokens_are_one_401(srv: Server) -> None:
    r = srv.client.post("/v1/auth/login", json={"name": "admin", "password": "wrong password!"})
    assert r.status_code == 401
    r2 = srv.client.post("/v1/auth/login", json={"name": "nobody", "password": "wrong password!"})
    assert r2.status_code == 401
    assert r.json()["error"]["message"] == r2.json()["error"]["message"]
    from sealbox.auth.tokens import mint

    bodies = []
    for token in ("", "garbage", "sbx_s_" + "A" * 49, mint("s").value, srv.token + "x"):
        r = srv.client.get("/v1/projects", headers={"X-Vault-Token": token})
        assert r.status_code == 401, token
        err = r.json()["error"]
        bodies.append((err["code"], err["message"]))
    r = srv.client.get("/v1/projects")
    assert r.status_code == 401
    bodies.append((r.json()["error"]["code"], r.json()["error"]["message"]))
    assert len(set(bodies)) == 1


def test_x_vault_token_header_works(payments: Server) -> None:
    r = payments.client.get("/v1/projects", headers={"X-Vault-Token": payments.token})
    assert r.status_code == 200
    assert r.json() == {"projects": ["payments"]}


def test_token_from_another_vault_is_401(srv: Server, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("SEALBOX_HOME", str(tmp_path / "other"))
    assert main(["init", "--key-file", str(tmp_path / "other.key")]) == 0
    _, foreign = bootstrap_server(admin="admin", password=ADMIN_PASSWORD)
    r = srv.client.get("/v1/projects", headers={"Authorization": f"Bearer {foreign.value}"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "authentication_failed"


def test_login_failures_are_limited_per_address(tmp_path: Path) -> None:
    """login_rate/login_burst bound an address's *failed* logins (issue 10 has the rest:
    tests/integration/test_server_tokens.py and tests/unit/server/test_login_limits.py)."""
    gen = make_server(tmp_path, login_rate=1, login_burst=3)
    srv = next(gen)
    for _ in range(3):
        r = srv.client.post("/v1/auth/login", json={"name": "admin", "password": "x" * 12})
        assert r.status_code == 401
    r = srv.client.post("/v1/auth/login", json={"name": "admin", "password": ADMIN_PASSWORD})
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["code"] == "rate_limited"
    # The address's failure budget is spent: another name from it is refused too.
    r = srv.client.post("/v1/auth/login", json={"name": "other", "password": ADMIN_PASSWORD})
    assert r.status_code == 429
    gen.close()


# -- projects and secrets ----------------------------------------------------------------------------
def test_projects_and_envs(srv: Server) -> None:
    r = srv.call("POST", "/v1/projects", {"name": "web", "environments": ["dev"]})
    assert r.status_code == 201
    assert srv.call("GET", "/v1/projects").json() == {"projects": ["web"]}
    assert srv.call("GET", "/v1/projects/web/envs").json() == {"environments": ["dev"]}
    assert srv.call("POST", "/v1/projects/web/envs", {"name": "qa"}).status_code == 201
    assert srv.call("GET", "/v1/projects/web/envs").json() == {"environments": ["dev", "qa"]}
    r = srv.call("POST", "/v1/projects", {"name": "web"})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "already_exists"


def test_secret_lifecycle(payments: Server) -> None:
    s = payments
    base = "/v1/secrets/payments/prod/DB_URL"
    r = s.call("PUT", base, {"value": "postgres://one"})
    assert r.json() == {"path": "payments/prod/DB_URL", "version": 1}
    assert s.call("PUT", base, {"value": "postgres://two", "if_version": 1}).json()["version"] == 2
    r = s.call("PUT", base, {"value": "postgres://three", "if_version": 1})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "conflict"
    got = s.call("GET", base).json()
    assert got["value"] == "postgres://two"
    assert got["version"] == 2
    assert set(got) == {"path", "version", "value", "created_at"}
    assert s.call("GET", base + "?version=1").json()["value"] == "postgres://one"
    assert s.call("GET", base + "?reveal=true").json()["value"] == "postgres://two"
    listing = s.call("GET", "/v1/secrets/payments/prod").json()["secrets"]
    assert [x["name"] for x in listing] == ["DB_URL"]
    assert "postgres" not in json.dumps(listing)
    assert set(listing[0]) == {
        "path",
        "name",
        "version",
        "created_at",
        "updated_at",
        "deleted_at",
        "meta",
    }
    hist = s.call("GET", base + "/history").json()["versions"]
    assert [v["version"] for v in hist] == [1, 2]
    assert set(hist[0]) == {"version", "stage", "created_at", "created_by", "rollback_of"}
    r = s.call("POST", base + "/rollback", {"version": 1})
    assert r.json() == {"path": "payments/prod/DB_URL", "version": 3}
    assert s.call("GET", base).json()["value"] == "postgres://one"
    assert s.call("DELETE", base).status_code == 204
    assert s.call("GET", base).status_code == 404
    assert s.call("GET", "/v1/secrets/payments/prod").json()["secrets"] == []
    deleted = s.call("GET", "/v1/secrets/payments/prod?deleted=true").json()["secrets"]
    assert deleted[0]["deleted_at"] is not None
    assert s.call("POST", base + "/undelete").status_code == 204
    assert s.call("GET", base).status_code == 200
    assert s.call("POST", base + "/purge").json() == {"destroyed": 3}
    assert s.call("GET", base).status_code == 404


def test_meta_patch_and_get(payments: Server) -> None:
    base = "/v1/secrets/payments/prod/API_KEY"
    payments.call("PUT", base, {"value": "k"})
    r = payments.call(
        "PATCH",
        base + "/meta",
        {
            "owner": "team-pay",
            "classification": "high",
            "expires": "2030-01-31",
            "rotate_every_days": 90,
            "tags": ["pci"],
        },
    )
    assert r.status_code == 200, r.text
    meta = r.json()["meta"]
    assert meta["owner"] == "team-pay"
    assert meta["classification"] == "high"
    assert meta["expires"].startswith("2030-01-31")
    assert meta["rotate_every_days"] == 90
    assert meta["tags"] == ["pci"]
    r = payments.call("PATCH", base + "/meta", {"owner": None, "tags": None})
    assert r.json()["meta"]["owner"] is None
    assert r.json()["meta"]["tags"] == []
    got = payments.call("GET", base + "/meta").json()
    assert got["path"] == "payments/prod/API_KEY"
    assert got["meta"]["classification"] == "high"
    r = payments.call("PATCH", base + "/meta", {"colour": "red"})
    assert r.status_code == 400
    assert "colour" in r.json()["error"]["message"]
    r = payments.call("PATCH", base + "/meta", {"classification": "top"})
    assert r.status_code == 400


def test_resolve_one_round_trip(payments: Server) -> None:
    for name, value in (("A", "1"), ("B", "2"), ("C", "3")):
        payments.call("PUT", f"/v1/secrets/payments/dev/{name}", {"value": value})
    r = payments.call("GET", "/v1/resolve/payments/dev")
    assert r.json() == {"secrets": {"A": "1", "B": "2", "C": "3"}}
    r = payments.call("GET", "/v1/resolve/payments/dev?only=A,C&purpose=export")
    assert r.json() == {"secrets": {"A": "1", "C": "3"}}
    assert payments.call("GET", "/v1/resolve/payments/dev?only=Z").status_code == 404
    assert payments.call("GET", "/v1/resolve/payments/dev?purpose=steal").status_code == 400


# -- identities, tokens, policies -----------------------------------------------------------------
def test_identities_tokens_policies(payments: Server) -> None:
    s = payments
    policy = {
        "name": "pay-read",
        "description": "read payments prod",
        "rules": [{"path": "payments/prod/*", "capabilities": ["list", "read"]}],
    }
    assert s.call("PUT", "/v1/policies/pay-read", policy).status_code == 200
    assert s.call("GET", "/v1/policies/pay-read").json()["rules"] == policy["rules"]
    names = [p["name"] for p in s.call("GET", "/v1/policies").json()["policies"]]
    assert names == ["root", "pay-read"]
    r = s.call("PUT", "/v1/policies/other", policy)
    assert r.status_code == 400
    r = s.call(
        "POST",
        "/v1/identities",
        {"name": "alice", "kind": "person", "password": "alice password 1", "policies": []},
    )
    assert r.status_code == 201
    assert "role_id" not in r.json()
    r = s.call("PUT", "/v1/identities/alice/policies", {"policies": ["pay-read"]})
    assert r.json()["policies"] == ["pay-read"]
    assert s.call("GET", "/v1/identities/alice").json()["policies"] == ["pay-read"]
    listed = [i["name"] for i in s.call("GET", "/v1/identities").json()["identities"]]
    assert listed == ["admin", "alice"]
    explain = s.call(
        "POST",
        "/v1/policies/explain",
        {"identity": "alice", "path": "payments/prod/DB", "capability": "read"},
    ).json()
    assert explain["allowed"] is True
    assert explain["policy"] == "pay-read"
    assert explain["rule"]["path"] == "payments/prod/*"
    deny = s.call(
        "POST",
        "/v1/policies/explain",
        {"identity": "alice", "path": "payments/prod/DB", "capability": "write"},
    ).json()
    assert deny["allowed"] is False
    # tokens
    r = s.call("POST", "/v1/tokens", {"identity": "alice", "ttl": "10m"})
    assert r.status_code == 200
    alice = r.json()
    tokens = s.call("GET", "/v1/tokens?identity=alice").json()["tokens"]
    assert [t["accessor"] for t in tokens] == [alice["accessor"]]
    assert alice["token"] not in json.dumps(tokens)
    s.call("PUT", "/v1/secrets/payments/prod/DB", {"value": "v"})
    assert s.call("GET", "/v1/secrets/payments/prod/DB", token=alice["token"]).status_code == 200
    assert s.call("DELETE", f"/v1/tokens/{alice['accessor']}").status_code == 204
    # Revocation through this process takes effect at once, despite the token cache.
    assert s.call("GET", "/v1/secrets/payments/prod/DB", token=alice["token"]).status_code == 401
    t2 = s.call("POST", "/v1/tokens", {"identity": "alice"}).json()["token"]
    assert s.call("POST", "/v1/identities/alice/revoke-tokens").json() == {"revoked": 1}
    assert s.call("GET", "/v1/auth/token/self", token=t2).status_code == 401
    assert s.call("DELETE", "/v1/identities/alice").status_code == 204
    assert s.call("GET", "/v1/identities/alice").status_code == 404
    assert s.call("DELETE", "/v1/policies/pay-read").status_code == 204
    assert s.call("GET", "/v1/policies/pay-read").status_code == 404


def test_machine_approle_and_single_use_secret_id(payments: Server) -> None:
    s = payments
    s.call(
        "PUT", "/v1/policies/ci", {"rules": [{"path": "payments/dev/*", "capabilities": ["read"]}]}
    )
    r = s.call("POST", "/v1/identities", {"name": "ci", "kind": "machine", "policies": ["ci"]})
    role_id = r.json()["role_id"]
    secret_id = s.call("POST", "/v1/identities/ci/secret-ids", {"uses": 1}).json()["secret_id"]
    body = {"role_id": role_id, "secret_id": secret_id}
    assert s.client.post("/v1/auth/approle/login", json=body).status_code == 200
    # Spent: refused as Vault refuses it (400 on Vault's path).
    again = s.client.post("/v1/auth/approle/login", json=body)
    assert (again.status_code, again.json()) == (400, {"errors": ["invalid role or secret ID"]})


def test_policy_denial_never_reveals_existence(payments: Server) -> None:
    s = payments
    s.call("PUT", "/v1/secrets/payments/prod/EXISTS", {"value": "top secret"})
    token = machine_token(s, "reader", [{"path": "payments/dev/*", "capabilities": ["read"]}])
    a = s.call("GET", "/v1/secrets/payments/prod/EXISTS", token=token)
    b = s.call("GET", "/v1/secrets/payments/prod/MISSING", token=token)
    assert a.status_code == b.status_code == 403
    ea, eb = a.json()["error"], b.json()["error"]
    assert ea["code"] == eb["code"] == "access_denied"
    # Identical apart from the name the caller asked about.
    assert ea["message"].replace("EXISTS", "X") == eb["message"].replace("MISSING", "X")
    assert "top secret" not in a.text
    # The same through the KV v2 routes, in Vault's error shape.
    a = s.call("GET", "/v1/secret/data/payments/prod/EXISTS", token=token)
    b = s.call("GET", "/v1/secret/data/payments/prod/MISSING", token=token)
    assert a.status_code == b.status_code == 403
    assert a.text.replace("EXISTS", "X") == b.text.replace("MISSING", "X")


def test_policy_that_grants_nothing_is_refused(srv: Server) -> None:
    r = srv.call("PUT", "/v1/policies/empty", {"name": "empty", "rules": []})
    assert r.status_code == 400
    assert "no rules" in r.json()["error"]["message"]


# -- bad input -------------------------------------------------------------------------------------
def test_malformed_json_unknown_fields_and_types(payments: Server) -> None:
    url = "/v1/secrets/payments/dev/X"
    r = payments.client.put(url, content=b"{not json", headers=payments.h())
    assert r.status_code == 400
    assert "malformed JSON" in r.json()["error"]["message"]
    r = payments.call("PUT", url, {"value": "v", "colour": "red"})
    assert r.status_code == 400
    assert "'colour'" in r.json()["error"]["message"]
    r = payments.call("PUT", url, {"value": 5})
    assert r.status_code == 400
    assert "'value'" in r.json()["error"]["message"]
    r = payments.call("PUT", url, ["value"])
    assert r.status_code == 400
    r = payments.call("PUT", url, {})
    assert r.status_code == 400
    assert "missing" in r.json()["error"]["message"]
    # Nothing was written by any of these.
    assert payments.call("GET", url).status_code == 404


def test_oversized_body_is_413(tmp_path: Path) -> None:
    gen = make_server(tmp_path, body_limit=4096)
    srv = next(gen)
    r = srv.call("POST", "/v1/projects", {"name": "x" * 5000})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"
    assert "4096 bytes" in r.json()["error"]["message"]
    assert srv.call("GET", "/v1/projects").json()["projects"] == []
    # A body carrying a value is allowed what the value limit needs, whatever body_limit
    # says (tests/integration/test_server_values.py tests that limit).
    srv.call("POST", "/v1/projects", {"name": "payments"})
    r = srv.call("PUT", "/v1/secrets/payments/dev/BIG", {"value": "x" * 5000})
    assert r.status_code == 200
    gen.close()


@pytest.mark.parametrize(
    "path",
    [
        "/v1/secrets/payments/dev/..%2F..%2Fetc",
        "/v1/secrets/payments%2Fdev/x/NAME",
        "/v1/secrets/payments/dev/A%00B",
        "/v1/secrets/payments/%2E%2E/NAME",
        "/v1/secrets/payments/dev/bad%20name",
        "/v1/secrets/-payments/dev/NAME",
        "/v1/secret/data/payments/dev/a/%2E%2E/b",
        "/v1/secret/data/payments/dev/a%2Fb",
    ],
)
def test_path_traversal_and_invalid_names_are_400(payments: Server, path: str) -> None:
    r = payments.client.get(path, headers=payments.h())
    assert r.status_code == 400, (path, r.text)


def test_raw_dot_segments_are_400(payments: Server) -> None:
    # httpx normalises "..", so send the raw request line through the ASGI app directly.
    import anyio

    sent: list[dict[str, Any]] = []

    async def call() -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/v1/secrets/payments/../dev/NAME",
            "raw_path": b"/v1/secrets/payments/../dev/NAME",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"authorization", f"Bearer {payments.token}".encode())],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await payments.client.app(scope, receive, send)  # type: ignore[arg-type]

    anyio.run(call)
    assert sent[0]["status"] == 400


def test_unknown_route_and_method(payments: Server) -> None:
    r = payments.call("GET", "/v1/projects/payments/nothing/here")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    r = payments.call("PATCH", "/v1/projects")
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"


def test_request_id_echoed_or_generated(payments: Server) -> None:
    r = payments.client.get("/v1/sys/health", headers={"X-Request-Id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = payments.client.get("/v1/sys/health", headers={"X-Request-Id": "bad id\x7f"})
    assert r.headers["x-request-id"] and r.headers["x-request-id"] != "bad id\x7f"
    r = payments.call("GET", "/v1/secrets/payments/dev/NOPE")
    assert r.json()["error"]["request_id"] == r.headers["x-request-id"]


def test_unexpected_error_is_500_with_request_id_only(
    payments: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sealbox.vault import Vault

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("value=hunter2 leaked into a message")

    monkeypatch.setattr(Vault, "list_projects", boom)
    r = payments.call("GET", "/v1/projects")
    assert r.status_code == 500
    err = r.json()["error"]
    assert err["code"] == "internal_error"
    assert "hunter2" not in r.text
    assert err["request_id"] == r.headers["x-request-id"]


def test_integrity_error_is_500_naming_the_path(
    payments: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sealbox.errors import IntegrityError
    from sealbox.vault import Vault

    payments.call("PUT", "/v1/secrets/payments/dev/TAMPERED", {"value": "v"})

    def tampered(self: Vault, ref: Any, **kwargs: Any) -> Any:
        raise IntegrityError(f"integrity check failed for {ref.path} version 1")

    monkeypatch.setattr(Vault, "get", tampered)
    r = payments.call("GET", "/v1/secrets/payments/dev/TAMPERED")
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "integrity_error"
    assert "payments/dev/TAMPERED" in r.json()["error"]["message"]


def test_backend_unavailable_is_503_with_retry_after(
    payments: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sealbox.errors import BackendUnavailable
    from sealbox.vault import Vault

    def down(*args: Any, **kwargs: Any) -> Any:
        raise BackendUnavailable("PostgreSQL postgresql://u:pw@db/x is unavailable")

    monkeypatch.setattr(Vault, "get", down)
    r = payments.call("GET", "/v1/secrets/payments/dev/X")
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    assert "pw@" not in r.text
    assert r.json()["error"]["code"] == "backend_unavailable"


def test_health_and_ready(srv: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    r = srv.client.get("/v1/sys/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.json()["sealed"] is False
    assert srv.client.get("/v1/sys/ready").json() == {"storage": "ok", "keys": "ok"}
    from sealbox.vault import Vault

    monkeypatch.setattr(
        Vault, "health", lambda self: {"storage": "backend_unavailable", "keys": "ok"}
    )
    r = srv.client.get("/v1/sys/ready")
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    assert r.json() == {"storage": "backend_unavailable", "keys": "ok"}
    assert r.headers["x-sealbox-down"] == "storage"


def test_every_read_is_audited(payments: Server) -> None:
    payments.call("PUT", "/v1/secrets/payments/dev/AUDITED", {"value": "v"})
    payments.call("GET", "/v1/secrets/payments/dev/AUDITED")
    payments.call("GET", "/v1/secrets/payments/dev/AUDITED?reveal=true")
    audit_stored(payments.client.app)  # type: ignore[arg-type]
    vault = open_vault()
    try:
        events = [
            (e["operation"], e["actor"], e["source"])
            for e in vault.audit.tail(20)
            if e["path"] == "payments/dev/AUDITED"
        ]
    finally:
        vault.close()
    assert ("read", "admin", "api") in events
    assert ("reveal", "admin", "api") in events
    assert ("write", "admin", "api") in events
