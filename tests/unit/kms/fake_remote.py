"""A fake remote key provider for the per-version tests: AES-GCM under a key held in this
module (as a KMS holds its own), counting every call, and able to be made unreachable.

Registered by a test as kind ``fake-remote`` (monkeypatching ``registry.BUILTIN``), it is
opened through the vault's own :class:`~sealbox.kms.opening.RingOpener` like a real one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from sealbox.crypto import aead
from sealbox.errors import KeyProviderError
from sealbox.kms.interface import KeyProvider, NewProvider
from sealbox.kms.registry import ProviderContext

KIND = "fake-remote"
TARGET = "tests.unit.kms.fake_remote:FakeRemoteKind"


class Remote:
    """What the "service" knows: its keys, how often it was called, whether it is up."""

    def __init__(self) -> None:
        self.keys: dict[str, aead.SealingKey] = {}
        self.calls: dict[str, int] = {"wrap": 0, "unwrap": 0}
        self.up = True

    def key(self, key_id: str) -> aead.SealingKey:
        return self.keys.setdefault(key_id, aead.SealingKey(os.urandom(32)))

    def reset_calls(self) -> None:
        self.calls = {"wrap": 0, "unwrap": 0}


REMOTE = Remote()


class FakeRemoteProvider:
    kind = KIND

    def __init__(self, name: str, key_id: str) -> None:
        self._name, self._key_id = name, key_id

    @property
    def name(self) -> str:
        return self._name

    def key_id(self) -> str:
        return f"fake:{self._key_id}"

    def _reach(self, op: str) -> aead.SealingKey:
        REMOTE.calls[op] += 1
        if not REMOTE.up:
            raise KeyProviderError(f"key provider {self._name!r} is unreachable (timed out)")
        return REMOTE.key(self._key_id)

    def wrap(self, key: bytes, context: bytes) -> bytes:
        return self._reach("wrap").encrypt(key, context)

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        return self._reach("unwrap").decrypt(blob, context, what="key")

    def check(self) -> None:
        if not REMOTE.up:
            raise KeyProviderError("unreachable")

    def close(self) -> None:
        pass


class FakeRemoteKind:
    kind = KIND

    def interactive(self, config: Mapping[str, Any]) -> bool:
        return False

    def create(self, name: str, options: Mapping[str, str], ctx: ProviderContext) -> NewProvider:
        provider = FakeRemoteProvider(name, options.get("key", "k1"))
        return NewProvider({"key": options.get("key", "k1")}, provider)

    def open(self, name: str, config: Mapping[str, Any], ctx: ProviderContext) -> KeyProvider:
        return FakeRemoteProvider(name, str(config.get("key", "k1")))
