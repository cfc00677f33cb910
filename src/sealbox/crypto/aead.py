"""AES-256-GCM with a random 96-bit nonce, behind two functions that are hard to misuse.

Like Fernet's ``InvalidToken``, every failure to open (bad tag, wrong associated data,
wrong key, short or garbled blob) becomes one detail-free :class:`IntegrityError`.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sealbox.errors import IntegrityError

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16


def new_key() -> bytes:
    """A fresh random 256-bit key."""
    return os.urandom(KEY_BYTES)


class SealingKey:
    """A key used many times (a key-encryption key): its AES key schedule is made once.

    (Building ``AESGCM(key)`` costs about a microsecond, as much as opening a data key.)
    """

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("AES-256-GCM needs a 32-byte key")
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        """Return ``nonce || ciphertext || tag``."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def decrypt(self, blob: bytes, aad: bytes, *, what: str = "data") -> bytes:
        """Open a blob made by :meth:`encrypt`; any failure is an :class:`IntegrityError`."""
        if len(blob) < NONCE_BYTES + TAG_BYTES:
            raise IntegrityError(f"integrity check failed for {what}")
        try:
            return self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
        except InvalidTag:
            raise IntegrityError(f"integrity check failed for {what}") from None

    def __repr__(self) -> str:
        return "SealingKey(***)"


def encrypt(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Return ``nonce || ciphertext || tag``."""
    if len(key) != KEY_BYTES:
        raise ValueError("AES-256-GCM needs a 32-byte key")
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def decrypt(key: bytes, blob: bytes, aad: bytes, *, what: str = "data") -> bytes:
    """Open a blob made by :func:`encrypt`; any failure is an :class:`IntegrityError`."""
    if len(key) != KEY_BYTES or len(blob) < NONCE_BYTES + TAG_BYTES:
        raise IntegrityError(f"integrity check failed for {what}")
    try:
        return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
    except InvalidTag:
        raise IntegrityError(f"integrity check failed for {what}") from None
