"""The ``shamir`` provider family: a key pair whose private half exists only once enough
unseal shares were combined (Vault's ``operator init`` / ``operator unseal``).

``create`` makes a random 32-byte master secret, splits it with SLIP-39
(:mod:`shamir_mnemonic`: one group, ``threshold`` of ``shares`` word lists, each with an
RS1024 checksum) and derives an X25519 key pair from it (HKDF-SHA256). The stored config
holds the PUBLIC key, the threshold, the share count and the SLIP-39 identifier only::

    {"public_key": hex, "threshold": t, "shares": n, "identifier": int}

Wrapping needs only the public key (a sealed box: an ephemeral X25519 key, HKDF, and
AES-256-GCM with the context as associated data), so ``kms rotate`` and ``kms add`` never
need the shares. Unwrapping needs the private key: :meth:`ShamirKind.open` returns a
wrap-only provider whose ``unwrap`` raises :class:`~sealbox.errors.Sealed`; the unseal
process (:mod:`sealbox.unseal`) combines the shares (:func:`combine`) and builds the
full provider (:meth:`ShamirKind.from_unlock_key`).

Shares and the master secret never reach a log, an error message, a ``repr`` or the
audit trail; errors name a share by its position (1st, 2nd …) and a word by its number.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sealbox.errors import IntegrityError, InvalidInput, KeyProviderError, Sealed
from sealbox.kms.interface import KeyProvider, NewProvider
from sealbox.kms.registry import ProviderContext

KIND = "shamir"
MAX_SHARES = 16
SECRET_BYTES = 32
_MAGIC = b"sbs1"
_KEY_SALT = b"sealbox/shamir/v1"
_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th … 11th, 12th, 13th, 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _private_key(master_secret: bytes) -> X25519PrivateKey:
    raw = HKDF(hashes.SHA256(), 32, _KEY_SALT, b"x25519 unseal key").derive(master_secret)
    return X25519PrivateKey.from_private_bytes(raw)


def _public_bytes(key: X25519PublicKey) -> bytes:
    return key.public_bytes(*_RAW)


def _box_key(shared: bytes, eph_pub: bytes, pub: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, eph_pub + pub, b"sealbox/shamir wrap").derive(shared)


class ShamirConfig(NamedTuple):
    public_key: bytes
    threshold: int
    shares: int
    identifier: int

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> ShamirConfig:
        try:
            public = bytes.fromhex(str(config["public_key"]))
            threshold, shares = int(config["threshold"]), int(config["shares"])
            identifier = int(config["identifier"])
        except (KeyError, TypeError, ValueError):
            public, threshold, shares, identifier = b"", 0, 0, 0
        if len(public) != 32 or not 1 <= threshold <= shares <= MAX_SHARES:
            raise KeyProviderError("the vault's shamir key provider has an unreadable config")
        return cls(public, threshold, shares, identifier)

    def to_dict(self) -> dict[str, Any]:
        return {
            "public_key": self.public_key.hex(),
            "threshold": self.threshold,
            "shares": self.shares,
            "identifier": self.identifier,
        }


class ShamirProvider:
    """The shamir provider: wraps with the public key; unwraps once unsealed (the private
    key from combined shares), else raises Sealed. Implements
    :class:`~sealbox.kms.interface.KeyProvider`."""

    kind = KIND

    def __init__(
        self, name: str, config: ShamirConfig, private: X25519PrivateKey | None = None
    ) -> None:
        self._name, self.config, self._private = name, config, private
        self._public = X25519PublicKey.from_public_bytes(config.public_key)

    @property
    def name(self) -> str:
        return self._name

    @property
    def unsealed(self) -> bool:
        return self._private is not None

    def key_id(self) -> str:
        c = self.config
        return f"shamir {c.threshold} of {c.shares} (id {c.identifier})"

    def wrap(self, key: bytes, context: bytes) -> bytes:
        eph = X25519PrivateKey.generate()
        eph_pub = _public_bytes(eph.public_key())
        box = AESGCM(_box_key(eph.exchange(self._public), eph_pub, self.config.public_key))
        nonce = os.urandom(12)
        return _MAGIC + eph_pub + nonce + box.encrypt(nonce, key, context)

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        if self._private is None:
            c = self.config
            raise Sealed(
                f"the vault is sealed: unseal it with {c.threshold} of its {c.shares} shares",
                hint_key="unseal",
            )
        if len(blob) < 4 + 32 + 12 + 16 or not blob.startswith(_MAGIC):
            raise IntegrityError("integrity check failed: not a shamir key wrapping")
        eph_pub, nonce, sealed = blob[4:36], blob[36:48], blob[48:]
        try:
            shared = self._private.exchange(X25519PublicKey.from_public_bytes(eph_pub))
            box = AESGCM(_box_key(shared, eph_pub, self.config.public_key))
            return box.decrypt(nonce, sealed, context)
        except (InvalidTag, ValueError):
            raise IntegrityError(
                "integrity check failed: the key wrapping was altered, or belongs to another"
                " key or context"
            ) from None

    def check(self) -> None:
        """Nothing to reach: the public key is in the config."""

    def close(self) -> None:
        self._private = None

    def __repr__(self) -> str:
        state = "unsealed" if self._private is not None else "sealed"
        return f"ShamirProvider(name={self._name!r}, {self.key_id()}, {state})"


# -- shares ---------------------------------------------------------------------------------


def split(master_secret: bytes, threshold: int, shares: int) -> tuple[int, list[str]]:
    """SLIP-39 shares of ``master_secret`` (one group, ``threshold`` of ``shares``) and
    their identifier."""
    import shamir_mnemonic

    check_counts(threshold, shares)
    groups = shamir_mnemonic.generate_mnemonics(
        1, [(threshold, shares)], master_secret, b"", extendable=True, iteration_exponent=0
    )
    mnemonics = groups[0]
    identifier = shamir_mnemonic.Share.from_mnemonic(mnemonics[0]).identifier
    return identifier, mnemonics


def check_counts(threshold: int, shares: int) -> None:
    if not 1 <= shares <= MAX_SHARES:
        raise InvalidInput(f"the number of shares is between 1 and {MAX_SHARES}")
    if not 1 <= threshold <= shares:
        raise InvalidInput("the threshold is between 1 and the number of shares")
    if threshold == 1 and shares > 1:
        # Every share would be the master secret itself (SLIP-39 refuses it too): n
        # copies of one key, not a split.
        raise InvalidInput(
            "a threshold of 1 with several shares would make each share the whole key:"
            " use a threshold of 2 or more (or a single share)"
        )


class ParsedShare(NamedTuple):
    member: int  # the share's member index in its split
    identifier: int
    threshold: int
    value: bytes
    words: str  # normalised; kept in memory only while collecting

    def __repr__(self) -> str:
        return f"ParsedShare(member={self.member}, identifier={self.identifier}, words='***')"


def parse_share(text: str, position: int, config: ShamirConfig) -> ParsedShare:
    """One share checked on its own: its words, its checksum, its split (``position`` is
    its place among those given, 1-based, for the messages)."""
    from shamir_mnemonic import MnemonicError, Share
    from shamir_mnemonic.wordlist import WORD_INDEX_MAP

    which = f"the {ordinal(position)} share"
    words = text.lower().split()
    if not words:
        raise InvalidInput(f"{which} is empty")
    for number, word in enumerate(words, 1):
        if word not in WORD_INDEX_MAP:
            raise InvalidInput(
                f"{which}: word {number} is not in the SLIP-39 word list (mistyped?)"
            )
    normal = " ".join(words)
    try:
        share = Share.from_mnemonic(normal)
    except MnemonicError as exc:
        if "checksum" in str(exc):
            raise InvalidInput(
                f"{which} fails its checksum: a word is mistyped, missing or out of order"
            ) from None
        raise InvalidInput(
            f"{which} is not a valid share ({len(words)} words; a share of this vault has 33)"
        ) from None
    if share.identifier != config.identifier or share.group_count != 1:
        raise InvalidInput(f"{which} belongs to another vault (its identifier differs)")
    if share.member_threshold != config.threshold:
        raise InvalidInput(
            f"{which} is from a split with another threshold: not one of this vault's shares"
        )
    return ParsedShare(share.index, share.identifier, share.member_threshold, share.value, normal)


def check_new(share: ParsedShare, position: int, earlier: Sequence[ParsedShare]) -> None:
    """Refuse a share given twice (or two shares claiming one place in the split)."""
    for place, other in enumerate(earlier, 1):
        if other.member == share.member:
            if hmac.compare_digest(other.value, share.value):
                raise InvalidInput(
                    f"the {ordinal(position)} share is the same as the {ordinal(place)}:"
                    " each share counts once"
                )
            raise InvalidInput(
                f"the {ordinal(position)} and {ordinal(place)} shares claim the same place in"
                " the split: one of them is not this vault's"
            )


def combine(shares: Sequence[ParsedShare], config: ShamirConfig) -> bytes:
    """The master secret from ``threshold`` checked shares; InvalidInput if they do not
    make this vault's key (nothing about the secret is said)."""
    from shamir_mnemonic import MnemonicError, combine_mnemonics

    try:
        secret: bytes = combine_mnemonics([s.words for s in shares], b"")
    except MnemonicError:
        raise InvalidInput(
            "the shares do not combine into this vault's key: one of them is wrong"
        ) from None
    if not matches(secret, config):
        raise InvalidInput("the shares combine into another key: they are not this vault's")
    return secret


