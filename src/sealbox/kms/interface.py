"""The key hierarchy's two interfaces, and the Unlocker that opens a vault's keys.

::

    value --AES-GCM--> data key (one per version) --wrapped by--> KEK (a few per vault)
                                                                 | wrapped by each of
                                                                 v
                              KeyProvider: local (master key) | pkcs11 | transit | aws-kms …

* A :class:`KeyProvider` is a root of trust: a passphrase-derived master key, a key inside
  an HSM, a Transit engine's key, a cloud KMS key. It wraps the vault's KEKs, so it is
  called when a vault is opened (unsealed) and at key operations, never on a read. A
  vault has one or several at once; any one of them opens every KEK.
* A :class:`KeyRing` is the KEKs in memory once opened: it wraps and unwraps the data
  keys of every version, locally (no call out), which is what keeps reads fast whatever
  the provider.

Provider families are :class:`ProviderKind` objects, found by name in the registry
(:mod:`sealbox.kms.registry`, entry points group ``sealbox.key_providers``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from sealbox.kms.registry import ProviderContext


class KeyRing(Protocol):
    """Wraps and unwraps data keys under the vault's KEKs (in memory).

    A wrapped blob records which KEK wrapped it, so KEKs can be rotated and old blobs
    still opened. ``context`` is bound to the blob as associated data: unwrapping with
    another context fails.
    """

    def current_key_id(self) -> str: ...

    def wrap(self, key: bytes, context: bytes) -> bytes: ...

    def unwrap(self, blob: bytes, context: bytes) -> bytes: ...


class KeyProvider(Protocol):
    """A root of trust that wraps the vault's KEKs (and, when a vault asks for it, the
    data keys of its most sensitive secrets).

    Every implementation passes the contract suite in ``tests/unit/kms/contract.py``:
    ``unwrap(wrap(k, c), c) == k``; another context, a changed byte or another provider's
    blob fails with :class:`~sealbox.errors.IntegrityError` (or
    :class:`~sealbox.errors.KeyProviderError` where the provider cannot tell the two
    apart); an unreachable or hanging provider fails within its timeout with
    :class:`~sealbox.errors.KeyProviderError`, never blocks for ever, and never puts key
    material or credentials in an error message or a ``repr``.
    """

    @property
    def kind(self) -> str:
        """The provider family (``local``, ``pkcs11``, ``transit``, ``aws-kms`` …)."""
        ...

    @property
    def name(self) -> str:
        """This provider's name in the vault (``sealbox kms add NAME``)."""
        ...

    def key_id(self) -> str:
        """Which key at the provider wraps now (a token label, a Transit key name and
        version, a KMS key ARN): shown by ``kms status``, stored beside each wrapping."""
        ...

    def wrap(self, key: bytes, context: bytes) -> bytes:
        """``key`` encrypted under the provider's key, bound to ``context``."""
        ...

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        """The key ``wrap`` was given, if ``blob`` and ``context`` are what it returned
        and was given."""
        ...

    def check(self) -> None:
        """Raise KeyProviderError unless the provider is reachable and usable now
        (readiness, ``kms status``); bounded by the provider's timeout."""
        ...

    def close(self) -> None:
        """Release sessions and connections (an HSM session, an HTTP pool)."""
        ...


class NewProvider(NamedTuple):
    """What :meth:`ProviderKind.create` makes of ``sealbox kms add``'s options."""

    #: The provider's stored config (JSON-able, never secret).
    config: dict[str, Any]
    #: The provider, open, to wrap the vault's KEKs with.
    provider: KeyProvider
    #: Called after the KEKs are wrapped and before the provider is stored: keeps key
    #: material that lives outside the vault (a new key file, a keyring entry).
    keep: Callable[[], None] | None = None
    #: Recovery shares to show the operator once (a local provider split into shares).
    shares: tuple[str, ...] = ()


class ProviderKind(Protocol):
    """One provider family: makes a new provider from options, opens a stored one."""

    @property
    def kind(self) -> str: ...

    def interactive(self, config: Mapping[str, Any]) -> bool:
        """True when opening needs a person (a passphrase prompt, unseal shares): such
        providers are tried after those that open unattended."""
        ...

    def create(self, name: str, options: Mapping[str, str], ctx: ProviderContext) -> NewProvider:
        """Check ``options`` (InvalidInput naming a wrong or missing one), reach the
        provider (KeyProviderError if it cannot be reached or refuses) and return it open."""
        ...

    def open(self, name: str, config: Mapping[str, Any], ctx: ProviderContext) -> KeyProvider:
        """The stored provider ``name``, opened with credentials from ``ctx.env`` (an HSM
        PIN, a Transit token, the cloud SDK's own credential chain)."""
        ...


class Unlocker(Protocol):
    """Opens one vault's KEKs through its key providers (:mod:`sealbox.kms.opening`).

    The core's key operations (unlock, lock, passphrase change: :mod:`sealbox.keys`;
    provider and KEK operations: :mod:`sealbox.kms_ops`) call it and audit the outcome;
    an unlocker never records events itself.
    """

    def key_ring(self) -> KeyRing:
        """The KEKs, opened the cheapest way available (an unlock session first, then
        the providers that open unattended, then a passphrase)."""
        ...

    def ring_from(self, provider: KeyProvider) -> KeyRing:
        """The KEKs ``provider`` (opened elsewhere: unseal shares combined) holds wrappings
        of, kept open to open KEKs made later."""
        ...

    def unlock_key(self) -> tuple[str, bytes, KeyRing]:
        """Open a local provider from its own credential (never a session) and return its
        name and what an unlock session keeps to reopen it (its master key)."""
        ...

    def change_passphrase(self, old: str, new: str) -> tuple[KeyRing, Rekeyed]:
        """Check ``old`` and work out the local passphrase provider's re-wrapped KEKs
        under ``new``; the core stores them
        (:meth:`~sealbox.storage.interface.KeyStore.update_key_provider`)."""
        ...

    def close(self) -> None:
        """Close the provider kept open to open KEKs made later (the vault is closing)."""
        ...


class Rekeyed(NamedTuple):
    """What a passphrase change stores: the provider, its new config and wrappings."""

    provider: str
    config: str
    wrappings: list[Any]
