"""`sealbox run --creds` as a process: SIGTERM reaches the command and the lease is revoked
when it ends; a sealbox killed with SIGKILL cannot revoke, so the lease stays until it
expires and `sealbox lease reap` drops its user."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from tests.upstream_servers import Cluster, scram_cluster

from sealbox.cli.main import main

SEALBOX = shutil.which("sealbox", path=os.path.dirname(sys.executable))
ROLE = "payments/prod/db-short"
CREATION = "CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}'"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(SEALBOX is None, reason="the sealbox console script is not installed"),
]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with scram_cluster() as c:
        yield c


@pytest.fixture
def env(
    keyfile_vault: Path, cluster: Cluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> dict[str, str]:
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(cluster.url().encode())))
    assert main(["secret", "set", "payments/prod/PG_ADMIN_URL"]) == 0
    assert main([
        "creds", "role", "create", ROLE, "--backend", "postgres",
        "--admin", "payments/prod/PG_ADMIN_URL", "--creation", CREATION,
        "--ttl", "2s", "--max-ttl", "1h",
    ]) == 0  # fmt: skip
    out = {k: v for k, v in os.environ.items() if not k.startswith("SEALBOX_")}
    out["SEALBOX_HOME"] = str(keyfile_vault)
    out.update(SEALBOX_PROJECT="payments", SEALBOX_ENV="prod")
    return out


def _sealbox(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    assert SEALBOX is not None
    return subprocess.run(
        [SEALBOX, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def _start(env: dict[str, str], seen: Path) -> subprocess.Popen[str]:
    """``run --creds`` of a command that writes its lease id and user, then waits."""
    assert SEALBOX is not None
    script = (
        "import json, os, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: sys.exit(7))\n"
        f"open({str(seen)!r} + '.tmp', 'w').write(json.dumps({{'lease':"
        " os.environ['DB_LEASE_ID'], 'user': os.environ['DB_USERNAME'],"
        " 'pw': os.environ['DB_PASSWORD']}))\n"
        f"os.rename({str(seen)!r} + '.tmp', {str(seen)!r})\n"
        "time.sleep(120)\n"
    )
    return subprocess.Popen(
        [SEALBOX, "run", "--creds", f"DB={ROLE}", "--", sys.executable, "-c", script],
        env=env,
        text=True,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _wait_for(path: Path, proc: subprocess.Popen[str]) -> dict[str, str]:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "the command never started"
        time.sleep(0.05)
    data: dict[str, str] = json.loads(path.read_text())
    return data


def _can_login(cluster: Cluster, user: str, pw: str) -> bool:
    try:
        with psycopg.connect(cluster.dsn(user, pw), autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


def test_sigterm_reaches_the_command_and_the_lease_is_revoked(
    env: dict[str, str], cluster: Cluster, tmp_path: Path
) -> None:
    proc = _start(env, tmp_path / "seen.json")
    seen = _wait_for(tmp_path / "seen.json", proc)
    assert _can_login(cluster, seen["user"], seen["pw"])
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 7  # the command's status
    assert not _can_login(cluster, seen["user"], seen["pw"])
    shown = json.loads(_sealbox("lease", "show", seen["lease"], "--json", env=env).stdout)
    assert shown["state"] == "revoked"


def test_a_killed_sealbox_leaves_the_lease_to_expiry_and_the_reaper(
    env: dict[str, str], cluster: Cluster, tmp_path: Path
) -> None:
    proc = _start(env, tmp_path / "seen.json")
    seen = _wait_for(tmp_path / "seen.json", proc)
    os.killpg(proc.pid, signal.SIGKILL)  # sealbox and its command, as an OOM kill would
    proc.wait(timeout=60)
    assert _can_login(cluster, seen["user"], seen["pw"])  # nobody revoked it
    # The reaper drops the user once the lease expired (its TTL is 2 s; nothing is
    # timed: the loop waits until the reap reports it).
    deadline = time.monotonic() + 60
    while True:
        reaped = json.loads(_sealbox("lease", "reap", "--json", env=env).stdout)
        if seen["lease"] in reaped["revoked"]:
            break
        assert time.monotonic() < deadline, reaped
        time.sleep(0.5)
    assert not _can_login(cluster, seen["user"], seen["pw"])
