"""The ``aws-kms`` key provider family: the vault's KEKs encrypted by an AWS KMS key.

``wrap`` is KMS ``Encrypt`` with an encryption context ``{"sealbox-context":
base64url(context)}`` (KMS binds it as associated data, and CloudTrail logs it, which is
why it holds only the vault and KEK ids); ``unwrap`` is ``Decrypt`` with the same context
and the ``KeyId``, so a ciphertext of another key is refused rather than decrypted. The
blob is KMS's ciphertext, unchanged.

Stored config: ``{"key_id": id | ARN | alias, "region": …, "endpoint_url": … (optional:
a VPC endpoint, moto), "profile": … (optional)}``. Credentials are never stored: boto3's
own chain finds them (environment, profile, SSO, instance or task role).

boto3 is imported here only (``pip install 'sealbox[aws]'``), and this module only when a
vault uses the kind (:data:`sealbox.kms.registry.BUILTIN`): without boto3 the registry says
which extra to install.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, NoReturn

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from sealbox.errors import IntegrityError, InvalidInput, KeyProviderError
from sealbox.kms import cloud
from sealbox.kms.interface import KeyProvider, NewProvider
from sealbox.kms.registry import ProviderContext

KIND = "aws-kms"
CONTEXT_KEY = "sealbox-context"
#: Options of ``sealbox kms add NAME --kind aws-kms``.
REQUIRED: tuple[str, ...] = ()
OPTIONAL = ("key_id", "region", "endpoint_url", "profile", "create_key")

#: KMS error codes meaning "this blob is not what this key wrapped with this context".
_INTEGRITY = {"InvalidCiphertextException", "IncorrectKeyException"}
_UNUSABLE = {"DisabledException", "KMSInvalidStateException", "KeyUnavailableException"}
_REFUSED = {
    "AccessDeniedException",
    "AccessDenied",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "ExpiredTokenException",
}


def _client(config: Mapping[str, Any], timeout: float) -> BaseClient:
    """A KMS client: per-attempt connect and read timeouts of ``timeout``, two attempts
    at most (so a hanging endpoint costs at most about twice the timeout)."""
    try:
        session = boto3.session.Session(
            profile_name=config.get("profile") or None, region_name=config.get("region") or None
        )
        return session.client(
            "kms",
            endpoint_url=config.get("endpoint_url") or None,
            config=Config(
                connect_timeout=timeout,
                read_timeout=timeout,
                retries={"total_max_attempts": 2, "mode": "standard"},
            ),
        )
    except BotoCoreError as exc:
        raise KeyProviderError(
            f"cannot set up the AWS KMS client: {cloud.quote(exc)}",
            hint="check the region and profile options and the AWS configuration",
        ) from None


class AwsKmsProvider:
    """A KMS key wrapping KEKs. Implements :class:`~sealbox.kms.interface.KeyProvider`.

    Thread safe: a botocore client may be shared by threads (its session is used only
    here, while it is built).
    """

    kind = KIND

    def __init__(self, name: str, key_id: str, client: BaseClient) -> None:
        self._name, self._key_id, self._client = name, key_id, client
        self._arn: str | None = None
        self._lock = threading.Lock()
        self._closed = False

    @property
    def name(self) -> str:
        return self._name

    def key_id(self) -> str:
        return self._arn or self._key_id

    def _context(self, context: bytes) -> dict[str, str]:
        return {CONTEXT_KEY: cloud.context_text(context)}

    def wrap(self, key: bytes, context: bytes) -> bytes:
        answer = self._call(
            "Encrypt",
            KeyId=self._key_id,
            Plaintext=key,
            EncryptionContext=self._context(context),
        )
        self._arn = str(answer.get("KeyId") or "") or self._arn
        blob = answer.get("CiphertextBlob")
        if not isinstance(blob, bytes) or not blob:
            raise KeyProviderError(f"AWS KMS returned no ciphertext for key {self._key_id!r}")
        return blob

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        if not blob:
            raise IntegrityError("integrity check failed: an empty AWS KMS ciphertext")
        answer = self._call(
            "Decrypt",
            KeyId=self._key_id,
            CiphertextBlob=blob,
            EncryptionContext=self._context(context),
        )
        plaintext = answer.get("Plaintext")
        if not isinstance(plaintext, bytes):
            raise KeyProviderError(f"AWS KMS returned no plaintext for key {self._key_id!r}")
        return plaintext

    def check(self) -> None:
        """DescribeKey: the key exists, this identity may see it, and it is enabled."""
        meta = self._call("DescribeKey", KeyId=self._key_id).get("KeyMetadata") or {}
        self._arn = str(meta.get("Arn") or "") or self._arn
        state = str(meta.get("KeyState") or "")
        if state == "Enabled":
            usage = str(meta.get("KeyUsage") or "ENCRYPT_DECRYPT")
            spec = str(meta.get("KeySpec") or meta.get("CustomerMasterKeySpec") or "")
            if usage != "ENCRYPT_DECRYPT" or spec not in ("", "SYMMETRIC_DEFAULT"):
                # Asymmetric keys take no encryption context: the binding would be lost.
                raise KeyProviderError(
                    f"the KMS key {self.key_id()!r} is not a symmetric encryption key"
                    f" (KeyUsage {usage[:40]}, KeySpec {spec[:40]})",
                    hint="use a symmetric KMS key (KeySpec SYMMETRIC_DEFAULT)",
                )
            return
        what = {"Disabled": "disabled", "PendingDeletion": "pending deletion"}.get(
            state, f"not usable (state {state[:40] or 'unknown'})"
        )
        raise KeyProviderError(
            f"the KMS key {self.key_id()!r} is {what}",
            hint="enable the key in AWS KMS (or cancel its deletion), or open the vault with"
            " another key provider",
        )

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        close = getattr(self._client, "close", None)
        if close is not None:
            close()

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        method = {"Encrypt": "encrypt", "Decrypt": "decrypt", "DescribeKey": "describe_key"}
        try:
            answer: dict[str, Any] = getattr(self._client, method[operation])(**params)
        except ClientError as exc:
            self._refused(operation, exc)
        except BotoCoreError as exc:
            raise KeyProviderError(
                f"AWS KMS {operation} for key {self._key_id!r} failed: {type(exc).__name__}"
                f" ({cloud.quote(exc)})",
                hint="check that AWS KMS (or the configured endpoint) can be reached and that"
                " AWS credentials are available",
            ) from None
        return answer

    def _refused(self, operation: str, exc: Any) -> NoReturn:
        error = exc.response.get("Error", {}) if hasattr(exc, "response") else {}
        code = str(error.get("Code") or "")
        message = cloud.quote(error.get("Message") or "")
        if code in _INTEGRITY:
            raise IntegrityError(
                f"integrity check failed: AWS KMS refused to decrypt with key {self._key_id!r}"
                f" ({code}: the blob or its context was changed, or another key wrapped it)"
            ) from None
        if code in _UNUSABLE:
            raise KeyProviderError(
                f"the KMS key {self._key_id!r} is disabled or pending deletion ({code})",
                hint="enable the key in AWS KMS, or open the vault with another key provider",
            ) from None
        if code in _REFUSED:
            raise KeyProviderError(
                f"AWS KMS refused {operation} on key {self._key_id!r} ({code}: {message})",
                hint=f"grant this identity kms:{operation} on the key",
            ) from None
        if code == "NotFoundException":
            raise KeyProviderError(
                f"AWS KMS has no key {self._key_id!r} in this account and region ({message})"
            ) from None
        raise KeyProviderError(
            f"AWS KMS {operation} on key {self._key_id!r} failed ({code[:60]}: {message})"
        ) from None

    def __repr__(self) -> str:
        return f"AwsKmsProvider(name={self._name!r}, key_id={self.key_id()!r})"


class AwsKmsKind:
    """The ``aws-kms`` family. Implements :class:`~sealbox.kms.interface.ProviderKind`."""

    kind = KIND

    def interactive(self, config: Mapping[str, Any]) -> bool:
        return False

    def config_from(self, options: Mapping[str, str]) -> dict[str, Any]:
        """The stored config ``options`` describe (InvalidInput naming a wrong one)."""
        cleaned = cloud.check_options(KIND, options, required=REQUIRED, optional=OPTIONAL)
        create_key = cloud.flag(KIND, "create_key", cleaned.pop("create_key", None))
        if not create_key and not cleaned.get("key_id"):
            raise InvalidInput(
                "an aws-kms key provider needs the option key_id (a key id, ARN or"
                " alias/NAME), or create_key=true"
            )
        if create_key and cleaned.get("key_id"):
            raise InvalidInput("give either key_id or create_key=true, not both")
        if "endpoint_url" in cleaned:
            cleaned["endpoint_url"] = cloud.check_url(KIND, "endpoint_url", cleaned["endpoint_url"])
        config: dict[str, Any] = dict(cleaned)
        if create_key:
            config["create_key"] = True
        return config

    def create(self, name: str, options: Mapping[str, str], ctx: ProviderContext) -> NewProvider:
        """Check the options, reach KMS (making a key first with ``create_key=true``) and
        check that the key is enabled."""
        config = self.config_from(options)
        client = _client(config, ctx.timeout)
        provider = AwsKmsProvider(name, str(config.get("key_id") or "(new key)"), client)
        try:
            if config.pop("create_key", False):
                config["key_id"] = _create_key(provider, client, ctx.vault_id, name)
                provider = AwsKmsProvider(name, config["key_id"], client)
            provider.check()
        except BaseException:
            provider.close()
            raise
        return NewProvider(config, provider)

    def open(self, name: str, config: Mapping[str, Any], ctx: ProviderContext) -> KeyProvider:
        key_id = config.get("key_id")
        if not isinstance(key_id, str) or not key_id:
            raise KeyProviderError(f"aws-kms key provider {name!r} has no key_id in its config")
        return AwsKmsProvider(name, key_id, _client(config, ctx.timeout))


def _create_key(probe: AwsKmsProvider, client: BaseClient, vault_id: str, name: str) -> str:
    """A new symmetric KMS key for the provider (``create_key=true``): its ARN."""
    try:
        answer = client.create_key(
            Description=f"sealbox vault {vault_id} key provider {name}",
            KeyUsage="ENCRYPT_DECRYPT",
            KeySpec="SYMMETRIC_DEFAULT",
        )
    except ClientError as exc:
        probe._refused("CreateKey", exc)
    except BotoCoreError as exc:
        raise KeyProviderError(
            f"AWS KMS CreateKey failed: {type(exc).__name__} ({cloud.quote(exc)})"
        ) from None
    return str(answer["KeyMetadata"]["Arn"])
