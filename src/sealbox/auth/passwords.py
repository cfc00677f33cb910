"""Password hashing for people (Argon2id via ``cryptography``), verified in constant time."""

from __future__ import annotations

import base64
import hmac
import os

from sealbox.errors import InvalidInput

# OWASP's Argon2id recommendation (m=19 MiB, t=2, p=1) raised a little.
MEMORY_KIB = 32 * 1024
ITERATIONS = 2
LANES = 1
MIN_LENGTH = 12


def _derive(password: str, salt: bytes, memory: int, iterations: int, lanes: int) -> bytes:
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

    return Argon2id(
        salt=salt, length=32, iterations=iterations, lanes=lanes, memory_cost=memory
    ).derive(password.encode("utf-8"))


def hash_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise InvalidInput(f"a password needs at least {MIN_LENGTH} characters")
    salt = os.urandom(16)
    digest = _derive(password, salt, MEMORY_KIB, ITERATIONS, LANES)
    b64 = base64.b64encode
    return (
        f"$argon2id$v=19$m={MEMORY_KIB},t={ITERATIONS},p={LANES}$"
        f"{b64(salt).decode()}${b64(digest).decode()}"
    )


def verify_password(password: str, encoded: str) -> bool:
    try:
        _, alg, _version, params, salt_b64, digest_b64 = encoded.split("$")
        if alg != "argon2id":
            return False
        fields = dict(p.split("=") for p in params.split(","))
        salt = base64.b64decode(salt_b64)
        expected = base64.b64decode(digest_b64)
        got = _derive(password, salt, int(fields["m"]), int(fields["t"]), int(fields["p"]))
    except (ValueError, KeyError):
        return False
    return hmac.compare_digest(got, expected)


# A hash to verify against when the identity does not exist, so that the time taken does
# not reveal which names exist.
_DUMMY: list[str] = []


def dummy_verify(password: str) -> None:
    if not _DUMMY:
        _DUMMY.append(hash_password("x" * MIN_LENGTH))
    verify_password(password, _DUMMY[0])