def matches(master_secret: bytes, config: ShamirConfig) -> bool:
    public = _public_bytes(_private_key(master_secret).public_key())
    return hmac.compare_digest(public, config.public_key)


# -- the family -----------------------------------------------------------------------------


class ShamirKind:
    """The ``shamir`` family. Implements :class:`~sealbox.kms.interface.ProviderKind`."""

    kind = KIND

    def interactive(self, config: Mapping[str, Any]) -> bool:
        return True

    def create(self, name: str, options: Mapping[str, str], ctx: ProviderContext) -> NewProvider:
        unknown = set(options) - {"shares", "threshold"}
        if unknown:
            raise InvalidInput(f"unknown option(s) for a shamir key provider: {sorted(unknown)}")
        try:
            n = int(options.get("shares", "5"))
            t = int(options.get("threshold", "3"))
        except ValueError:
            raise InvalidInput("shares and threshold are whole numbers") from None
        check_counts(t, n)
        secret = os.urandom(SECRET_BYTES)
        identifier, mnemonics = split(secret, t, n)
        private = _private_key(secret)
        config = ShamirConfig(_public_bytes(private.public_key()), t, n, identifier)
        provider = ShamirProvider(name, config, private)
        return NewProvider(config.to_dict(), provider, None, tuple(mnemonics))

    def open(self, name: str, config: Mapping[str, Any], ctx: ProviderContext) -> KeyProvider:
        return ShamirProvider(name, ShamirConfig.of(config))

    def from_unlock_key(self, name: str, config: Mapping[str, Any], key: bytes) -> ShamirProvider:
        """The unsealed provider from its master secret (combined shares, or an unlock
        session holding it)."""
        parsed = ShamirConfig.of(config)
        if not matches(key, parsed):
            raise KeyProviderError(f"the key given does not open key provider {name!r}")
        return ShamirProvider(name, parsed, _private_key(key))
