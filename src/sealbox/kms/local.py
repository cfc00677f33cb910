"""The local key provider: KEKs kept in the vault's own storage, encrypted by a master key.

The master key comes from a passphrase, a key file or the OS keyring
(:mod:`sealbox.kms.master`); it never touches disk in the clear, and neither do KEKs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from sealbox.crypto import aead
from sealbox.errors import AuthenticationFailed, IntegrityError, KeyProviderError
from sealbox.storage.rows import KekRecord

PROVIDER = b"local"


def kek_context(vault_id: str, kek_id: str) -> bytes:
    return b"sealbox/kek\x00" + vault_id.encode() + b"\x00" + kek_id.encode()


def new_kek_record(vault_id: str, master_key: bytes, created_at: str) -> tuple[KekRecord, bytes]:
    """A new random KEK and its stored form."""
    kek_id = os.urandom(8).hex()
    kek = aead.new_key()
    wrapped = aead.encrypt(master_key, kek, kek_context(vault_id, kek_id))
    return KekRecord(kek_id, wrapped, created_at, active=True), kek


def rewrap_kek_records(
    records: Iterable[KekRecord], vault_id: str, old_master: bytes, new_master: bytes
) -> list[KekRecord]:
    """Re-encrypt every KEK under a new master key (a passphrase change)."""
    out = []
    for rec in records:
        ctx = kek_context(vault_id, rec.kek_id)
        kek = _open_kek(old_master, rec, ctx)
        out.append(
            KekRecord(rec.kek_id, aead.encrypt(new_master, kek, ctx), rec.created_at, rec.active)
        )
    return out


def _open_kek(master_key: bytes, rec: KekRecord, ctx: bytes) -> bytes:
    try:
        return aead.decrypt(master_key, rec.wrapped, ctx, what="key-encryption key")
    except IntegrityError:
        raise AuthenticationFailed(
            "the master key does not open this vault (wrong passphrase or key file?)"
        ) from None


class LocalKeyProvider:
    """KEKs in memory, opened with the master key. Implements :class:`KeyProvider`."""

    name = "local"

    def __init__(self, keks: dict[str, bytes], current: str) -> None:
        if current not in keks:
            raise KeyProviderError("the active key-encryption key is missing")
        self._keks = keks
        self._sealing = {kek_id: aead.SealingKey(kek) for kek_id, kek in keks.items()}
        self._current = current

    @classmethod
    def open(
        cls, records: Iterable[KekRecord], vault_id: str, master_key: bytes
    ) -> LocalKeyProvider:
        keks: dict[str, bytes] = {}
        current = None
        for rec in records:
            keks[rec.kek_id] = _open_kek(master_key, rec, kek_context(vault_id, rec.kek_id))
            if rec.active:
                current = rec.kek_id
        if current is None:
            raise KeyProviderError("the vault has no active key-encryption key")
        return cls(keks, current)

    def current_key_id(self) -> str:
        return self._current

    def wrap(self, key: bytes, context: bytes) -> bytes:
        kek_id = self._current
        return (
            b"\x00".join((PROVIDER, kek_id.encode()))
            + b"\x00"
            + self._sealing[kek_id].encrypt(key, context)
        )

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        parts = blob.split(b"\x00", 2)
        if len(parts) != 3 or parts[0] != PROVIDER:
            raise IntegrityError("integrity check failed: unknown key wrapping")
        kek = self._sealing.get(parts[1].decode("ascii", errors="replace"))
        if kek is None:
            raise KeyProviderError("the data key was wrapped by a key this vault does not hold")
        return kek.decrypt(parts[2], context, what="data key")

    def __repr__(self) -> str:
        return f"LocalKeyProvider(keys={len(self._keks)}, current={self._current!r})"
