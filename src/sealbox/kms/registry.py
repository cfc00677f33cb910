"""Key provider families by name: the local one built in, others from entry points.

A vault names its provider in the ``key_provider`` setting (absent: ``local``). A
package adds one (PKCS#11, a transit engine, a cloud KMS) by declaring a factory
``Callable[[ProviderContext], Unlocker]`` in the entry points group
``sealbox.key_providers``. The local provider is looked up without entry point discovery
(``importlib.metadata`` costs a CLI process milliseconds it does not need to spend).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, NamedTuple, Protocol

from sealbox.errors import KeyProviderError

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

    from sealbox.kms.interface import Unlocker
    from sealbox.kms.master import PassphrasePrompt
    from sealbox.storage.interface import KeyStore, SessionStore, SettingsStore

    class ProviderStorage(KeyStore, SessionStore, SettingsStore, Protocol):
        """What a provider may read of the vault: its KEKs, sessions and settings."""


GROUP = "sealbox.key_providers"
LOCAL = "local"
#: The setting that names a vault's provider family.
SETTING = "key_provider"


class ProviderContext(NamedTuple):
    """What a provider's unlocker may use: the vault's storage and the caller's environment."""

    storage: ProviderStorage
    vault_id: str
    key_file: Path | None
    env: Mapping[str, str]
    prompt: PassphrasePrompt | None
    clock: Callable[[], datetime]


UnlockerFactory = Callable[[ProviderContext], "Unlocker"]


def unlocker_factory(name: str) -> UnlockerFactory:
    """The factory registered as ``name``; KeyProviderError if there is none."""
    if name == LOCAL:
        from sealbox.kms.local_unlock import LocalUnlocker

        return LocalUnlocker
    from importlib.metadata import entry_points

    for ep in entry_points(group=GROUP, name=name):
        try:
            factory: UnlockerFactory = ep.load()
        except Exception as exc:
            raise KeyProviderError(
                f"key provider {name!r} cannot be loaded ({type(exc).__name__})",
                hint=f"check the package that provides it ({ep.value})",
            ) from None
        return factory
    raise KeyProviderError(
        f"the vault uses key provider {name[:100]!r}, which is not installed",
        hint=f"install the package that registers it in the {GROUP!r} entry points",
    )


def open_unlocker(ctx: ProviderContext) -> Unlocker:
    """The unlocker of the provider the vault names."""
    name = ctx.storage.get_setting(SETTING) or LOCAL
    return unlocker_factory(name)(ctx)
