"""The ``gcp-kms`` key provider family: the vault's KEKs encrypted by a Google Cloud KMS key.

``wrap`` is Cloud KMS ``encrypt`` with ``additional_authenticated_data=context`` (AES-GCM
inside Cloud KMS binds it); ``unwrap`` is ``decrypt`` with the same AAD on the same
CryptoKey (the ciphertext names the key version that made it, so rotating the key in
Cloud KMS leaves old wrappings readable). The blob is Cloud KMS's ciphertext, unchanged.

Stored config: ``{"key_name": "projects/P/locations/L/keyRings/R/cryptoKeys/K",
"endpoint": … (optional: a regional or private endpoint), "transport": "grpc" | "rest"
(optional; grpc by default, rest for an http(s) endpoint or a proxy that passes only
HTTP/1.1)}``. Credentials are never stored: Application Default Credentials (the
``GOOGLE_APPLICATION_CREDENTIALS`` file, workload identity, the metadata server, gcloud's
user login) are found by the SDK.

google-cloud-kms is imported here only (``pip install 'sealbox[gcp]'``), and this module
only when a vault uses the kind (:data:`sealbox.kms.registry.BUILTIN`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any, NoReturn

from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc
from google.cloud import kms

from sealbox.errors import IntegrityError, InvalidInput, KeyProviderError
from sealbox.kms import cloud
from sealbox.kms.interface import KeyProvider, NewProvider
from sealbox.kms.registry import ProviderContext

KIND = "gcp-kms"
REQUIRED = ("key_name",)
OPTIONAL = ("endpoint", "transport")
TRANSPORTS = ("grpc", "rest")
KEY_NAME = re.compile(r"projects/[^/\s]+/locations/[^/\s]+/keyRings/[^/\s]+/cryptoKeys/[^/\s]+")
#: What check() encrypts (under its own AAD, so it can never pass for a KEK wrapping).
PROBE, PROBE_AAD = b"\x00" * 16, b"sealbox/check"


def _status(exc: Any) -> str:
    """The RPC status name of a Cloud KMS error (gRPC's code, or the REST error body's)."""
    code = getattr(exc, "grpc_status_code", None)
    if code is not None:
        return str(getattr(code, "name", code))
    response = getattr(exc, "response", None)
    try:
        status = response.json()["error"]["status"]  # type: ignore[union-attr]
    except Exception:
        return ""
    return str(status)


class GcpKmsProvider:
    """A Cloud KMS CryptoKey wrapping KEKs. Implements
    :class:`~sealbox.kms.interface.KeyProvider`.

    Thread safe: one GAPIC client (gRPC channel or HTTP session) serves every thread.
    """

    kind = KIND

    def __init__(self, name: str, key_name: str, client: Any, timeout: float) -> None:
        self._name, self._key_name, self._client, self._timeout = name, key_name, client, timeout
        self._version: str | None = None
        self._lock = threading.Lock()
        self._closed = False

    @property
    def name(self) -> str:
        return self._name

    def key_id(self) -> str:
        """The CryptoKey, and the version that wrapped last once known."""
        return self._version or self._key_name

    def wrap(self, key: bytes, context: bytes) -> bytes:
        answer = self._call(
            "encrypt",
            {"name": self._key_name, "plaintext": key, "additional_authenticated_data": context},
        )
        if answer.name:
            self._version = str(answer.name)
        blob = bytes(answer.ciphertext)
        if not blob:
            raise KeyProviderError(f"Cloud KMS returned no ciphertext for {self._key_name!r}")
        return blob

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        if not blob:
            raise IntegrityError("integrity check failed: an empty Cloud KMS ciphertext")
        answer = self._call(
            "decrypt",
            {"name": self._key_name, "ciphertext": blob, "additional_authenticated_data": context},
        )
        return bytes(answer.plaintext)

    def check(self) -> None:
        """An encrypt of a probe: the key exists, its primary version is enabled and this
        identity may encrypt with it (needs only cryptoKeyVersions.useToEncrypt)."""
        answer = self._call(
            "encrypt",
            {
                "name": self._key_name,
                "plaintext": PROBE,
                "additional_authenticated_data": PROBE_AAD,
            },
        )
        if answer.name:
            self._version = str(answer.name)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        transport = getattr(self._client, "transport", None)
        close = getattr(transport, "close", None)
        if close is not None:
            close()

    def _call(self, operation: str, request: dict[str, Any]) -> Any:
        unreachable: tuple[type[BaseException], ...] = (
            gexc.GoogleAPIError,
            auth_exc.GoogleAuthError,
            OSError,
        )
        try:
            import requests

            unreachable += (requests.RequestException,)
        except ImportError:  # pragma: no cover - requests comes with google-auth's transport
            pass
        try:
            # No SDK retry: one attempt bounded by the timeout (the opener and a starting
            # server retry at their own pace).
            return getattr(self._client, operation)(
                request=request, retry=None, timeout=self._timeout
            )
        except gexc.GoogleAPICallError as exc:
            self._refused(operation, exc)
        except unreachable as exc:
            raise KeyProviderError(
                f"Cloud KMS {operation} with {self._key_name!r} failed: {type(exc).__name__}"
                f" ({cloud.quote(exc)})",
                hint="check that Cloud KMS (or the configured endpoint) can be reached and that"
                " Application Default Credentials are available",
            ) from None

    def _refused(self, operation: str, exc: Any) -> NoReturn:
        status = _status(exc)
        http = getattr(exc, "code", None)
        message = cloud.quote(getattr(exc, "message", "") or "")
        if operation == "decrypt" and status in ("INVALID_ARGUMENT", "") and http == 400:
            raise IntegrityError(
                f"integrity check failed: Cloud KMS refused to decrypt with {self._key_name!r}"
                " (the blob or its context was changed, or another key wrapped it)"
            ) from None
        if status == "FAILED_PRECONDITION":
            raise KeyProviderError(
                f"the Cloud KMS key {self._key_name!r} cannot be used: its version is disabled,"
                f" destroyed or not an encryption key ({message})",
                hint="enable the key version in Cloud KMS, or open the vault with another key"
                " provider",
            ) from None
        if http in (401, 403):
            permission = "useToDecrypt" if operation == "decrypt" else "useToEncrypt"
            raise KeyProviderError(
                f"Cloud KMS refused {operation} with {self._key_name!r} ({http} {status})",
                hint=f"grant this identity cloudkms.cryptoKeyVersions.{permission} on the key",
            ) from None
        if http == 404:
            raise KeyProviderError(f"Cloud KMS has no key {self._key_name!r} ({message})") from None
        raise KeyProviderError(
            f"Cloud KMS {operation} with {self._key_name!r} failed ({http} {status}: {message})"
        ) from None

    def __repr__(self) -> str:
        return f"GcpKmsProvider(name={self._name!r}, key_name={self._key_name!r})"


class GcpKmsKind:
    """The ``gcp-kms`` family. Implements :class:`~sealbox.kms.interface.ProviderKind`.

    ``credentials`` replaces Application Default Credentials (tests, or an embedding
    program that holds its own); None lets the SDK find them.
    """

    kind = KIND

    def __init__(self, credentials: Any = None) -> None:
        self._credentials = credentials

    def interactive(self, config: Mapping[str, Any]) -> bool:
        return False

    def config_from(self, options: Mapping[str, str]) -> dict[str, Any]:
        """The stored config ``options`` describe (InvalidInput naming a wrong one)."""
        cleaned = cloud.check_options(KIND, options, required=REQUIRED, optional=OPTIONAL)
        if not KEY_NAME.fullmatch(cleaned["key_name"]):
            raise InvalidInput(
                "option key_name of a gcp-kms key provider must be a CryptoKey's resource name:"
                " projects/P/locations/L/keyRings/R/cryptoKeys/K"
            )
        endpoint = cleaned.get("endpoint")
        transport = cleaned.get("transport")
        if transport is not None and transport not in TRANSPORTS:
            raise InvalidInput("option transport of a gcp-kms key provider is grpc or rest")
        if endpoint is not None and "://" in endpoint:
            cleaned["endpoint"] = cloud.check_url(KIND, "endpoint", endpoint)
            if transport == "grpc":
                raise InvalidInput(
                    "an http(s) endpoint needs transport=rest (gRPC takes host:port)"
                )
            cleaned["transport"] = "rest"
        return dict(cleaned)

    def _client(self, config: Mapping[str, Any], name: str, timeout: float) -> GcpKmsProvider:
        key_name = config.get("key_name")
        if not isinstance(key_name, str) or not key_name:
            raise KeyProviderError(f"gcp-kms key provider {name!r} has no key_name in its config")
        endpoint = config.get("endpoint")
        options = {"api_endpoint": str(endpoint)} if endpoint else None
        try:
            client = kms.KeyManagementServiceClient(
                credentials=self._credentials,
                transport=str(config.get("transport") or "grpc"),
                client_options=options,
            )
        except (auth_exc.GoogleAuthError, gexc.GoogleAPIError, ValueError) as exc:
            raise KeyProviderError(
                f"cannot set up the Cloud KMS client: {type(exc).__name__} ({cloud.quote(exc)})",
                hint="set up Application Default Credentials (a service account, workload"
                " identity or a user login)",
            ) from None
        return GcpKmsProvider(name, key_name, client, timeout)

    def create(self, name: str, options: Mapping[str, str], ctx: ProviderContext) -> NewProvider:
        """Check the options, reach Cloud KMS and encrypt a probe with the key."""
        config = self.config_from(options)
        provider = self._client(config, name, ctx.timeout)
        try:
            provider.check()
        except BaseException:
            provider.close()
            raise
        return NewProvider(config, provider)

    def open(self, name: str, config: Mapping[str, Any], ctx: ProviderContext) -> KeyProvider:
        return self._client(config, name, ctx.timeout)
