"""The audit spool's GMAC: a tag checks only for its own data, counter and key."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sealbox.crypto import macs


def test_counter_gmac_tags_check_and_never_reuse_a_nonce() -> None:
    key = os.urandom(32)
    gmac = macs.CounterGmac(key)
    (c1, t1), (c2, t2) = gmac.tag(b"event one"), gmac.tag(b"event one")
    assert (c1, c2) == (1, 2) and t1 != t2  # same data, new nonce, new tag
    assert len(t1) == 16
    # It is GMAC: AES-GCM's tag over associated data alone, the counter as nonce.
    assert t1 == AESGCM(key).encrypt((1).to_bytes(12, "big"), b"", b"event one")
    checker = macs.CounterGmac(key)
    assert checker.check(c1, b"event one", t1)
    assert not checker.check(c1, b"event 0ne", t1)  # other data
    assert not checker.check(c2, b"event one", t1)  # other counter
    assert not macs.CounterGmac(os.urandom(32)).check(c1, b"event one", t1)  # other key
    assert not checker.check(c1, b"event one", t1[:8])  # a cut tag
    assert "***" in repr(gmac) and key.hex() not in repr(gmac)


def test_counter_gmac_refuses_to_wrap() -> None:
    gmac = macs.CounterGmac(os.urandom(32))
    gmac.count = (1 << 64) - 2
    gmac.tag(b"last")
    with pytest.raises(OverflowError):
        gmac.tag(b"one too many")
