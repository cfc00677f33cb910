"""`sealbox server` on a shares vault, as a real process: it starts sealed with one clear
line, the real `bao` CLI unseals it share by share, reads work, `bao operator seal` seals."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx2
import pytest
from tests.e2e.test_server_lifecycle import SEALBOX, base_env, sealbox, server_process
from tests.integration.test_server_bao import BAO

pytestmark = [
    pytest.mark.skipif(SEALBOX is None, reason="the sealbox console script is missing"),
    pytest.mark.skipif(BAO is None, reason="the OpenBao CLI is not installed"),
    pytest.mark.slow,
]


def test_a_shares_server_starts_sealed_and_bao_unseals_it(tmp_path: Path) -> None:
    env = base_env(tmp_path / "home")
    r = sealbox("operator", "init", "--shares", "3", "--threshold", "2", env=env)
    assert r.returncode == 0, r.stderr
    shares = [line.split(": ", 1)[1] for line in r.stdout.splitlines()]
    r = sealbox("server", "init", "--admin", "admin",
                env={**env, "SEALBOX_ADMIN_PASSWORD": "correct horse battery staple"})  # fmt: skip
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip().splitlines()[-1]
    with server_process(env) as (url, proc):
        bao_env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "BAO_ADDR": url}

        def bao(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
            assert BAO is not None
            return subprocess.run([BAO, *args], env={**bao_env, **extra}, capture_output=True,
                                  text=True, timeout=60, check=False)  # fmt: skip

        assert httpx2.get(f"{url}/v1/sys/health").status_code == 503
        assert bao("status").returncode == 2
        for share in shares[:2]:
            r = bao("operator", "unseal", "-format=json", share)
            assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["sealed"] is False
        h = {"Authorization": f"Bearer {token}"}
        assert httpx2.post(f"{url}/v1/projects", json={"name": "web"}, headers=h).status_code == 201
        assert bao("operator", "seal", BAO_TOKEN=token).returncode == 0
        assert bao("status").returncode == 2
        os.killpg(proc.pid, 15)
        proc.wait(timeout=20)
        _, err = proc.communicate(timeout=5)
    starting = [line for line in err.splitlines() if "starting SEALED" in line]
    assert len(starting) == 1, err
    assert "2 of 3 unseal shares" in starting[0]
    assert not any(w in err for s in shares for w in s.split()[4:8])
