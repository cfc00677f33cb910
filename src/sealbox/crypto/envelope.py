"""Envelope encryption of secret versions: :func:`seal` and :func:`open_sealed`.

Each version gets its own random data key (DEK). The value is encrypted under the DEK
with AES-256-GCM; the DEK is wrapped by a key provider's key-encryption key (KEK). Both
the value and the wrapped DEK are bound to the version's address (vault id, project,
env, name, version) through associated data, so a ciphertext moved to another row — or a
wrapped key swapped between rows — fails to open.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from sealbox.crypto import aead
from sealbox.errors import IntegrityError

FORMAT = b"sealbox/v1"


class Wrapper(Protocol):
    """The part of a key provider that envelope encryption needs."""

    def wrap(self, key: bytes, context: bytes) -> bytes: ...

    def unwrap(self, blob: bytes, context: bytes) -> bytes: ...


class Sealed(NamedTuple):
    """What is stored for one version: the encrypted value and the wrapped data key."""

    ciphertext: bytes
    wrapped_key: bytes
    kek_id: str


def version_context(vault_id: str, project: str, env: str, name: str, version: int) -> bytes:
    """Associated data binding a ciphertext to exactly one version of one secret."""
    # NUL cannot occur in validated names, so the encoding is unambiguous.
    parts = (FORMAT, vault_id.encode(), project.encode(), env.encode(), name.encode())
    return b"\x00".join((*parts, str(version).encode()))


def seal(plaintext: bytes, wrapper: Wrapper, kek_id: str, context: bytes) -> Sealed:
    """Encrypt ``plaintext`` under a fresh data key wrapped by ``wrapper``."""
    dek = aead.new_key()
    ciphertext = aead.encrypt(dek, plaintext, context)
    return Sealed(ciphertext=ciphertext, wrapped_key=wrapper.wrap(dek, context), kek_id=kek_id)


def open_sealed(ciphertext: bytes, wrapped_key: bytes, wrapper: Wrapper, context: bytes) -> bytes:
    """Decrypt a sealed value; any tampering raises :class:`IntegrityError`."""
    dek = wrapper.unwrap(wrapped_key, context)
    try:
        return aead.decrypt(dek, ciphertext, context)
    except IntegrityError:
        raise IntegrityError("integrity check failed") from None
