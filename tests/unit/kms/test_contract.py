"""Every key provider family against the one contract (``tests/unit/kms/contract.py``)."""

from __future__ import annotations

import os
import time

import pytest
from tests.unit.kms.contract import Case

from sealbox.errors import AuthenticationFailed, IntegrityError, KeyProviderError, SealboxError

#: What a failed unwrap may raise: tampering, a provider refusing, or (the local provider,
#: which cannot tell a wrong key from a changed blob) a wrong master key.
REFUSED = (IntegrityError, KeyProviderError, AuthenticationFailed)

CTX = b"sealbox/kek\x00vault-1\x00kek-1"
KEY = bytes(range(32))


def test_wrap_then_unwrap_gives_the_key_back(case: Case) -> None:
    with case.provider() as provider:
        blob = provider.wrap(KEY, CTX)
        assert KEY not in blob
        assert provider.unwrap(blob, CTX) == KEY
        # Fresh randomness each time: the same key wraps to different blobs.
        assert provider.wrap(KEY, CTX) != blob
        assert provider.key_id()
        provider.check()


def test_another_context_fails(case: Case) -> None:
    with case.provider() as provider:
        blob = provider.wrap(KEY, CTX)
        with pytest.raises(REFUSED):
            provider.unwrap(blob, CTX + b"x")


@pytest.mark.parametrize("where", [0, -1, "middle"])
def test_a_changed_byte_fails(case: Case, where: int | str) -> None:
    with case.provider() as provider:
        blob = bytearray(provider.wrap(KEY, CTX))
        i = len(blob) // 2 if where == "middle" else int(where)
        blob[i] ^= 0x01
        with pytest.raises(REFUSED):
            provider.unwrap(bytes(blob), CTX)


def test_garbage_and_empty_blobs_fail_cleanly(case: Case) -> None:
    with case.provider() as provider:
        for blob in (b"", b"\x00", os.urandom(7), os.urandom(300)):
            with pytest.raises(SealboxError):
                provider.unwrap(blob, CTX)


def test_another_providers_blob_fails(case: Case) -> None:
    if case.other is None:
        pytest.skip(f"{case.kind}: no second key to test with")
    with case.provider() as provider, case.other() as other:
        blob = other.wrap(KEY, CTX)
        with pytest.raises(SealboxError):
            provider.unwrap(blob, CTX)


def test_an_unreachable_provider_fails_within_its_timeout(case: Case) -> None:
    if case.unreachable is None:
        pytest.skip(f"{case.kind}: nothing to reach")
    started = time.monotonic()
    with pytest.raises(KeyProviderError) as err, case.unreachable() as provider:
        provider.check()
        provider.wrap(KEY, CTX)
    assert time.monotonic() - started < 30
    assert err.value.message


def test_repr_and_errors_hold_no_key_material(case: Case) -> None:
    with case.provider() as provider:
        blob = provider.wrap(KEY, CTX)
        assert KEY.hex() not in repr(provider) and str(KEY) not in repr(provider)
        try:
            provider.unwrap(blob[:-1], CTX)
        except SealboxError as exc:
            assert KEY.hex() not in str(exc) and blob.hex() not in str(exc)
