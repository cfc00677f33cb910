"""Servers on PostgreSQL: two processes are one service, and a database outage is a 503
(with Retry-After, never a 500) from which the server recovers by itself."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest
from tests.pg import ADMIN_DSN, throwaway_database

from sealbox.server.testing import free_port, wait_for_port

SEALBOX = shutil.which("sealbox", path=os.path.dirname(sys.executable))
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(SEALBOX is None, reason="the sealbox console script is missing"),
]


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    assert SEALBOX is not None
    return subprocess.run(
        [SEALBOX, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@contextmanager
def pg_vault(tmp_path: Path) -> Iterator[tuple[dict[str, str], str, str]]:
    """A key-file vault on a throw-away database: (env, admin token, database name)."""
    with throwaway_database() as dsn:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEALBOX_")}
        env["SEALBOX_HOME"] = str(tmp_path / "home")
        r = run("init", "--storage", dsn, "--key-file", str(tmp_path / "k.key"), env=env)
        assert r.returncode == 0, r.stderr
        r = run("server", "init", env={**env, "SEALBOX_ADMIN_PASSWORD": "correct horse battery"})
        assert r.returncode == 0, r.stderr
        yield env, r.stdout.strip(), dsn.rsplit("/", 1)[1]


@contextmanager
def server(env: dict[str, str]) -> Iterator[str]:
    assert SEALBOX is not None
    port = free_port()
    proc = subprocess.Popen(
        # One worker: "the next request" after a database blip then reaches the process
        # that saw it (each worker reconnects on its own next request).
        [SEALBOX, "server", "--address", f"127.0.0.1:{port}", "--workers", "1"],
        env={**env, "SEALBOX_TOKEN_CACHE_TTL": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for_port(port, timeout=30)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_two_servers_on_one_database_are_one_service(tmp_path: Path) -> None:
    with pg_vault(tmp_path) as (env, token, _), server(env) as one, server(env) as two:
        h = {"Authorization": f"Bearer {token}"}
        assert httpx2.post(f"{one}/v1/projects", json={"name": "ha"}, headers=h).status_code == 201
        r = httpx2.put(f"{one}/v1/secrets/ha/prod/SHARED", json={"value": "from-one"}, headers=h)
        assert r.json()["version"] == 1
        assert httpx2.get(f"{two}/v1/secrets/ha/prod/SHARED", headers=h).json()["value"] == (
            "from-one"
        )
        r = httpx2.put(f"{two}/v1/secrets/ha/prod/SHARED", json={"value": "from-two"}, headers=h)
        assert r.json()["version"] == 2
        assert httpx2.get(f"{one}/v1/secrets/ha/prod/SHARED", headers=h).json()["value"] == (
            "from-two"
        )
        # A token minted through one server is known to the other; revoked through two,
        # it stops working on one (this test runs both with the token cache off).
        new = httpx2.post(f"{one}/v1/tokens", json={}, headers=h).json()
        h2 = {"Authorization": f"Bearer {new['token']}"}
        assert httpx2.get(f"{two}/v1/auth/token/self", headers=h2).status_code == 200
        assert httpx2.post(f"{two}/v1/auth/token/revoke-self", headers=h2).status_code == 204
        assert httpx2.get(f"{one}/v1/auth/token/self", headers=h2).status_code == 401


def _terminate_backends(database: str) -> int:
    import psycopg

    with psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return len(rows)


def test_database_outage_is_503_and_the_server_recovers(tmp_path: Path) -> None:
    with pg_vault(tmp_path) as (env, token, database), server(env) as url:
        h = {"Authorization": f"Bearer {token}"}
        httpx2.post(f"{url}/v1/projects", json={"name": "ha"}, headers=h)
        httpx2.put(f"{url}/v1/secrets/ha/prod/DB", json={"value": "v"}, headers=h)
        assert httpx2.get(f"{url}/v1/secrets/ha/prod/DB", headers=h).status_code == 200
        assert _terminate_backends(database) >= 1
        statuses = []
        for _ in range(5):
            r = httpx2.get(f"{url}/v1/secrets/ha/prod/DB", headers=h)
            statuses.append(r.status_code)
            if r.status_code == 503:
                assert r.headers["retry-after"] == "1"
                assert r.json()["error"]["code"] == "backend_unavailable"
                assert "postgres" not in r.text.lower()
        assert 500 not in statuses
        assert statuses[0] == 503
        assert statuses[-1] == 200  # reconnected on the next transaction, by itself
        # Writes work again too, and readiness reports storage ok.
        r = httpx2.put(f"{url}/v1/secrets/ha/prod/DB", json={"value": "w"}, headers=h)
        assert r.status_code == 200
        assert httpx2.get(f"{url}/v1/sys/ready").json() == {"storage": "ok", "keys": "ok"}


def test_readiness_reports_storage_down(tmp_path: Path) -> None:
    with pg_vault(tmp_path) as (env, _, database), server(env) as url:
        assert _terminate_backends(database) >= 1
        r = httpx2.get(f"{url}/v1/sys/ready")
        assert r.status_code == 503
        assert r.json() == {"storage": "backend_unavailable", "keys": "ok"}
        assert r.headers["retry-after"] == "1"
        assert httpx2.get(f"{url}/v1/sys/health").status_code == 200  # alive all the same
        assert httpx2.get(f"{url}/v1/sys/ready").status_code == 200
