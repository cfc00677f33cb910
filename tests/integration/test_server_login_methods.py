"""One login route for every login method: dispatch, typed bodies, limits, and a plug-in
that gets a working ``/v1/auth/<name>/login`` (and its OpenAPI path) with no server change."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.integration.test_server_native import ADMIN_PASSWORD, Server, make_server
from tests.unit.auth.pin_login import PIN, TARGET, register

from sealbox.server.auth import RateLimiter
from sealbox.server.settings import ServerSettings
from sealbox.server.testing import audit_stored

PERSON_PW = "alice's long password"


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[Server]:
    yield from make_server(tmp_path)


@pytest.fixture
def pin_srv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A server started where a package registers the ``pin`` method."""
    register(monkeypatch, ("pin", TARGET))
    for server in make_server(tmp_path):
        person = {"name": "alice", "kind": "person", "password": PERSON_PW, "policies": []}
        assert server.call("POST", "/v1/identities", person).status_code == 201
        yield server


def robot(srv: Server, name: str = "robot") -> dict[str, str]:
    r = srv.call("POST", "/v1/identities", {"name": name, "kind": "machine"})
    assert r.status_code == 201, r.text
    secret = srv.call("POST", f"/v1/identities/{name}/secret-ids", {}).json()["secret_id"]
    return {"role_id": r.json()["role_id"], "secret_id": secret}


def stopped_limits(srv: Server) -> None:
    """The default limits on a clock that does not move (no refill, no back-off expiry)."""
    defaults = ServerSettings()
    srv.client.app.state.sealbox.login_limits = RateLimiter(  # type: ignore[attr-defined]
        defaults.login_rate, defaults.login_burst, clock=lambda: 1000.0
    )


def whoami(srv: Server, token: str) -> str:
    r = srv.call("GET", "/v1/auth/token/self", token=token)
    assert r.status_code == 200, r.text
    return str(r.json()["identity"])


# -- dispatch ------------------------------------------------------------------------------------
@pytest.mark.parametrize("verb", ["POST", "PUT"])
def test_an_unknown_method_is_a_native_404(srv: Server, verb: str) -> None:
    r = srv.client.request(verb, "/v1/auth/jwt/login", json={"role": "x", "jwt": "y"})
    assert r.status_code == 404
    error = r.json()["error"]
    assert error["code"] == "not_found"
    assert error["message"] == "no login method 'jwt' on this server"
    assert set(error) == {"code", "message", "request_id"}


@pytest.mark.parametrize("url", ["/v1/auth/approle/login", "/v1/auth/password/login"])
def test_the_login_route_takes_post_and_put_only(srv: Server, url: str) -> None:
    r = srv.client.get(url)
    assert r.status_code == 405
    assert r.headers["allow"] == "POST, PUT"


@pytest.mark.parametrize("verb", ["POST", "PUT"])
def test_approle_logs_in_with_post_or_put(srv: Server, verb: str) -> None:
    """``bao write auth/approle/login`` sends a PUT."""
    r = srv.client.request(verb, "/v1/auth/approle/login", json=robot(srv))
    assert r.status_code == 200, r.text
    answer = r.json()
    # the native keys the SDK reads, and Vault's auth block beside them
    assert {"token", "accessor", "expires_at", "auth", "request_id"} <= set(answer)
    assert answer["auth"]["client_token"] == answer["token"]
    assert whoami(srv, r.json()["token"]) == "robot"


@pytest.mark.parametrize(("verb", "url"), [("POST", "/v1/auth/login"), ("POST", "/v1/auth/password/login"), ("PUT", "/v1/auth/password/login")])  # fmt: skip
def test_password_logs_in_at_the_alias_and_at_its_method_path(
    srv: Server, verb: str, url: str
) -> None:
    body = {"name": "admin", "password": ADMIN_PASSWORD}
    r = srv.client.request(verb, url, json=body)
    assert r.status_code == 200, r.text
    assert r.json()["token"].startswith("sbx_p_")
    assert whoami(srv, r.json()["token"]) == "admin"
    assert srv.client.request(verb, url, json={**body, "password": "wrong!"}).status_code == 401


def test_a_method_that_takes_no_path_segment_is_404_with_one(srv: Server) -> None:
    r = srv.client.post("/v1/auth/approle/login/robot", json=robot(srv))
    assert r.status_code == 404
    # Vault's path, Vault's error shape.
    assert r.json() == {"errors": ["login method 'approle' is served at /v1/auth/approle/login"]}


@pytest.mark.parametrize(
    ("url", "body", "message"),
    [
        ("/v1/auth/password/login", {"name": "admin"}, "missing field(s) in the request body: password"),
        ("/v1/auth/password/login", {"name": 1, "password": "x"}, "field 'name' must be a string, not int"),
        ("/v1/auth/password/login", {"name": "admin", "password": None}, "field 'password' must be a string, not null"),
        ("/v1/auth/approle/login", {"role_id": "r"}, "missing field(s) in the request body: secret_id"),
        ("/v1/auth/approle/login", {"role_id": "r", "secret_id": ["s"]}, "field 'secret_id' must be a string, not list"),
        ("/v1/auth/approle/login", {"role_id": "r", "secret_id": "s", "ttl": "1h"}, "unknown field(s) in the request body: 'ttl'"),
    ],
)  # fmt: skip
def test_a_body_off_the_declared_fields_is_a_400(
    srv: Server, url: str, body: dict[str, Any], message: str
) -> None:
    r = srv.client.put(url, json=body)
    assert r.status_code == 400, r.text
    if "approle" in url:  # a Vault path: Vault's error shape
        assert r.json() == {"errors": [message]}
    else:
        error = r.json()["error"]
        assert (error["code"], error["message"]) == ("invalid_input", message)


