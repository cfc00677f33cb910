"""The KeyProvider Protocol every provider implements (local now; KMS/HSM later), and
the Unlocker that opens a vault's provider."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from sealbox.storage.rows import KekRecord


class KeyProvider(Protocol):
    """Wraps and unwraps data keys under a key-encryption key (KEK).

    A wrapped blob records which provider and which key wrapped it, so keys can be
    rotated and old blobs still opened. ``context`` is bound to the blob as associated
    data: unwrapping with another context fails.
    """

    name: str

    def current_key_id(self) -> str: ...

    def wrap(self, key: bytes, context: bytes) -> bytes: ...

    def unwrap(self, blob: bytes, context: bytes) -> bytes: ...


class Unlocker(Protocol):
    """Opens one vault's key provider the way the vault was set up.

    One per provider family, found by name in the registry (:mod:`sealbox.kms.registry`,
    entry points group ``sealbox.key_providers``). The core's key operations (unlock,
    lock, passphrase change: :mod:`sealbox.keys`) call it and audit the outcome; an
    unlocker never records events itself.
    """

    @property
    def name(self) -> str:
        """The provider family (``local``), as the registry knows it."""
        ...

    def key_provider(self) -> KeyProvider:
        """The provider, opened the cheapest way available (an unlock session first)."""
        ...

    def unlock_key(self) -> tuple[bytes, KeyProvider]:
        """Open the provider from its own credential (never a session) and return what an
        unlock session keeps to reopen it (the local provider: its master key)."""
        ...

    def change_passphrase(self, old: str, new: str) -> tuple[KeyProvider, Rekeyed]:
        """Check ``old`` and work out the re-wrapped key records under ``new``; the core
        stores them (:meth:`~sealbox.storage.interface.Storage.replace_master`)."""
        ...


class Rekeyed(NamedTuple):
    """What a passphrase change stores: the re-wrapped KEK records and settings."""

    keks: list[KekRecord]
    settings: dict[str, str]
