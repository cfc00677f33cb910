"""The shamir family: SLIP-39 shares, the sealed box, and every share fault named."""

from __future__ import annotations

import os

import pytest

from sealbox.errors import IntegrityError, InvalidInput, KeyProviderError, Sealed
from sealbox.kms import shamir
from sealbox.kms.shamir import ShamirConfig, ShamirKind, ShamirProvider

CTX = b"sealbox/kek\x00vault\x00kek1"


def _made(t: int = 3, n: int = 5) -> tuple[ShamirConfig, tuple[str, ...], ShamirProvider]:
    new = ShamirKind().create("shamir", {"shares": str(n), "threshold": str(t)}, None)  # type: ignore[arg-type]
    assert isinstance(new.provider, ShamirProvider)
    return ShamirConfig.of(new.config), new.shares, new.provider


def _parsed(config: ShamirConfig, shares: list[str]) -> list[shamir.ParsedShare]:
    out: list[shamir.ParsedShare] = []
    for i, s in enumerate(shares, 1):
        p = shamir.parse_share(s, i, config)
        shamir.check_new(p, i, out)
        out.append(p)
    return out


def test_create_stores_only_the_public_key_and_shows_the_shares_once() -> None:
    new = ShamirKind().create("shamir", {"shares": "5", "threshold": "3"}, None)  # type: ignore[arg-type]
    assert set(new.config) == {"public_key", "threshold", "shares", "identifier"}
    assert len(new.shares) == 5 and all(len(s.split()) == 33 for s in new.shares)
    assert ShamirKind().interactive(new.config)
    text = repr(new.provider) + str(new.config)
    assert not any(s.split()[5] in text.split() for s in new.shares)


def test_wrap_needs_only_the_public_key_and_unwrap_needs_the_shares() -> None:
    config, shares, full = _made()
    kek = os.urandom(32)
    sealed = ShamirKind().open("shamir", config.to_dict(), None)  # type: ignore[arg-type]
    blob = sealed.wrap(kek, CTX)  # wrap-only provider: kms rotate/add need no shares
    with pytest.raises(Sealed, match="unseal it with 3 of its 5 shares") as info:
        sealed.unwrap(blob, CTX)
    assert info.value.hint_key == "unseal"
    secret = shamir.combine(_parsed(config, [shares[4], shares[0], shares[2]]), config)
    opened = ShamirKind().from_unlock_key("shamir", config.to_dict(), secret)
    assert opened.unwrap(blob, CTX) == kek
    assert full.unwrap(blob, CTX) == kek
    with pytest.raises(IntegrityError):
        opened.unwrap(blob, CTX + b"x")
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(IntegrityError):
        opened.unwrap(tampered, CTX)


def test_a_mistyped_word_names_the_share_and_the_word_not_the_word_itself() -> None:
    config, shares, _ = _made()
    words = shares[1].split()
    words[6] = "notaword"
    with pytest.raises(InvalidInput, match="the 2nd share: word 7 is not in") as info:
        _parsed(config, [shares[0], " ".join(words)])
    assert "notaword" not in info.value.message


def test_a_wrong_but_valid_word_fails_the_checksum_naming_the_share() -> None:
    config, shares, _ = _made()
    words = shares[0].split()
    words[10] = "academic" if words[10] != "academic" else "acid"
    with pytest.raises(InvalidInput, match="the 1st share fails its checksum"):
        _parsed(config, [" ".join(words)])


def test_a_duplicated_share_is_refused_naming_both() -> None:
    config, shares, _ = _made()
    with pytest.raises(InvalidInput, match="the 3rd share is the same as the 1st"):
        _parsed(config, [shares[0], shares[1], shares[0].upper()])


def test_a_share_from_another_vault_is_refused() -> None:
    config, _, _ = _made()
    _, other_shares, _ = _made()
    with pytest.raises(InvalidInput, match="the 1st share belongs to another vault"):
        _parsed(config, [other_shares[0]])


def test_shares_of_another_split_with_the_same_identifier_combine_to_no_secret() -> None:
    config, shares, _ = _made()
    # Forge the case where the identifier matches but the key differs.
    other = ShamirConfig(os.urandom(32), config.threshold, config.shares, config.identifier)
    with pytest.raises(InvalidInput, match="not this vault's") as info:
        shamir.combine(_parsed(other, list(shares[:3])), other)
    assert "secret" not in info.value.message.lower() or "key" in info.value.message


def test_from_unlock_key_refuses_a_key_that_is_not_the_vaults() -> None:
    config, _, _ = _made()
    with pytest.raises(KeyProviderError, match="does not open"):
        ShamirKind().from_unlock_key("shamir", config.to_dict(), os.urandom(32))


@pytest.mark.parametrize(
    ("t", "n", "match"),
    [(0, 3, "threshold"), (4, 3, "threshold"), (2, 17, "between 1 and 16"), (1, 3, "whole key")],
)
def test_counts_are_checked(t: int, n: int, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        ShamirKind().create("s", {"shares": str(n), "threshold": str(t)}, None)  # type: ignore[arg-type]


def test_one_of_one_is_allowed_and_unknown_options_refused() -> None:
    config, shares, _ = _made(1, 1)
    assert len(shares) == 1
    shamir.combine(_parsed(config, [shares[0]]), config)
    with pytest.raises(InvalidInput, match="unknown option"):
        ShamirKind().create("s", {"bogus": "1"}, None)  # type: ignore[arg-type]


def test_ordinals() -> None:
    assert [shamir.ordinal(i) for i in (1, 2, 3, 4, 11, 12, 13, 21, 22)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd",
    ]  # fmt: skip


def test_no_share_or_key_in_a_repr() -> None:
    config, shares, provider = _made(2, 3)
    parsed = _parsed(config, list(shares[:2]))
    text = repr(parsed) + repr(provider) + repr(config)
    words = {w for s in shares for w in s.split()}
    assert not words & set(text.replace("(", " ").replace(")", " ").replace(",", " ").split())