def test_approle_failures_back_off_that_role_id_only(srv: Server) -> None:
    stopped_limits(srv)
    guessed, other = robot(srv, "guessed"), robot(srv, "other")
    wrong = {**guessed, "secret_id": "not the secret id"}
    statuses = [srv.client.post("/v1/auth/approle/login", json=wrong).status_code for _ in range(8)]
    # Vault answers a refused AppRole login 400; the limits count it as a failure all the same.
    assert statuses == [400] * 6 + [429] * 2
    # The right secret id for the backed-off role is refused too, until the back-off ends…
    assert srv.client.post("/v1/auth/approle/login", json=guessed).status_code == 429
    # … while another role from the same address logs in.
    assert srv.client.put("/v1/auth/approle/login", json=other).status_code == 200


# -- a plug-in -----------------------------------------------------------------------------------
def test_a_plug_in_method_logs_in_at_its_own_path(pin_srv: Server) -> None:
    r = pin_srv.client.post("/v1/auth/pin/login/alice", json={"pin": PIN, "remember": True})
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    assert whoami(pin_srv, token) == "alice"
    listed = pin_srv.call("GET", "/v1/tokens").json()["tokens"]
    assert [t["auth_method"] for t in listed if t["accessor"] == r.json()["accessor"]] == ["pin"]
    assert pin_srv.client.put("/v1/auth/pin/login/alice", json={"pin": "0000"}).status_code == 401
    audit_stored(pin_srv.client.app)  # type: ignore[arg-type]
    events = pin_srv.call("POST", "/v1/audit/log", {"operations": ["login"]}).json()["events"]
    seen = [(e["path"], e["outcome"], e["reason"]) for e in events]
    assert ("identity/alice", "denied", "bad credentials") in seen
    assert ("identity/alice", "allowed", r.json()["accessor"]) in seen


@pytest.mark.parametrize(
    ("url", "body", "status"),
    [
        ("/v1/auth/pin/login/alice", {"pin": 2468}, 400),
        ("/v1/auth/pin/login/alice", {"pin": PIN, "remember": "yes"}, 400),
        ("/v1/auth/pin/login/alice", {"pin": PIN, "person": "alice"}, 400),
        ("/v1/auth/pin/login/alice", {}, 400),
        ("/v1/auth/pin/login", {"pin": PIN, "person": "alice"}, 404),
        ("/v1/auth/pin/login/nobody", {"pin": PIN}, 401),
    ],
)
def test_a_plug_in_body_is_checked_against_its_fields(
    pin_srv: Server, url: str, body: dict[str, Any], status: int
) -> None:
    r = pin_srv.client.post(url, json=body)
    assert r.status_code == status, r.text


def test_a_plug_in_shares_the_login_limits_of_its_subject(pin_srv: Server) -> None:
    """``pin`` names people as ``password`` does: guessing alice's PIN backs off alice's
    password from that address too."""
    stopped_limits(pin_srv)
    wrong = [pin_srv.client.post("/v1/auth/pin/login/alice", json={"pin": "0"}).status_code for _ in range(7)]  # fmt: skip
    assert wrong == [401] * 6 + [429]
    body = {"name": "alice", "password": PERSON_PW}
    assert pin_srv.client.post("/v1/auth/login", json=body).status_code == 429
    other = TestClient(pin_srv.client.app, client=("198.51.100.2", 40000))
    assert other.post("/v1/auth/login", json=body).status_code == 200


def test_a_plug_in_is_documented_from_its_declaration(pin_srv: Server) -> None:
    doc = pin_srv.client.get("/v1/openapi.json").json()
    item = doc["paths"]["/v1/auth/pin/login/{name}"]
    assert set(item) == {"post", "put"}
    schema = item["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {
        "type": "object",
        "properties": {"pin": {"type": "string", "minLength": 1}, "remember": {"type": "boolean"}},
        "additionalProperties": False,
        "required": ["pin"],
    }
    [param] = item["post"]["parameters"]
    assert param["name"] == "name" and param["schema"]["pattern"] == "^[a-z0-9][a-z0-9_-]{0,62}$"
    assert {"401", "429"} <= set(item["post"]["responses"])
    # The templates stand for the names not listed as their own paths.
    for template, listed in (
        ("/v1/auth/{method}/login", ["approle", "password"]),
        ("/v1/auth/{method}/login/{name}", ["pin", "userpass"]),
    ):
        params = doc["paths"][template]["post"]["parameters"]
        method = next(p for p in params if p["name"] == "method")
        assert method["schema"]["not"] == {"enum": listed}
        assert "404" in doc["paths"][template]["post"]["responses"]
    assert "/v1/auth/approle/login" in doc["paths"] and "/v1/auth/pin/login" not in doc["paths"]
