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
from tests.unit.kms import aws_peer, azure_peer, gcp_peer
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


CASES: list[Case] = [
    Case("local", _local, None, _local),
    Case("aws-kms", aws_peer.provider, aws_peer.unreachable, aws_peer.provider),
    Case("gcp-kms", gcp_peer.provider, gcp_peer.unreachable, gcp_peer.provider),
    Case("azure-keyvault", azure_peer.provider, azure_peer.unreachable, azure_peer.provider),
]


@pytest.fixture(params=CASES, ids=lambda c: c.kind)
def case(request: pytest.FixtureRequest) -> Case:
    found: Case = request.param
    return found
