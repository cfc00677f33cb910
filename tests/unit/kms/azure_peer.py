"""A stand-in for Azure Key Vault at the SDK's transport boundary: azure-core's real
``RequestsTransport`` over a ``requests`` session whose adapter for the fake vault's URL
answers the Key Vault REST API itself — the bearer challenge (401 + WWW-Authenticate),
``GET /keys/NAME/VERSION`` (the public JWK), ``wrapkey`` and ``unwrapkey`` with real
RSA-OAEP-256 (``cryptography``), Key Vault's error bodies. Everything above the socket
(the SDK's challenge policy, retries, serialisation, local public-key wrapping) is the
real SDK; the service is NOT Azure's, only its wire shape.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from tests.unit.kms.peers import closed_port_url, ctx

from sealbox.kms.interface import KeyProvider

VAULT_URL = "https://sealbox-test.vault.azure.net"
TOKEN = "fake-azure-access-token"
#: A token whose identity may wrap and unwrap but not read keys (keys/get → 403).
TOKEN_NO_GET = "fake-azure-token-without-keys-get"
#: A token whose identity may do nothing (403).
TOKEN_NO_PERMISSION = "fake-azure-token-without-permission"
CHALLENGE = (
    'Bearer authorization="https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000",'
    ' resource="https://vault.azure.net"'
)
OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FakeKeyVault:
    """RSA keys by name: versions, the current one, which are enabled."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.keys: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str, str]] = []  # (method, path, token)

    def new_key(self) -> str:
        name = f"key-{os.urandom(4).hex()}"
        with self.lock:
            self.keys[name] = {"versions": {}, "enabled": {}, "current": ""}
        self.rotate(name)
        return name

    def rotate(self, name: str) -> str:
        version = os.urandom(16).hex()
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        with self.lock:
            entry = self.keys[name]
            entry["versions"][version] = key
            entry["enabled"][version] = True
            entry["current"] = version
        return version

    def disable(self, name: str, version: str | None = None) -> None:
        with self.lock:
            entry = self.keys[name]
            entry["enabled"][version or entry["current"]] = False

    def current(self, name: str) -> str:
        return str(self.keys[name]["current"])

    # -- the REST API -------------------------------------------------------------------------
    def handle(
        self, method: str, url: str, headers: Any, body: bytes | None
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        path = urlsplit(url).path.rstrip("/")
        auth = headers.get("Authorization") or ""
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else ""
        self.calls.append((method, path, token))
        if token not in (TOKEN, TOKEN_NO_GET, TOKEN_NO_PERMISSION):
            return (
                401,
                {"WWW-Authenticate": CHALLENGE},
                _error("Unauthorized", "AKV10000: Request is missing a Bearer or PoP token."),
            )
        parts = path.split("/")[1:]  # keys, NAME, [VERSION], [operation]
        if len(parts) < 2 or parts[0] != "keys":
            return 404, {}, _error("NotFound", "no such path")
        name, rest = parts[1], parts[2:]
        operation = rest[-1] if rest and rest[-1] in ("wrapkey", "unwrapkey") else None
        version = (rest[:-1] if operation else rest) or [""]
        entry = self.keys.get(name)
        if entry is None:
            return (
                404,
                {},
                _error(
                    "KeyNotFound", f"A key with (name/id) {name} was not found in this key vault."
                ),
            )
        ver = version[0] or entry["current"]
        key = entry["versions"].get(ver)
        if key is None:
            return (
                404,
                {},
                _error(
                    "KeyNotFound",
                    f"A key with (name/id) {name}/{ver} was not found in this key vault.",
                ),
            )
        if token == TOKEN_NO_PERMISSION or (token == TOKEN_NO_GET and operation is None):
            return (
                403,
                {},
                _error(
                    "Forbidden",
                    f"The user, group or application does not have keys {operation or 'get'} permission on key vault.",
                    "ForbiddenByPolicy",
                ),
            )
        kid = f"{VAULT_URL}/keys/{name}/{ver}"
        if operation is None and method == "GET":
            numbers = key.public_key().public_numbers()
            return (
                200,
                {},
                {
                    "key": {
                        "kid": kid,
                        "kty": "RSA",
                        "key_ops": ["wrapKey", "unwrapKey"],
                        "n": _b64(numbers.n.to_bytes(256, "big")),
                        "e": _b64(numbers.e.to_bytes(3, "big")),
                    },
                    "attributes": {
                        "enabled": entry["enabled"][ver],
                        "created": int(time.time()),
                        **({"exp": entry["expires"]} if "expires" in entry else {}),
                    },
                },
            )
        if entry.get("expires", time.time() + 60) < time.time():
            return (
                403,
                {},
                _error("Forbidden", f"Operation {operation} is not allowed on an expired key."),
            )
        if not entry["enabled"][ver]:
            return (
                403,
                {},
                _error(
                    "Forbidden",
                    f"Operation {operation} is not allowed on a disabled key.",
                    "KeyDisabled",
                ),
            )
        request = json.loads(body or b"{}")
        if request.get("alg") != "RSA-OAEP-256":
            return 400, {}, _error("BadParameter", "Unsupported algorithm.")
        value = _unb64(request.get("value", ""))
        if operation == "wrapkey":
            return 200, {}, {"kid": kid, "value": _b64(key.public_key().encrypt(value, OAEP))}
        try:
            plain = key.decrypt(value, OAEP)
        except Exception:
            return 400, {}, _error("BadParameter", "Error unwrapping the key.")
        return 200, {}, {"kid": kid, "value": _b64(plain)}


def _error(code: str, message: str, inner: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if inner:
        error["innererror"] = {"code": inner}
    return {"error": error}


def transport(fake: FakeKeyVault) -> Any:
    """azure-core's RequestsTransport, its session's adapter for VAULT_URL being ``fake``."""
    import requests
    from azure.core.pipeline.transport import RequestsTransport
    from requests.adapters import BaseAdapter, HTTPAdapter
    from urllib3.response import HTTPResponse

    class Adapter(BaseAdapter):
        def send(
            self,
            request: Any,
            stream: bool = False,
            timeout: Any = None,
            verify: Any = True,
            cert: Any = None,
            proxies: Any = None,
        ) -> Any:
            body = request.body.encode() if isinstance(request.body, str) else request.body
            status, headers, answer = fake.handle(
                request.method, request.url, request.headers, body
            )
            data = json.dumps(answer).encode()
            raw = HTTPResponse(
                body=io.BytesIO(data),
                headers={
                    "Content-Type": "application/json; charset=utf-8",
                    "Content-Length": str(len(data)),
                    **headers,
                },
                status=status,
                preload_content=False,
                decode_content=False,
            )
            return HTTPAdapter().build_response(request, raw)

        def close(self) -> None:
            pass

    session = requests.Session()
    session.mount(VAULT_URL, Adapter())
    return RequestsTransport(session=session, session_owner=True)


class StaticCredential:
    """A fixed bearer token, as azure-core's TokenCredential (no Entra ID round trip)."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.scopes.extend(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return "StaticCredential(token='***')"


_lock = threading.Lock()
_state: dict[str, Any] = {}


def fake_vault() -> FakeKeyVault:
    pytest.importorskip("azure.keyvault.keys")
    pytest.importorskip("azure.identity")
    with _lock:
        if "fake" not in _state:
            _state["fake"] = FakeKeyVault()
        found: FakeKeyVault = _state["fake"]
        return found


def kind(token: str = TOKEN, fake: FakeKeyVault | None = None) -> Any:
    from sealbox.kms.azure_keyvault import AzureKeyVaultKind

    return AzureKeyVaultKind(StaticCredential(token), transport(fake or fake_vault()))


def config(key_name: str, **extra: str) -> dict[str, Any]:
    return {"vault_url": VAULT_URL, "key_name": key_name, **extra}


@contextlib.contextmanager
def provider() -> Iterator[KeyProvider]:
    fake = fake_vault()
    found = kind(fake=fake).open("azure", config(fake.new_key()), ctx())
    try:
        yield found
    finally:
        found.close()


@contextlib.contextmanager
def unreachable() -> Iterator[KeyProvider]:
    """The real transport, pointed at a closed loopback port."""
    pytest.importorskip("azure.keyvault.keys")
    from sealbox.kms.azure_keyvault import AzureKeyVaultKind

    found = AzureKeyVaultKind(StaticCredential()).open(
        "azure", {"vault_url": closed_port_url("https"), "key_name": "k"}, ctx(1.0)
    )
    try:
        yield found
    finally:
        found.close()
