"""The KeyProvider Protocol every provider implements (local now; KMS/HSM later)."""

from __future__ import annotations

from typing import Protocol


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
