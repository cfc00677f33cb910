"""Master keys from passphrases (Argon2id) and session keys (HKDF).

The passphrase KDF is slow on purpose; sessions exist so that everyday commands do not
pay it (see :mod:`sealbox.kms.master`).
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from sealbox.errors import InvalidInput

SALT_BYTES = 16


class Argon2Params(NamedTuple):
    """Argon2id parameters, stored beside the salt so they can be raised later."""

    salt: bytes
    iterations: int = 3
    memory_kib: int = 64 * 1024
    lanes: int = 4

    @classmethod
    def fresh(cls) -> Argon2Params:
        return cls(salt=os.urandom(SALT_BYTES))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kdf": "argon2id",
            "salt": self.salt.hex(),
            "iterations": self.iterations,
            "memory_kib": self.memory_kib,
            "lanes": self.lanes,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Argon2Params:
        if data.get("kdf") != "argon2id":
            raise InvalidInput(f"unsupported key derivation function {data.get('kdf')!r}")
        return cls(
            salt=bytes.fromhex(data["salt"]),
            iterations=int(data["iterations"]),
            memory_kib=int(data["memory_kib"]),
            lanes=int(data["lanes"]),
        )


def derive_from_passphrase(passphrase: str, params: Argon2Params) -> bytes:
    """A 256-bit master key from a passphrase."""
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

    if not passphrase:
        raise InvalidInput("the passphrase is empty")
    kdf = Argon2id(
        salt=params.salt,
        length=32,
        iterations=params.iterations,
        lanes=params.lanes,
        memory_cost=params.memory_kib,
    )
    return kdf.derive(passphrase.encode("utf-8"))


def derive_subkey(key: bytes, info: bytes) -> bytes:
    """A 256-bit key for one purpose from high-entropy input key material (HKDF-SHA256)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)
