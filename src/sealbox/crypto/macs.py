"""MACs, hashes and signatures for the audit trail (HMAC-SHA256, GMAC, SHA-256, Ed25519).

Everything goes through ``cryptography``. Sub-keys are derived with HKDF-Expand
(RFC 5869) for one 32-byte block, ``T(1) = HMAC(key, info || 0x01)``, which is exact for
a uniformly random input key such as the vault's audit key. Ed25519 is imported only by
the functions that sign or verify (checkpoints are rare; ``sealbox run`` never needs it).
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes, hmac

KEY_BYTES = 32


def mac(key: bytes, data: bytes) -> bytes:
    """HMAC-SHA256 of ``data`` under ``key``."""
    h = hmac.HMAC(key, hashes.SHA256())
    h.update(data)
    return h.finalize()


class MacKey:
    """A key that MACs many messages (the audit keys): its HMAC state after the key is
    computed once and copied per message, which halves the cost of a short MAC."""

    __slots__ = ("_base",)

    def __init__(self, key: bytes) -> None:
        self._base = hmac.HMAC(key, hashes.SHA256())

    def mac(self, data: bytes) -> bytes:
        h = self._base.copy()
        h.update(data)
        return h.finalize()

    def verify(self, data: bytes, tag: bytes) -> bool:
        """Whether ``tag`` is the MAC of ``data`` (constant time, in the library: no
        import of hashlib's comparison on an embedded command's path)."""
        from cryptography.exceptions import InvalidSignature

        h = self._base.copy()
        h.update(data)
        try:
            h.verify(tag)
        except InvalidSignature:
            return False
        return True

    def __repr__(self) -> str:
        return "MacKey(***)"


class CounterGmac:
    """GMAC (AES-256-GCM over associated data alone) with a counter nonce: one library
    call per tag, where HMAC takes three (copy, update, finalize). For the server's audit
    spool, whose every record is tagged on the request path.

    A GMAC key must never see a nonce twice: build one per key that is itself used only
    once (``derive(chain key, label || random salt)``), and let it count. ``tag`` raises
    once the 64-bit counter would wrap.
    """

    __slots__ = ("_aead", "count")

    def __init__(self, key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(key)
        self.count = 0

    def tag(self, data: bytes) -> tuple[int, bytes]:
        """(counter, 16-byte tag of ``data``) for the next counter value."""
        self.count += 1
        if self.count >= 1 << 64:
            raise OverflowError("GMAC counter exhausted")
        return self.count, self._aead.encrypt(self.count.to_bytes(12, "big"), b"", data)

    def check(self, counter: int, data: bytes, tag: bytes) -> bool:
        """Whether ``tag`` is the tag of ``data`` at ``counter`` (constant time)."""
        from cryptography.exceptions import InvalidTag

        try:
            self._aead.decrypt(counter.to_bytes(12, "big"), tag, data)
        except (InvalidTag, OverflowError, ValueError):
            return False
        return True

    def __repr__(self) -> str:
        return "CounterGmac(***)"


def derive(key: bytes, label: bytes) -> bytes:
    """A 32-byte sub-key for one purpose (HKDF-Expand, one block)."""
    if len(key) != KEY_BYTES:
        raise ValueError("sub-keys are derived from a 32-byte key")
    return mac(key, label + b"\x01")


def sha256(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SHA256())
    h.update(data)
    return h.finalize()


def equal(a: bytes, b: bytes) -> bool:
    """Constant-time comparison of two MACs or hashes."""
    # NOTE: imported here: it pulls in hashlib/OpenSSL (~2 ms), off `sealbox run`'s path.
    from cryptography.hazmat.primitives.constant_time import bytes_eq

    return bytes_eq(a, b)


def new_signing_key() -> tuple[bytes, bytes]:
    """A fresh Ed25519 key pair as raw bytes: (private, public)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return private, public


def public_of(private: bytes) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return (
        Ed25519PrivateKey.from_private_bytes(private)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


def sign(private: bytes, message: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(private).sign(message)


def signature_valid(public: bytes, message: bytes, signature: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
