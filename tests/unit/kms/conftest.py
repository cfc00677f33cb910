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
from tests.unit.kms import aws_peer, azure_peer, bao, gcp_peer
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


def _pkcs11() -> contextlib.AbstractContextManager[KeyProvider]:
    from tests.unit.kms import softhsm

    return softhsm.opened(softhsm.MAIN)


def _pkcs11_other() -> contextlib.AbstractContextManager[KeyProvider]:
    from tests.unit.kms import softhsm

    return softhsm.opened(softhsm.OTHER)


def _pkcs11_unreachable() -> contextlib.AbstractContextManager[KeyProvider]:
    from tests.unit.kms import softhsm

    return softhsm.opened(softhsm.MAIN, token_label="no-such-token")


def _transit() -> contextlib.AbstractContextManager[KeyProvider]:
    return bao.opened("sealbox-test")


def _transit_unreachable() -> contextlib.AbstractContextManager[KeyProvider]:
    # A closed port: no bao server needed.
    port = bao.closed_port()
    return bao.opened(address=f"http://127.0.0.1:{port}", token="sbtest-unused", timeout=2.0)


def _transit_other() -> contextlib.AbstractContextManager[KeyProvider]:
    return bao.opened("sealbox-other")


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
    # SoftHSM2 (tests/unit/kms/softhsm.py); unreachable: a token label that does not exist.
    Case("pkcs11", _pkcs11, _pkcs11_unreachable, _pkcs11_other),
    Case("transit", _transit, _transit_unreachable, _transit_other),
    Case("aws-kms", aws_peer.provider, aws_peer.unreachable, aws_peer.provider),
    Case("gcp-kms", gcp_peer.provider, gcp_peer.unreachable, gcp_peer.provider),
    Case("azure-keyvault", azure_peer.provider, azure_peer.unreachable, azure_peer.provider),
    Case("shamir", _shamir, None, _shamir),
]


@pytest.fixture(scope="session")
def soft_hsm() -> object:
    """This process's SoftHSM2 (a temp softhsm2.conf and tokendir, SOFTHSM2_CONF set
    before the library loads, tokens initialised), or skip saying why it cannot be had."""
    from tests.unit.kms import softhsm

    return softhsm.softhsm()


@pytest.fixture(scope="session", autouse=True)
def _stop_bao() -> Iterator[None]:
    """Stops the OpenBao dev server if a test started one (tests/unit/kms/bao.py)."""
    yield
    bao.stop_bao_server()


@pytest.fixture(params=CASES, ids=lambda c: c.kind)
def case(request: pytest.FixtureRequest) -> Case:
    found: Case = request.param
    return found
