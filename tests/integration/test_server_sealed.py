"""A server that starts sealed: only health, readiness, seal-status and unseal answer
(the read fast path too is refused), unseal by shares over HTTP, seal, auto-unseal's
retry when the KMS comes back, and a hanging KMS that sticks no request."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from tests.fake_kms import Switch, fake_kms  # noqa: F401 (fixture)

from sealbox import factory
from sealbox.errors import InvalidInput
from sealbox.server.app import create_app
from sealbox.server.settings import ServerSettings
from sealbox.server.testing import running

PASSWORD = "correct horse battery staple"
SECRET = "/v1/secrets/payments/dev/API_KEY"


class Srv:
    def __init__(self, url: str, token: str, shares: tuple[str, ...], app: Any) -> None:
        self.url, self.token, self.shares, self.app = url, token, shares, app
        self.http = httpx2.Client(base_url=url, timeout=30)

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.request(method, path, json=body, headers=headers)


def _wait(predicate: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def sealed_srv(home: Path) -> Iterator[Srv]:
    made = factory.operator_init(shares=5, threshold=3, home=home, env={})
    _, token = factory.bootstrap_server(admin="admin", password=PASSWORD, home=home, env={})
    vault = factory.open_vault(home=home, env={}, source="api")
    app = create_app(vault, ServerSettings())
    try:
        with running(app) as url:
            srv = Srv(url, token.value, made.shares, app)
            yield srv
            srv.http.close()
    finally:
        vault.close()


def _unseal(srv: Srv) -> None:
    for share in srv.shares[:3]:
        r = srv.call("PUT", "/v1/sys/unseal", {"key": share})
        assert r.status_code == 200, r.text


def test_a_sealed_server_serves_only_health_status_and_unseal(sealed_srv: Srv) -> None:
    srv = sealed_srv
    r = srv.call("GET", "/v1/sys/health")
    assert r.status_code == 503 and r.json()["sealed"] is True and r.json()["initialized"]
    assert srv.call("GET", "/v1/sys/health?sealedcode=200").status_code == 200
    assert srv.call("GET", "/v1/sys/health?sealedcode=99").status_code == 400
    r = srv.call("GET", "/v1/sys/ready")
    assert r.status_code == 503 and r.json()["sealed"] is True
    st = srv.call("GET", "/v1/sys/seal-status").json()
    assert st["type"] == "shamir" and st["sealed"] is True
    assert (st["t"], st["n"], st["progress"]) == (3, 5, 0)
    assert "cluster_id" not in st and st["storage_type"] == "sqlite"
    # Everything else, the read fast path and a login included, is refused.
    for method, path in [("GET", SECRET), ("GET", "/v1/secret/data/payments/dev/X"),
                         ("POST", "/v1/auth/login"), ("GET", "/v1/projects")]:  # fmt: skip
        r = srv.call(method, path, token=srv.token)
        assert r.status_code == 503, (path, r.text)
        assert r.json() == {"errors": ["sealbox is sealed"]}


def test_unseal_over_http_then_seal(sealed_srv: Srv) -> None:
    srv = sealed_srv
    r = srv.call("PUT", "/v1/sys/unseal", {"key": srv.shares[0]})
    assert r.json()["progress"] == 1 and r.json()["nonce"]
    r = srv.call("PUT", "/v1/sys/unseal", {"key": srv.shares[0]})
    assert r.status_code == 400
    assert "the 2nd share is the same as the 1st" in r.json()["errors"][0]
    assert srv.shares[0].split()[3] not in r.text
    assert srv.call("PUT", "/v1/sys/unseal", {"reset": True}).json()["progress"] == 0
    _unseal(srv)
    st = srv.call("GET", "/v1/sys/seal-status").json()
    assert st["sealed"] is False and st["cluster_id"]
    assert srv.call("GET", "/v1/sys/health").status_code == 200
    assert srv.call("GET", "/v1/sys/ready").json() == {"storage": "ok", "keys": "ok"}
    assert srv.call("POST", "/v1/projects", {"name": "payments"}, srv.token).status_code == 201
    assert srv.call("PUT", SECRET, {"value": "v1"}, srv.token).status_code == 200
    assert srv.call("GET", SECRET, token=srv.token).json()["value"] == "v1"
    # Seal: a token is needed, then the keys leave memory; reads (fast path) refused.
    assert srv.call("PUT", "/v1/sys/seal").status_code == 403  # Vault's answer without a token
    assert srv.call("PUT", "/v1/sys/seal", token=srv.token).status_code == 204
    r = srv.call("GET", SECRET, token=srv.token)
    assert r.status_code == 503 and r.json() == {"errors": ["sealbox is sealed"]}
    assert srv.app.state.sealbox.vault.unseal.status().sealed
    _unseal(srv)
    assert srv.call("GET", SECRET, token=srv.token).json()["value"] == "v1"


def test_shares_only_with_several_processes_is_refused(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sealbox.server.run import open_server_vault

    factory.operator_init(shares=3, threshold=2, home=home, env={})
    monkeypatch.setenv("SEALBOX_HOME", str(home))
    with pytest.raises(InvalidInput, match="cannot be unsealed with shares"):
        open_server_vault(ServerSettings(workers=2).validated(), supervisor=True)
    vault = open_server_vault(ServerSettings(workers=1).validated(), supervisor=True)
    try:
        assert vault.sealed
    finally:
        vault.close()


@pytest.fixture
def kms_home(home: Path, fake_kms: Switch) -> tuple[Path, str, tuple[str, ...]]:  # noqa: F811
    made = factory.operator_init(
        shares=3, threshold=2, auto_unseal="kms", kind="fake-kms", home=home, env={}
    )
    _, token = factory.bootstrap_server(admin="admin", password=PASSWORD, home=home, env={})
    vault = factory.open_vault(home=home, env={})
    try:
        vault.create_project("payments")
    finally:
        vault.close()
    return home, token.value, made.shares


def _kms_app(home: Path, env: dict[str, str] | None = None) -> Any:
    env = env or {}
    vault = factory.open_vault(home=home, env=env, source="api")
    reopen = lambda: factory.open_vault(home=home, env=env, source="api", audit_node="t:unseal")  # noqa: E731
    return vault, create_app(vault, ServerSettings(), reopen=reopen)


def test_auto_unseal_retries_until_the_kms_is_back_and_reads_survive_it_going_away(
    kms_home: tuple[Path, str, tuple[str, ...]],
    fake_kms: Switch,  # noqa: F811
) -> None:
    home, token, _ = kms_home
    fake_kms.mode = "down"
    vault, app = _kms_app(home)
    retry = app.state.auto_unseal
    try:
        with running(app) as url:
            srv = Srv(url, token, (), app)
            _wait(lambda: retry.attempts >= 1 and srv.call("GET", "/v1/sys/ready").json()
                  .get("providers"), "a first probe")  # fmt: skip
            r = srv.call("GET", "/v1/sys/ready")
            assert r.status_code == 503
            assert r.json()["providers"] == {"kms": "key_provider_error", "recovery": "sealed"}
            assert srv.call("GET", "/v1/sys/seal-status").json()["recovery_seal"] is True
            fake_kms.mode = "up"
            _wait(lambda: srv.call("GET", "/v1/sys/health").status_code == 200, "auto-unseal")
            assert srv.call("PUT", SECRET, {"value": "v1"}, token).status_code == 200
            fake_kms.mode = "down"  # the KMS goes away: the KEKs are in memory
            for _ in range(3):
                assert srv.call("GET", SECRET, token=token).json()["value"] == "v1"
            assert srv.call("PUT", SECRET, {"value": "v2"}, token).status_code == 200
            srv.http.close()
    finally:
        retry.close()
        vault.close()


def test_recovery_shares_unseal_while_the_kms_is_down(
    kms_home: tuple[Path, str, tuple[str, ...]],
    fake_kms: Switch,  # noqa: F811
) -> None:
    home, token, shares = kms_home
    fake_kms.mode = "down"
    vault, app = _kms_app(home)
    try:
        with running(app) as url:
            srv = Srv(url, token, shares, app)
            for share in shares[:2]:
                srv.call("PUT", "/v1/sys/unseal", {"key": share})
            assert srv.call("GET", "/v1/sys/health").status_code == 200
            assert srv.call("GET", "/v1/projects", token=token).status_code == 200
            srv.http.close()
    finally:
        app.state.auto_unseal.close()
        vault.close()


def test_a_hanging_kms_sticks_no_request(
    kms_home: tuple[Path, str, tuple[str, ...]],
    fake_kms: Switch,  # noqa: F811
) -> None:
    home, token, _ = kms_home
    fake_kms.mode = "down"
    vault, app = _kms_app(home, {"SEALBOX_KMS_TIMEOUT": "30"})
    retry = app.state.auto_unseal
    try:
        fake_kms.mode = "hang"
        with running(app) as url:
            srv = Srv(url, token, (), app)
            assert fake_kms.hanging.wait(30), "the retry never reached the KMS"
            # While an attempt hangs on the KMS, the server answers.
            assert srv.call("GET", "/v1/sys/health").status_code == 503
            assert srv.call("GET", "/v1/sys/seal-status").json()["sealed"] is True
            assert fake_kms.hanging.is_set()  # still hanging: the answers did not wait on it
            fake_kms.mode = "up"
            fake_kms.release.set()  # the attempt fails (bounded), the next one opens
            _wait(lambda: srv.call("GET", "/v1/sys/health").status_code == 200, "auto-unseal")
            srv.http.close()
    finally:
        retry.close()
        vault.close()


def test_a_passphrase_vault_without_its_passphrase_still_refuses_to_start(home: Path) -> None:
    from sealbox.errors import Sealed

    factory.init_vault(home=home, method="passphrase", passphrase=PASSWORD, env={})
    vault = factory.open_vault(home=home, env={}, source="api")
    try:
        with pytest.raises(Sealed):
            create_app(vault, ServerSettings())
    finally:
        vault.close()


def test_sealbox_operator_in_remote_mode(
    sealed_srv: Srv, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.cli_harness import fake_stdin

    from sealbox.cli.main import main

    srv = sealed_srv
    monkeypatch.setenv("SEALBOX_ADDR", srv.url)
    monkeypatch.setattr("sealbox.cli.operator_cmds.tty_prompt", lambda: None)
    assert main(["operator", "status"]) == 2
    for i, share in enumerate(srv.shares[:3], 1):
        monkeypatch.setattr("sys.stdin", fake_stdin(f"{share}\n".encode()))
        assert main(["operator", "unseal"]) == 0
        err = capsys.readouterr().err
        assert (f"Unseal progress: {i}/3" in err) if i < 3 else ("Unsealed." in err)
    assert main(["operator", "status"]) == 0
    assert "Sealed         false" in capsys.readouterr().out
    monkeypatch.setenv("SEALBOX_TOKEN", srv.token)
    assert main(["operator", "seal"]) == 0
    assert main(["operator", "status"]) == 2
