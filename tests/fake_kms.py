"""A fake unattended key provider family (``fake-kms``) for seal and auto-unseal tests:
AES-GCM under a key kept in this module (test-only), which can be switched down (refuses,
as an unreachable KMS) or hanging (waits its ProviderContext.timeout, then fails)."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

import pytest

from sealbox.crypto import aead
from sealbox.errors import KeyProviderError
from sealbox.kms.interface import KeyProvider, NewProvider
from sealbox.kms.registry import BUILTIN, ProviderContext

KEYS: dict[str, bytes] = {}


class Switch:
    def __init__(self) -> None:
        self.mode = "up"  # up | down | hang
        self.hanging = threading.Event()  # set while a call hangs
        self.release = threading.Event()
        self.calls = 0


SWITCH = Switch()


class FakeKmsProvider:
    kind = "fake-kms"

    def __init__(self, name: str, key_name: str, timeout: float) -> None:
        self._name, self._key_name, self._timeout = name, key_name, timeout

    @property
    def name(self) -> str:
        return self._name

    def key_id(self) -> str:
        return f"fake-kms/{self._key_name}"

    def _reach(self) -> aead.SealingKey:
        SWITCH.calls += 1
        if SWITCH.mode == "down":
            raise KeyProviderError("fake KMS: connection refused")
        if SWITCH.mode == "hang":
            SWITCH.hanging.set()
            SWITCH.release.wait(self._timeout)
            SWITCH.hanging.clear()
            raise KeyProviderError(f"fake KMS: no answer within {self._timeout} s")
        return aead.SealingKey(KEYS[self._key_name])

    def wrap(self, key: bytes, context: bytes) -> bytes:
        return self._reach().encrypt(key, context)

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        return self._reach().decrypt(blob, context, what="key-encryption key")

    def check(self) -> None:
        self._reach()

    def close(self) -> None:
        pass


class FakeKmsKind:
    kind = "fake-kms"

    def interactive(self, config: Mapping[str, Any]) -> bool:
        return False

    def create(self, name: str, options: Mapping[str, str], ctx: ProviderContext) -> NewProvider:
        key_name = os.urandom(4).hex()
        KEYS[key_name] = os.urandom(32)
        provider = FakeKmsProvider(name, key_name, ctx.timeout)
        provider.check()
        return NewProvider({"key": key_name}, provider)

    def open(self, name: str, config: Mapping[str, Any], ctx: ProviderContext) -> KeyProvider:
        return FakeKmsProvider(name, str(config["key"]), ctx.timeout)


@pytest.fixture
def fake_kms(monkeypatch: pytest.MonkeyPatch) -> Switch:
    """Registers ``fake-kms`` (registry.BUILTIN) and resets its switch."""
    monkeypatch.setitem(BUILTIN, "fake-kms", "tests.fake_kms:FakeKmsKind")
    SWITCH.mode = "up"
    SWITCH.release.clear()
    SWITCH.hanging.clear()
    SWITCH.calls = 0
    yield SWITCH
    SWITCH.release.set()
