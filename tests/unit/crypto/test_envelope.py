"""Envelope encryption: a known-answer vector and the negative cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sealbox.crypto import aead, envelope
from sealbox.errors import IntegrityError, KeyProviderError
from sealbox.kms.local import KekRing

VECTORS = Path(__file__).with_name("vectors.json")


def provider() -> KekRing:
    return KekRing({"k1": bytes(range(32))}, "k1")


def ctx(version: int = 1, name: str = "DB") -> bytes:
    return envelope.version_context("vault-1", "payments", "prod", name, version)


def test_round_trip() -> None:
    sealed = envelope.seal(b"s3cr3t", provider(), "k1", ctx())
    assert (
        envelope.open_sealed(sealed.ciphertext, sealed.wrapped_key, provider(), ctx()) == b"s3cr3t"
    )
    assert b"s3cr3t" not in sealed.ciphertext + sealed.wrapped_key


def test_every_seal_uses_a_fresh_key_and_nonce() -> None:
    a = envelope.seal(b"same", provider(), "k1", ctx())
    b = envelope.seal(b"same", provider(), "k1", ctx())
    assert a.ciphertext != b.ciphertext
    assert a.wrapped_key != b.wrapped_key


def test_known_answer_vector() -> None:
    """The stored format must stay readable: this blob was sealed by an earlier build."""
    for vec in json.loads(VECTORS.read_text()):
        keys = KekRing({vec["kek_id"]: bytes.fromhex(vec["kek"])}, vec["kek_id"])
        context = envelope.version_context(*vec["context"])
        plain = envelope.open_sealed(
            bytes.fromhex(vec["ciphertext"]), bytes.fromhex(vec["wrapped_key"]), keys, context
        )
        assert plain == bytes.fromhex(vec["plaintext"])


@pytest.mark.parametrize(
    "other",
    [
        ctx(version=2),
        ctx(name="OTHER"),
        envelope.version_context("vault-2", "payments", "prod", "DB", 1),
    ],
)
def test_wrong_context_fails(other: bytes) -> None:
    sealed = envelope.seal(b"s3cr3t", provider(), "k1", ctx())
    with pytest.raises(IntegrityError) as info:
        envelope.open_sealed(sealed.ciphertext, sealed.wrapped_key, provider(), other)
    assert "s3cr3t" not in str(info.value)


def test_tampered_tag_and_body_fail() -> None:
    sealed = envelope.seal(b"s3cr3t", provider(), "k1", ctx())
    for i in (0, 12, len(sealed.ciphertext) - 1):
        bad = bytearray(sealed.ciphertext)
        bad[i] ^= 1
        with pytest.raises(IntegrityError):
            envelope.open_sealed(bytes(bad), sealed.wrapped_key, provider(), ctx())


def test_short_blob_fails() -> None:
    sealed = envelope.seal(b"s3cr3t", provider(), "k1", ctx())
    with pytest.raises(IntegrityError):
        envelope.open_sealed(sealed.ciphertext[:10], sealed.wrapped_key, provider(), ctx())
    with pytest.raises(IntegrityError):
        envelope.open_sealed(sealed.ciphertext, b"garbage", provider(), ctx())


def test_wrong_key_fails() -> None:
    sealed = envelope.seal(b"s3cr3t", provider(), "k1", ctx())
    other = KekRing({"k1": bytes(32)}, "k1")
    with pytest.raises(IntegrityError):
        envelope.open_sealed(sealed.ciphertext, sealed.wrapped_key, other, ctx())


def test_unknown_key_id_is_a_key_provider_error() -> None:
    sealed = envelope.seal(b"s3cr3t", provider(), "k1", ctx())
    other = KekRing({"k2": bytes(range(32))}, "k2")
    with pytest.raises(KeyProviderError):
        envelope.open_sealed(sealed.ciphertext, sealed.wrapped_key, other, ctx())


def test_swapped_wrapped_keys_fail() -> None:
    a = envelope.seal(b"aaa", provider(), "k1", ctx(name="A"))
    b = envelope.seal(b"bbb", provider(), "k1", ctx(name="B"))
    with pytest.raises(IntegrityError):
        envelope.open_sealed(a.ciphertext, b.wrapped_key, provider(), ctx(name="A"))


def test_aead_rejects_bad_key_length() -> None:
    with pytest.raises(ValueError):
        aead.encrypt(b"short", b"x", b"")
