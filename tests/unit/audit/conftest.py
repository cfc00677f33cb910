"""Fixtures for audit tests: a key-file vault (fast) with chosen sinks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sealbox import factory
from sealbox.kms.master import UnlockMethod
from sealbox.vault import Vault

OpenVault = Callable[..., Vault]


@pytest.fixture
def make_vault(home: Path, tmp_path: Path) -> OpenVault:
    """Create the vault once; each call opens it (kwargs go to factory.open_vault)."""
    factory.init_vault(home=home, method=UnlockMethod.KEYFILE, key_file=tmp_path / "k.key")
    first = factory.open_vault(home=home)
    first.create_project("payments")
    first.close()

    def open_(**kw: object) -> Vault:
        return factory.open_vault(home=home, **kw)  # type: ignore[arg-type]

    return open_
