"""A stand-in for Google Cloud KMS at the SDK's transport boundary: a small HTTP server on
loopback speaking the Cloud KMS REST API's ``:encrypt`` and ``:decrypt`` (real AES-256-GCM,
the AAD bound, a key version in each ciphertext, Google's JSON error bodies), driven by the
real ``KeyManagementServiceClient`` over its REST transport with a static bearer token.

No Cloud KMS emulator exists; this is NOT Google's service, only its wire shape.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from tests.unit.kms.peers import closed_port_url, ctx

from sealbox.kms.interface import KeyProvider

TOKEN = "fake-gcp-access-token"
#: A token the fake knows but whose identity may not use any key (403).
TOKEN_NO_PERMISSION = "fake-gcp-token-without-permission"
PARENT = "projects/sealbox-test/locations/global/keyRings/ring/cryptoKeys"


class FakeKms:
    """Keys by resource name: versions (AES keys), the primary one, each version's state."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.keys: dict[str, dict[str, Any]] = {}
        #: Set: requests are held until ``release`` is set (a peer that never answers).
        self.hang = threading.Event()
        self.release = threading.Event()
        self.calls: list[tuple[str, dict[str, Any], dict[str, str]]] = []

    def new_key(self) -> str:
        name = f"{PARENT}/key-{os.urandom(4).hex()}"
        with self.lock:
            self.keys[name] = {
                "versions": {1: AESGCM.generate_key(256)},
                "primary": 1,
                "state": {1: "ENABLED"},
            }
        return name

    def rotate(self, name: str) -> None:
        with self.lock:
            key = self.keys[name]
            version = max(key["versions"]) + 1
            key["versions"][version] = AESGCM.generate_key(256)
            key["state"][version] = "ENABLED"
            key["primary"] = version

    def disable(self, name: str, version: int | None = None) -> None:
        with self.lock:
            key = self.keys[name]
            key["state"][version or key["primary"]] = "DISABLED"

    # -- the API ------------------------------------------------------------------------------
    def encrypt(self, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        key = self.keys.get(name)
        if key is None:
            return _error(404, "NOT_FOUND", f"{name} not found.")
        version = key["primary"]
        if key["state"][version] != "ENABLED":
            return _error(
                400,
                "FAILED_PRECONDITION",
                f"{name}/cryptoKeyVersions/{version} is not enabled, current state is: {key['state'][version]}.",
            )
        plaintext = base64.b64decode(body.get("plaintext", ""))
        aad = base64.b64decode(body.get("additionalAuthenticatedData", ""))
        nonce = os.urandom(12)
        sealed = AESGCM(key["versions"][version]).encrypt(nonce, plaintext, aad)
        ciphertext = version.to_bytes(4, "big") + nonce + sealed
        return 200, {
            "name": f"{name}/cryptoKeyVersions/{version}",
            "ciphertext": base64.b64encode(ciphertext).decode(),
            "protectionLevel": 1,
        }

    def decrypt(self, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        key = self.keys.get(name)
        if key is None:
            return _error(404, "NOT_FOUND", f"{name} not found.")
        ciphertext = base64.b64decode(body.get("ciphertext", ""))
        aad = base64.b64decode(body.get("additionalAuthenticatedData", ""))
        version = int.from_bytes(ciphertext[:4], "big")
        if len(ciphertext) < 4 + 12 + 16 or version not in key["versions"]:
            return _error(400, "INVALID_ARGUMENT", "Decryption failed: the ciphertext is invalid.")
        if key["state"][version] != "ENABLED":
            return _error(
                400, "FAILED_PRECONDITION", f"{name}/cryptoKeyVersions/{version} is not enabled."
            )
        try:
            plaintext = AESGCM(key["versions"][version]).decrypt(
                ciphertext[4:16], ciphertext[16:], aad
            )
        except Exception:
            return _error(400, "INVALID_ARGUMENT", "Decryption failed: the ciphertext is invalid.")
        return 200, {
            "plaintext": base64.b64encode(plaintext).decode(),
            "usedPrimary": version == key["primary"],
        }


def _error(code: int, status: str, message: str) -> tuple[int, dict[str, Any]]:
    return code, {"error": {"code": code, "message": message, "status": status}}


def _handler(fake: FakeKms) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if fake.hang.is_set():
                fake.release.wait(30)  # a peer that accepted and never answers
            path = self.path.split("?", 1)[0]
            body = json.loads(raw or b"{}")
            fake.calls.append((path, body, dict(self.headers)))
            if self.headers.get("Authorization") == f"Bearer {TOKEN_NO_PERMISSION}":
                status, answer = _error(
                    403,
                    "PERMISSION_DENIED",
                    "Permission 'cloudkms.cryptoKeyVersions.useToEncrypt' denied on resource (or it may not exist).",
                )
            elif self.headers.get("Authorization") != f"Bearer {TOKEN}":
                status, answer = _error(
                    401, "UNAUTHENTICATED", "Request had invalid authentication credentials."
                )
            elif path.startswith("/v1/") and path.endswith(":encrypt"):
                status, answer = fake.encrypt(path[4 : -len(":encrypt")], body)
            elif path.startswith("/v1/") and path.endswith(":decrypt"):
                status, answer = fake.decrypt(path[4 : -len(":decrypt")], body)
            else:
                status, answer = _error(404, "NOT_FOUND", "no such method")
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


_lock = threading.Lock()
_state: dict[str, Any] = {}


def fake_kms() -> tuple[FakeKms, str]:
    """The fake service and its URL (started on first use, stopped at exit)."""
    pytest.importorskip("google.cloud.kms")
    with _lock:
        if "url" not in _state:
            fake = FakeKms()
            server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()

            def stop() -> None:
                fake.release.set()
                server.shutdown()
                server.server_close()

            atexit.register(stop)
            _state.update(fake=fake, url=f"http://127.0.0.1:{server.server_address[1]}")
        return _state["fake"], _state["url"]


def credentials(token: str = TOKEN) -> Any:
    """A static bearer token, as the SDK's credential (no refresh, no metadata server)."""
    from google.oauth2.credentials import Credentials

    return Credentials(token=token)


def kind(token: str = TOKEN) -> Any:
    from sealbox.kms.gcp_kms import GcpKmsKind

    return GcpKmsKind(credentials=credentials(token))


def config(key_name: str, url: str | None = None) -> dict[str, Any]:
    return {"key_name": key_name, "endpoint": url or fake_kms()[1], "transport": "rest"}


@contextlib.contextmanager
def provider() -> Iterator[KeyProvider]:
    fake, url = fake_kms()
    found = kind().open("gcp", config(fake.new_key(), url), ctx())
    try:
        yield found
    finally:
        found.close()


@contextlib.contextmanager
def unreachable() -> Iterator[KeyProvider]:
    pytest.importorskip("google.cloud.kms")
    found = kind().open("gcp", config(f"{PARENT}/gone", closed_port_url()), ctx(1.0))
    try:
        yield found
    finally:
        found.close()
