"""``sealbox server init`` and ``sealbox server`` as subprocesses of the installed CLI."""

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

from sealbox.server.testing import free_port, wait_for_port

SEALBOX = shutil.which("sealbox", path=os.path.dirname(sys.executable))
pytestmark = pytest.mark.skipif(SEALBOX is None, reason="the sealbox console script is missing")
ADMIN_PASSWORD = "correct horse battery staple"


def base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALBOX_")}
    env["SEALBOX_HOME"] = str(home)
    return env


def sealbox(
    *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    assert SEALBOX is not None
    return subprocess.run(
        [SEALBOX, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = base_env(tmp_path / "home")
    r = sealbox("init", "--key-file", str(tmp_path / "master.key"), env=e)
    assert r.returncode == 0, r.stderr
    return e


@contextmanager
def server_process(
    env: dict[str, str], *args: str, port: int | None = None
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    assert SEALBOX is not None
    port = port or free_port()
    proc = subprocess.Popen(
        [SEALBOX, "server", "--address", f"127.0.0.1:{port}", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        try:
            wait_for_port(port, timeout=30)
        except TimeoutError:
            proc.kill()
            _, err = proc.communicate(timeout=10)
            raise AssertionError(f"server did not start: {err}") from None
        scheme = "https" if "--tls-cert" in args else "http"
        yield f"{scheme}://127.0.0.1:{port}", proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def init_admin(env: dict[str, str]) -> str:
    r = sealbox(
        "server", "init", "--admin", "boss", env={**env, "SEALBOX_ADMIN_PASSWORD": ADMIN_PASSWORD}
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1  # the token, and nothing else, on stdout
    return lines[0]


def test_server_init_prints_token_once_and_refuses_a_second_run(env: dict[str, str]) -> None:
    token = init_admin(env)
    assert token.startswith("sbx_p_")
    r = sealbox("server", "init", env={**env, "SEALBOX_ADMIN_PASSWORD": ADMIN_PASSWORD})
    assert r.returncode == 5
    assert "already initialised" in r.stderr
    assert token not in r.stdout + r.stderr


def test_server_init_without_password_is_refused(env: dict[str, str]) -> None:
    r = subprocess.run(
        [str(SEALBOX), "server", "init"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # no controlling terminal: no prompt possible
        check=False,
    )
    assert r.returncode == 2
    assert "SEALBOX_ADMIN_PASSWORD" in r.stderr


def test_server_serves_and_stops_on_sigterm(env: dict[str, str]) -> None:
    token = init_admin(env)
    h = {"Authorization": f"Bearer {token}"}
    with server_process(env) as (url, proc):
        assert httpx2.get(f"{url}/v1/sys/health").json()["status"] == "ok"
        assert httpx2.post(f"{url}/v1/projects", json={"name": "web"}, headers=h).status_code == 201
        r = httpx2.put(f"{url}/v1/secrets/web/dev/TOKEN", json={"value": "v1"}, headers=h)
        assert r.json().get("version") == 1, r.text
        assert httpx2.get(f"{url}/v1/secrets/web/dev/TOKEN", headers=h).json()["value"] == "v1"
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        _, err = proc.communicate(timeout=5)
    # Logs are JSON lines on stderr, without the token or the value.
    lines = [line for line in err.splitlines() if line.startswith("{")]
    assert any('"route":"/v1/secrets/{project}/{env}/{name}"' in line for line in lines)
    assert token not in err
    assert '"v1"' not in err


def test_server_refuses_to_start_sealed(tmp_path: Path) -> None:
    e = base_env(tmp_path / "home")
    r = sealbox("init", env={**e, "SEALBOX_PASSPHRASE": "a long test passphrase"})
    assert r.returncode == 0, r.stderr
    assert SEALBOX is not None
    r = subprocess.run(
        [SEALBOX, "server", "--address", f"127.0.0.1:{free_port()}"],
        env=e,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        check=False,
    )
    assert r.returncode == 6
    errors = [line for line in r.stderr.splitlines() if line.startswith("sealbox: error:")]
    assert len(errors) == 1
    # With the passphrase it starts.
    with server_process({**e, "SEALBOX_PASSPHRASE": "a long test passphrase"}) as (url, _):
        assert httpx2.get(f"{url}/v1/sys/ready").json() == {"storage": "ok", "keys": "ok"}


def test_server_without_a_vault_is_refused(tmp_path: Path) -> None:
    r = sealbox("server", "--address", "127.0.0.1:1", env=base_env(tmp_path / "none"))
    assert r.returncode == 8
    assert "no sealbox vault" in r.stderr


def test_server_config_file_and_bad_address(env: dict[str, str], tmp_path: Path) -> None:
    cfg = tmp_path / "server.toml"
    cfg.write_text("body_limit = 2048\n")
    token = init_admin(env)
    h = {"Authorization": f"Bearer {token}"}
    with server_process(env, "--config", str(cfg)) as (url, _):
        r = httpx2.post(f"{url}/v1/projects", json={"name": "x" * 3000}, headers=h)
        assert r.status_code == 413
    r = sealbox("server", "--address", "nowhere", env=env)
    assert r.returncode == 2
    assert "invalid address" in r.stderr


def test_server_with_tls(env: dict[str, str], tmp_path: Path) -> None:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    with server_process(env, "--tls-cert", str(cert_file), "--tls-key", str(key_file)) as (url, _):
        assert url.startswith("https://")
        r = httpx2.get(f"{url}/v1/sys/health", verify=False)
        assert r.json()["status"] == "ok"


def test_server_with_two_workers(env: dict[str, str]) -> None:
    """Two worker processes on one SQLite file: every write is read back, and a watcher
    connected to one worker hears writes other processes made (the change table): those
    the other worker served, and always one by the CLI, which no worker served."""
    import queue

    from sealbox.changes import ChangeEvent
    from sealbox.client import Client

    token = init_admin(env)
    h = {"Authorization": f"Bearer {token}"}
    with server_process(env, "--workers", "2") as (url, _):
        assert httpx2.post(f"{url}/v1/projects", json={"name": "web"}, headers=h).status_code == 201
        heard: queue.Queue[ChangeEvent] = queue.Queue()
        client = Client(url, token)
        watch = client.watch("web", "dev", heard.put)
        assert watch.wait_ready(10)

        for i in range(20):
            # A new connection each time, so the kernel spreads them over both workers.
            r = httpx2.put(f"{url}/v1/secrets/web/dev/K{i}", json={"value": str(i)}, headers=h)
            assert r.status_code == 200
        for i in range(20):
            assert httpx2.get(f"{url}/v1/secrets/web/dev/K{i}", headers=h).json()["value"] == str(i)
        assert SEALBOX is not None
        cli = subprocess.run(
            [SEALBOX, "secret", "set", "FROM_CLI", "-p", "web", "-e", "dev"],
            input="x",
            env=env,
            capture_output=True,
            text=True,
        )
        assert cli.returncode == 0, cli.stderr
        names = set()
        while len(names) < 21:
            names.add(heard.get(timeout=10).path)
        assert names == {f"web/dev/K{i}" for i in range(20)} | {"web/dev/FROM_CLI"}
        watch.stop()
        client.close()


def _reads_in_the_audit_trail(env: dict[str, str]) -> int:
    r = sealbox("audit", "log", "--operation", "read", "--limit", "1000", "--json", env=env)
    assert r.returncode == 0, r.stderr
    import json

    return len(json.loads(r.stdout))


def test_reads_a_killed_server_spooled_reach_the_audit_trail_at_its_next_start(
    env: dict[str, str],
) -> None:
    """SIGKILL a server right after its reads were answered (before its 20 ms drain
    runs, as a rule): every answered read is in the audit trail once a server (here on
    another port, so another chain name) starts again."""
    token = init_admin(env)
    h = {"Authorization": f"Bearer {token}"}
    with server_process(env, "--workers", "1") as (url, proc):
        assert httpx2.post(f"{url}/v1/projects", json={"name": "web"}, headers=h).status_code == 201
        httpx2.put(f"{url}/v1/secrets/web/dev/TOKEN", json={"value": "v1"}, headers=h)
        before = _reads_in_the_audit_trail(env)
        with httpx2.Client(base_url=url, headers=h) as client:
            for _ in range(25):
                assert client.get("/v1/secrets/web/dev/TOKEN").status_code == 200
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)
    # Usually the last reads were only in the spool. (A drain due in the instant between
    # the last answer and the kill can store them all: then there is nothing to recover,
    # and the unit tests, whose processes exit before any drain, cover recovery.)
    spooled = _reads_in_the_audit_trail(env) < before + 25
    r = sealbox("audit", "verify", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert ("did not store yet" in r.stderr + r.stdout) == spooled
    with server_process(env, "--workers", "1") as (url, proc):
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
        _, err = proc.communicate(timeout=5)
    assert ("stopped process had spooled" in err) == spooled, err
    assert _reads_in_the_audit_trail(env) == before + 25
    r = sealbox("audit", "verify", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "did not store yet" not in r.stderr + r.stdout


def _children(pid: int) -> set[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds workers through /proc")
def test_killing_the_main_process_stops_its_workers_and_frees_the_address(
    env: dict[str, str],
) -> None:
    """issue 10, defect 1: SIGKILL the supervisor alone; its workers stop by themselves
    (none is left serving unsupervised) and a new server starts on the same address."""
    import time

    token = init_admin(env)
    h = {"Authorization": f"Bearer {token}"}
    port = free_port()
    with server_process(env, "--workers", "2", port=port) as (url, proc):
        assert httpx2.post(f"{url}/v1/projects", json={"name": "web"}, headers=h).status_code == 201
        r = httpx2.put(f"{url}/v1/secrets/web/dev/KEPT", json={"value": "v1"}, headers=h)
        assert r.status_code == 200
        deadline = time.monotonic() + 30
        while len(workers := _children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(workers) >= 2, workers
        os.kill(proc.pid, signal.SIGKILL)  # the main process only, not its group
        proc.wait(timeout=20)
        deadline = time.monotonic() + 30  # a bound on "eventually", not a timing check
        while any(_running(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = {w for w in workers if _running(w)}
        for w in left:
            os.kill(w, signal.SIGKILL)
        assert not left, f"workers {left} outlived their supervisor"
    with server_process(env, "--workers", "2", port=port) as (url, proc):
        r = httpx2.get(f"{url}/v1/secrets/web/dev/KEPT", headers=h)
        assert r.json()["value"] == "v1"


def test_a_busy_address_exits_10_naming_its_holder(env: dict[str, str]) -> None:
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        r = sealbox("server", "--address", f"127.0.0.1:{port}", "--workers", "2", env=env)
    assert r.returncode == 10, r.stderr
    assert f"cannot listen on 127.0.0.1:{port}: the address is in use by" in r.stderr
    if Path("/proc/net/tcp").exists():
        assert f"by process {os.getpid()} (" in r.stderr
    assert "listening" not in r.stderr
