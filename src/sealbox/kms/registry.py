"""Key provider families by name: sealbox's own looked up by module path, others from
entry points.

A vault's providers are rows of ``sb_key_providers`` (name, kind, config); the kind names
a family here. A package adds one (another HSM, another cloud's KMS) by declaring a
factory ``Callable[[], ProviderKind]`` in the entry points group
``sealbox.key_providers``. sealbox's own families are found without entry point discovery
(``importlib.metadata`` costs a CLI process milliseconds it does not need to spend), and
a family's SDK (boto3, python-pkcs11 …) is imported only when a vault uses it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, NamedTuple, Protocol

from sealbox.errors import KeyProviderError

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

    from sealbox.kms.interface import ProviderKind
    from sealbox.kms.master import PassphrasePrompt
    from sealbox.storage.interface import KeyStore, SessionStore, SettingsStore

    class ProviderStorage(KeyStore, SessionStore, SettingsStore, Protocol):
        """What the key operations may read of the vault: KEKs, providers, sessions,
        settings."""


GROUP = "sealbox.key_providers"
LOCAL = "local"
#: Seconds any one call to a remote provider may take (connect and answer) by default.
DEFAULT_TIMEOUT = 5.0

#: sealbox's own families: kind -> "module:factory" (each also declared in the entry
#: points, for discovery by other tools).
BUILTIN: dict[str, str] = {
    "local": "sealbox.kms.local_unlock:LocalKind",
    "shamir": "sealbox.kms.shamir:ShamirKind",
    "pkcs11": "sealbox.kms.pkcs11:Pkcs11Kind",
    "transit": "sealbox.kms.transit:TransitKind",
    "aws-kms": "sealbox.kms.aws_kms:AwsKmsKind",
    "gcp-kms": "sealbox.kms.gcp_kms:GcpKmsKind",
    "azure-keyvault": "sealbox.kms.azure_keyvault:AzureKeyVaultKind",
}


class ProviderContext(NamedTuple):
    """What a provider family may use: the vault's storage and the caller's environment."""

    storage: ProviderStorage
    vault_id: str
    key_file: Path | None
    env: Mapping[str, str]
    prompt: PassphrasePrompt | None
    clock: Callable[[], datetime]
    #: Seconds a call to a remote provider may take (SEALBOX_KMS_TIMEOUT overrides).
    timeout: float = DEFAULT_TIMEOUT


KindFactory = Callable[[], "ProviderKind"]


def kind_names() -> list[str]:
    """Every family sealbox knows by name (its own, then installed plug-ins)."""
    from importlib.metadata import entry_points

    names = list(BUILTIN)
    names += sorted({ep.name for ep in entry_points(group=GROUP)} - set(BUILTIN))
    return names


def provider_kind(kind: str) -> ProviderKind:
    """The family ``kind``; KeyProviderError if there is none (or it cannot load)."""
    target = BUILTIN.get(kind)
    if target is not None:
        module_name, _, attr = target.partition(":")
        try:
            factory: KindFactory = getattr(importlib.import_module(module_name), attr)
        except ImportError as exc:
            extra = kind.split("-", maxsplit=1)[0]
            raise KeyProviderError(
                f"key provider {kind!r} needs a package that is not installed ({exc.name})",
                hint=f"pip install 'sealbox[{extra}]'",
            ) from None
        return factory()
    from importlib.metadata import entry_points

    for ep in entry_points(group=GROUP, name=kind):
        try:
            found: KindFactory = ep.load()
        except Exception as exc:
            raise KeyProviderError(
                f"key provider {kind!r} cannot be loaded ({type(exc).__name__})",
                hint=f"check the package that provides it ({ep.value})",
            ) from None
        return found()
    raise KeyProviderError(
        f"unknown key provider kind {kind[:100]!r}",
        hint=f"one of {', '.join(BUILTIN)}, or a package registering it in the {GROUP!r}"
        " entry points",
    )
