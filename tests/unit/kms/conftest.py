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


def _pkcs11() -> contextlib.AbstractContextManager[KeyProvider]:
    from tests.unit.kms import softhsm

    return softhsm.opened(softhsm.MAIN)


def _pkcs11_other() -> contextlib.AbstractContextManager[KeyProvider]:
    from tests.unit.kms import softhsm

    return softhsm.opened(softhsm.OTHER)


def _pkcs11_unreachable() -> contextlib.AbstractContextManager[KeyProvider]:
    from tests.unit.kms import softhsm

    return softhsm.opened(softhsm.MAIN, token_label="no-such-token")


CASES: list[Case] = [
    Case("local", _local, None, _local),
    # SoftHSM2 (tests/unit/kms/softhsm.py); unreachable: a token label that does not exist.
    Case("pkcs11", _pkcs11, _pkcs11_unreachable, _pkcs11_other),
]


@pytest.fixture(scope="session")
def soft_hsm() -> object:
    """This process's SoftHSM2 (a temp softhsm2.conf and tokendir, SOFTHSM2_CONF set
    before the library loads, tokens initialised), or skip saying why it cannot be had."""
    from tests.unit.kms import softhsm

    return softhsm.softhsm()


@pytest.fixture(params=CASES, ids=lambda c: c.kind)
def case(request: pytest.FixtureRequest) -> Case:
    found: Case = request.param
    return found
