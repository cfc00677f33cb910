"""The provider families the contract suite runs against (``tests/unit/kms/contract.py``).

Each family module under ``tests/unit/kms/`` that needs a real peer (SoftHSM2, OpenBao,
moto) registers its :class:`~tests.unit.kms.contract.Case` in :data:`CASES` below, and
skips (with the reason) where the peer cannot be had.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest
from tests.unit.kms.contract import Case

from sealbox.kms.interface import KeyProvider
from sealbox.kms.local import MasterKeyProvider


@contextlib.contextmanager
def _local(key: bytes | None = None) -> Iterator[KeyProvider]:
    provider = MasterKeyProvider("local", key or os.urandom(32), "keyfile")
    try:
        yield provider
    finally:
        provider.close()


@contextlib.contextmanager
def _shamir() -> Iterator[KeyProvider]:
    from sealbox.kms.shamir import ShamirKind

    provider = ShamirKind().create("shamir", {"shares": "3", "threshold": "2"}, None).provider  # type: ignore[arg-type]
    try:
        yield provider
    finally:
        provider.close()


CASES: list[Case] = [
    Case("local", _local, None, _local),
    Case("shamir", _shamir, None, _shamir),
]


@pytest.fixture(params=CASES, ids=lambda c: c.kind)
def case(request: pytest.FixtureRequest) -> Case:
    found: Case = request.param
    return found
