"""The KEKs in memory (:class:`KekRing`), and the local key provider: KEKs wrapped by a
master key (:class:`MasterKeyProvider`).

The master key comes from a passphrase, a key file, the OS keyring, an unlock session
(:mod:`sealbox.kms.master`) or unseal shares; it never touches disk in the clear, and
neither do KEKs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from sealbox.crypto import aead
from sealbox.errors import AuthenticationFailed, IntegrityError, KeyProviderError

PROVIDER = b"local"
#: How often a long-lived ring asks storage which KEK is active (another process may
#: have rotated it: ``sealbox kms rotate``).
REFRESH_SECONDS = 30.0


def kek_context(vault_id: str, kek_id: str) -> bytes:
    """Associated data binding a KEK's wrapping (by any provider) to the vault and KEK."""
    return b"sealbox/kek\x00" + vault_id.encode() + b"\x00" + kek_id.encode()


def new_kek() -> tuple[str, bytes]:
    """A new random KEK and its id."""
    return os.urandom(8).hex(), aead.new_key()


def wrapping_kek(blob: bytes) -> str | None:
    """The id of the KEK a :class:`KekRing` blob is wrapped by (None: not such a blob)."""
    parts = blob.split(b"\x00", 2)
    if len(parts) != 3 or parts[0] != PROVIDER:
        return None
    return parts[1].decode("ascii", errors="replace")


class MasterKeyProvider:
    """The local provider once its master key is known: AES-256-GCM under that key.
    Implements :class:`~sealbox.kms.interface.KeyProvider`."""

    kind = "local"

    def __init__(self, name: str, master_key: bytes, method: str) -> None:
        self._name, self._key, self.method = name, aead.SealingKey(master_key), method
        self.master_key = master_key

    @property
    def name(self) -> str:
        return self._name

    def key_id(self) -> str:
        return f"master key ({self.method})"

    def wrap(self, key: bytes, context: bytes) -> bytes:
        return self._key.encrypt(key, context)

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        try:
            return self._key.decrypt(blob, context, what="key-encryption key")
        except IntegrityError:
            raise AuthenticationFailed(
                "the master key does not open this vault (a wrong passphrase or key file, or"
                " the stored wrapping of its key-encryption key was altered)"
            ) from None

    def check(self) -> None:
        """Always usable: the key is in memory."""

    def close(self) -> None:
        """Nothing to release."""

    def __repr__(self) -> str:
        return f"MasterKeyProvider(name={self._name!r}, method={self.method!r}, key='***')"


class KekSource(Protocol):
    """Where a long-lived ring learns of KEKs made after it was opened (another process
    ran ``sealbox kms rotate``): :class:`sealbox.kms.opening.RingOpener`."""

    def active_kek(self) -> str | None: ...

    def open_kek(self, kek_id: str) -> bytes | None: ...


class KekRing:
    """KEKs in memory. Implements :class:`~sealbox.kms.interface.KeyRing`.

    Blobs are ``local NUL kek_id NUL AES-GCM(kek, data key, context)``. With a
    :class:`KekSource`, an unknown KEK id is looked up (and opened by the provider that
    opened the ring) instead of failing, and which KEK is active is re-read from storage
    every :data:`REFRESH_SECONDS` on the write path, so a rotation elsewhere reaches a
    running server without a restart.
    """

    def __init__(
        self,
        keks: Mapping[str, bytes],
        current: str,
        *,
        source: KekSource | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if current not in keks:
            raise KeyProviderError("the active key-encryption key is missing")
        self._sealing = {kek_id: aead.SealingKey(kek) for kek_id, kek in keks.items()}
        self._keks = dict(keks)
        self._current = current
        self._source, self._clock = source, clock
        self._checked = clock()

    @property
    def kek_ids(self) -> list[str]:
        return list(self._keks)

    def kek(self, kek_id: str) -> bytes:
        """A KEK's bytes, for wrapping it under another provider (key operations only)."""
        found = self._keks.get(kek_id)
        if found is None:
            found = self._learn(kek_id)
        if found is None:
            raise KeyProviderError(f"no key provider here opens key-encryption key {kek_id!r}")
        return found

    def copy(self, source: KekSource | None = None) -> KekRing:
        """The same KEKs for another thread's vault, learning later ones from ``source``
        (its own storage connection), never from this ring's."""
        return KekRing(self._keks, self._current, source=source, clock=self._clock)

    def add(self, kek_id: str, kek: bytes, *, active: bool) -> None:
        """Hold a KEK made by this process (``kms rotate``)."""
        self._keks[kek_id] = kek
        self._sealing[kek_id] = aead.SealingKey(kek)
        if active:
            self._current = kek_id

    def _learn(self, kek_id: str) -> bytes | None:
        if self._source is None:
            return None
        kek = self._source.open_kek(kek_id)
        if kek is not None:
            self._keks[kek_id] = kek
            self._sealing[kek_id] = aead.SealingKey(kek)
        return kek

    def current_key_id(self) -> str:
        if self._source is not None and self._clock() - self._checked >= REFRESH_SECONDS:
            self._checked = self._clock()
            active = self._source.active_kek()
            if (
                active
                and active != self._current
                and (active in self._keks or self._learn(active) is not None)
            ):
                self._current = active
        return self._current

    def wrap(self, key: bytes, context: bytes) -> bytes:
        kek_id = self.current_key_id()
        return (
            b"\x00".join((PROVIDER, kek_id.encode()))
            + b"\x00"
            + self._sealing[kek_id].encrypt(key, context)
        )

    def wrap_under(self, kek_id: str, key: bytes, context: bytes) -> bytes:
        """``wrap`` under a named KEK (a re-wrap: never whichever is active meanwhile)."""
        sealing = self._sealing.get(kek_id)
        if sealing is None:
            raise KeyProviderError(f"key-encryption key {kek_id!r} is not open here")
        return b"\x00".join((PROVIDER, kek_id.encode())) + b"\x00" + sealing.encrypt(key, context)

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        parts = blob.split(b"\x00", 2)
        if len(parts) != 3 or parts[0] != PROVIDER:
            raise IntegrityError("integrity check failed: unknown key wrapping")
        kek_id = parts[1].decode("ascii", errors="replace")
        kek = self._sealing.get(kek_id)
        if kek is None and self._learn(kek_id) is not None:
            kek = self._sealing[kek_id]
        if kek is None:
            raise KeyProviderError("the data key was wrapped by a key this vault does not hold")
        return kek.decrypt(parts[2], context, what="data key")

    def __repr__(self) -> str:
        return f"KekRing(keys={len(self._keks)}, current={self._current!r})"
