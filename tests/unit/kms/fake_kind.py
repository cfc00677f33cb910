"""A provider family for tests: AES-GCM under a key named in its config, held in a
process-wide table; ``down`` in the table makes it unreachable (KeyProviderError)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from sealbox.crypto import aead
from sealbox.errors import IntegrityError, KeyProviderError
from sealbox.kms.interface import KeyProvider, NewProvider
from sealbox.kms.registry import ProviderContext

#: key name -> key bytes; a name in DOWN is unreachable.
KEYS: dict[str, bytes] = {}
DOWN: set[str] = set()
CALLS: list[str] = []


class FakeProvider:
    kind = "fake"

    def __init__(self, name: str, key_name: str) -> None:
        self._name, self._key_name = name, key_name

    @property
    def name(self) -> str:
        return self._name

    def _key(self) -> bytes:
        CALLS.append(self._key_name)
        if self._key_name in DOWN:
            raise KeyProviderError(f"fake KMS {self._key_name} is unreachable")
        return KEYS[self._key_name]

    def key_id(self) -> str:
        return f"fake:{self._key_name}"

    def wrap(self, key: bytes, context: bytes) -> bytes:
        return aead.encrypt(self._key(), key, context)

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        try:
            return aead.decrypt(self._key(), blob, context, what="key")
        except IntegrityError:
            raise IntegrityError("fake KMS: integrity check failed") from None

    def check(self) -> None:
        self._key()

    def close(self) -> None:
        pass


class FakeKind:
    kind = "fake"

    def interactive(self, config: Mapping[str, Any]) -> bool:
        return False

    def create(self, name: str, options: Mapping[str, str], ctx: ProviderContext) -> NewProvider:
        key_name = options.get("key") or name
        KEYS.setdefault(key_name, os.urandom(32))
        provider = FakeProvider(name, key_name)
        provider.check()
        return NewProvider({"key": key_name}, provider)

    def open(self, name: str, config: Mapping[str, Any], ctx: ProviderContext) -> KeyProvider:
        return FakeProvider(name, str(config["key"]))
