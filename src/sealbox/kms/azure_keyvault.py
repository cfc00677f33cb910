"""The ``azure-keyvault`` key provider family: the vault's KEKs wrapped by an RSA key in Azure
Key Vault (or a Managed HSM), with ``wrapKey``/``unwrapKey`` and RSA-OAEP-256.

RSA key wrapping takes no associated data, so the context is bound inside the wrapped
payload: what Key Vault wraps is ``KEK || SHA-256(context)``, and ``unwrap`` checks that
digest in constant time before it returns the KEK (another context fails like a changed
blob: IntegrityError). The blob is ``key version NUL RSA ciphertext``: the version that
wrapped it, so a key rotated in Key Vault still unwraps old wrappings.

Stored config: ``{"vault_url": "https://NAME.vault.azure.net", "key_name": …,
"key_version": … (optional: pin one version; otherwise the key's current version, which
the SDK learns with keys/get)}``. Credentials are never stored: ``DefaultAzureCredential``
finds them (environment service principal, workload identity, managed identity, the
Azure CLI's login).

azure-keyvault-keys and azure-identity are imported here only
(``pip install 'sealbox[azure]'``), and this module only when a vault uses the kind.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import threading
from collections.abc import Mapping
from typing import Any, NoReturn

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.identity import DefaultAzureCredential
from azure.keyvault.keys import KeyVaultKeyIdentifier
from azure.keyvault.keys.crypto import CryptographyClient, KeyWrapAlgorithm

from sealbox.errors import IntegrityError, InvalidInput, KeyProviderError
from sealbox.kms import cloud
from sealbox.kms.interface import KeyProvider, NewProvider
from sealbox.kms.registry import ProviderContext

KIND = "azure-keyvault"
REQUIRED = ("vault_url", "key_name")
OPTIONAL = ("key_version",)
ALGORITHM = "RSA-OAEP-256"
DIGEST = 32
NAME = re.compile(r"[0-9A-Za-z-]{1,127}")
VERSION = re.compile(r"[0-9A-Za-z]{1,64}")
PROBE_CONTEXT = b"sealbox/check"


def _version_of(kid: str) -> str:
    """The version in a Key Vault key id (``…/keys/NAME/VERSION``), or ""."""
    try:
        return KeyVaultKeyIdentifier(kid).version or ""
    except ValueError:
        return ""


def _digest(context: bytes) -> bytes:
    return hashlib.sha256(b"sealbox/azure-keyvault\x00" + context).digest()


class AzureKeyVaultProvider:
    """A Key Vault RSA key wrapping KEKs. Implements
    :class:`~sealbox.kms.interface.KeyProvider`.

    Thread safe: the SDK's clients are, and the per-version clients are made under a lock.
    """

    kind = KIND

    def __init__(
        self,
        name: str,
        vault_url: str,
        key_name: str,
        key_version: str | None,
        credential: Any,
        client_options: Mapping[str, Any],
        *,
        owns_credential: bool = False,
    ) -> None:
        self._name, self._vault_url, self._key_name = name, vault_url, key_name
        self._key_version = key_version
        self._credential, self._owns_credential = credential, owns_credential
        self._options = dict(client_options)
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        self._closed = False
        #: The versioned key id that wrapped last (kms status).
        self._kid: str | None = None

    @property
    def name(self) -> str:
        return self._name

    def key_id(self) -> str:
        if self._kid:
            return self._kid
        suffix = f"/{self._key_version}" if self._key_version else ""
        return f"{self._vault_url}/keys/{self._key_name}{suffix}"

    def _client(self, version: str) -> Any:
        """The SDK's CryptographyClient for one version ("" = the key's current one)."""
        with self._lock:
            if self._closed:
                raise KeyProviderError(f"key provider {self._name!r} is closed")
            found = self._clients.get(version)
            if found is None:
                kid = f"{self._vault_url}/keys/{self._key_name}" + (
                    f"/{version}" if version else ""
                )
                found = CryptographyClient(kid, self._credential, **self._options)
                self._clients[version] = found
            return found

    def wrap(self, key: bytes, context: bytes) -> bytes:
        client = self._client(self._key_version or "")
        result = self._call(
            "wrapKey", client.wrap_key, KeyWrapAlgorithm.rsa_oaep_256, key + _digest(context)
        )
        kid = str(result.key_id or "")
        version = _version_of(kid)
        if not VERSION.fullmatch(version):
            raise KeyProviderError(
                f"Azure Key Vault did not say which version of key {self._key_name!r} wrapped",
                hint="grant this identity keys/get on the key, or pin the key version in the"
                " provider's config",
            )
        self._kid = kid
        encrypted = bytes(result.encrypted_key)
        if not encrypted:
            raise KeyProviderError(
                f"Azure Key Vault returned no wrapped key for {self._key_name!r}"
            )
        return version.encode("ascii") + b"\x00" + encrypted

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        raw_version, sep, encrypted = blob.partition(b"\x00")
        version = raw_version.decode("ascii", errors="replace")
        if not sep or not encrypted or not VERSION.fullmatch(version):
            raise IntegrityError("integrity check failed: not an Azure Key Vault wrapping")
        result = self._call(
            "unwrapKey", self._client(version).unwrap_key, KeyWrapAlgorithm.rsa_oaep_256, encrypted
        )
        payload = bytes(result.key)
        key, tag = payload[:-DIGEST], payload[-DIGEST:]
        if len(payload) <= DIGEST or not hmac.compare_digest(tag, _digest(context)):
            raise IntegrityError(
                "integrity check failed: the Azure Key Vault wrapping belongs to another context"
            )
        return key

    def check(self) -> None:
        """Wrap and unwrap a random probe: the vault answers, the key is enabled, and
        this identity may wrap and unwrap with it (keys/wrapKey, keys/unwrapKey)."""
        probe = os.urandom(32)
        if self.unwrap(self.wrap(probe, PROBE_CONTEXT), PROBE_CONTEXT) != probe:
            raise KeyProviderError(f"Azure Key Vault key {self._key_name!r} unwrapped wrongly")

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
        if self._owns_credential:
            close = getattr(self._credential, "close", None)
            if close is not None:
                close()

    def _call(self, operation: str, method: Any, *args: Any) -> Any:
        try:
            return method(*args)
        except ResourceNotFoundError:
            raise KeyProviderError(
                f"Azure Key Vault {self._vault_url} has no key {self._key_name!r} (or not that"
                " version)"
            ) from None
        except ClientAuthenticationError as exc:
            raise KeyProviderError(
                f"Azure Key Vault {operation}: no credential was accepted"
                f" ({type(exc).__name__}: {cloud.quote(getattr(exc, 'message', exc))})",
                hint="sign in for DefaultAzureCredential (a service principal in the environment,"
                " a managed identity, or the Azure CLI)",
            ) from None
        except HttpResponseError as exc:
            self._refused(operation, exc)
        except ValueError as exc:
            # The SDK checks the key's validity window before it wraps locally.
            raise KeyProviderError(
                f"Azure Key Vault key {self._key_name!r} cannot be used now ({cloud.quote(exc)})",
                hint="check the key's activation and expiry dates in Key Vault",
            ) from None
        except (AzureError, OSError) as exc:  # ServiceRequestError, ServiceResponseError …
            raise KeyProviderError(
                f"Azure Key Vault {operation} at {self._vault_url} failed: {type(exc).__name__}"
                f" ({cloud.quote(getattr(exc, 'message', exc))})",
                hint="check that the key vault can be reached",
            ) from None

    def _refused(self, operation: str, exc: Any) -> NoReturn:
        status = getattr(exc, "status_code", None)
        message = cloud.quote(getattr(exc, "message", "") or "")
        if status == 400 and operation == "unwrapKey":
            raise IntegrityError(
                f"integrity check failed: Azure Key Vault could not unwrap with key"
                f" {self._key_name!r} (the blob was changed, or another key wrapped it)"
            ) from None
        if status == 403 and "disabled" in message.lower():
            raise KeyProviderError(
                f"the Azure Key Vault key {self._key_name!r} is disabled",
                hint="enable the key in Key Vault, or open the vault with another key provider",
            ) from None
        if status in (401, 403):
            raise KeyProviderError(
                f"Azure Key Vault refused {operation} with key {self._key_name!r}"
                f" ({status}: {message})",
                hint=f"grant this identity keys/{operation} on the key (an access policy or the"
                " Key Vault Crypto User role)",
            ) from None
        raise KeyProviderError(
            f"Azure Key Vault {operation} with key {self._key_name!r} failed ({status}: {message})"
        ) from None

    def __repr__(self) -> str:
        return (
            f"AzureKeyVaultProvider(name={self._name!r}, vault_url={self._vault_url!r},"
            f" key_name={self._key_name!r})"
        )


class AzureKeyVaultKind:
    """The ``azure-keyvault`` family. Implements
    :class:`~sealbox.kms.interface.ProviderKind`.

    ``credential`` replaces DefaultAzureCredential and ``transport`` azure-core's HTTP
    transport (tests, or an embedding program with its own); None for the SDK's defaults.
    """

    kind = KIND

    def __init__(self, credential: Any = None, transport: Any = None) -> None:
        self._credential, self._transport = credential, transport

    def interactive(self, config: Mapping[str, Any]) -> bool:
        return False

    def config_from(self, options: Mapping[str, str]) -> dict[str, Any]:
        """The stored config ``options`` describe (InvalidInput naming a wrong one)."""
        cleaned = cloud.check_options(KIND, options, required=REQUIRED, optional=OPTIONAL)
        cleaned["vault_url"] = cloud.check_url(
            KIND, "vault_url", cleaned["vault_url"], https_only=True
        )
        if not NAME.fullmatch(cleaned["key_name"]):
            raise InvalidInput(
                "option key_name of an azure-keyvault key provider is a key's name (letters,"
                " digits and dashes)"
            )
        version = cleaned.get("key_version")
        if version is not None and not VERSION.fullmatch(version):
            raise InvalidInput(
                "option key_version of an azure-keyvault key provider is a key version id"
            )
        return dict(cleaned)

    def _provider(self, name: str, config: Mapping[str, Any], timeout: float) -> KeyProvider:
        vault_url, key_name = config.get("vault_url"), config.get("key_name")
        if not isinstance(vault_url, str) or not isinstance(key_name, str):
            raise KeyProviderError(
                f"azure-keyvault key provider {name!r} has no vault_url or key_name in its config"
            )
        credential, owns = self._credential, False
        if credential is None:
            credential, owns = DefaultAzureCredential(), True
        options: dict[str, Any] = {
            "connection_timeout": timeout,
            "read_timeout": timeout,
            # One retry at most (the opener and a starting server retry at their own pace).
            "retry_total": 1,
            "retry_backoff_factor": 0.2,
        }
        if self._transport is not None:
            options["transport"] = self._transport
        version = config.get("key_version")
        return AzureKeyVaultProvider(
            name,
            vault_url.rstrip("/"),
            key_name,
            str(version) if version else None,
            credential,
            options,
            owns_credential=owns,
        )

    def create(self, name: str, options: Mapping[str, str], ctx: ProviderContext) -> NewProvider:
        """Check the options, reach the key vault and wrap and unwrap a probe."""
        config = self.config_from(options)
        provider = self._provider(name, config, ctx.timeout)
        try:
            provider.check()
        except BaseException:
            provider.close()
            raise
        return NewProvider(config, provider)

    def open(self, name: str, config: Mapping[str, Any], ctx: ProviderContext) -> KeyProvider:
        return self._provider(name, config, ctx.timeout)
