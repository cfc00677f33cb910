"""The ``random`` rotator: a new token or password, for a secret with no upstream system
to tell (the default), or whose consumers only need to agree with each other.

Options: ``length`` (characters after the prefix, 16 to 4096, default 32), ``alphabet``
(``alnum`` — the default —, ``hex``, ``base64url``, ``symbols``: letters, digits and
punctuation that needs no quoting in a shell, URL or connection string) and ``prefix``
(``sk_live_``, say: scanners and people recognise the token's kind).
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Mapping

from sealbox.errors import InvalidInput, RotationFailed
from sealbox.model import SecretValue
from sealbox.rotation.interface import RotationContext

ALPHABETS = {
    "alnum": string.ascii_letters + string.digits,
    "hex": "0123456789abcdef",
    "base64url": string.ascii_letters + string.digits + "-_",
    # NOTE: no quote, backslash, $, %, @, :, / or #: a value that needs no escaping in a
    # shell, a .env file, a URL's userinfo or a libpq connection string.
    "symbols": string.ascii_letters + string.digits + "-_.~+=^!*",
}
DEFAULT_LENGTH = 32
MIN_LENGTH = 16
MAX_LENGTH = 4096
MAX_PREFIX = 64


class RandomRotator:
    """A random value by a length, alphabet and prefix policy; no upstream system."""

    name = "random"

    def check(self, options: Mapping[str, str]) -> None:
        self._policy(options)

    @staticmethod
    def _policy(options: Mapping[str, str]) -> tuple[int, str, str]:
        unknown = sorted(set(options) - {"length", "alphabet", "prefix"})
        if unknown:
            raise InvalidInput(
                f"the random rotator has no option {', '.join(unknown)}"
                " (it takes length, alphabet, prefix)"
            )
        try:
            length = int(options.get("length", DEFAULT_LENGTH))
        except ValueError:
            raise InvalidInput("option length must be a whole number") from None
        if not MIN_LENGTH <= length <= MAX_LENGTH:
            raise InvalidInput(f"option length must be {MIN_LENGTH} to {MAX_LENGTH}")
        alphabet = options.get("alphabet", "alnum")
        if alphabet not in ALPHABETS:
            raise InvalidInput(f"option alphabet must be one of {', '.join(ALPHABETS)}")
        prefix = options.get("prefix", "")
        if len(prefix) > MAX_PREFIX or not all(c in ALPHABETS["symbols"] for c in prefix):
            raise InvalidInput(
                f"option prefix must be at most {MAX_PREFIX} letters, digits or -_.~+=^!*"
            )
        return length, ALPHABETS[alphabet], prefix

    def create(self, ctx: RotationContext) -> SecretValue:
        return random_value(ctx.options)

    def set(self, ctx: RotationContext) -> None:
        """Nothing upstream to tell."""

    def test(self, ctx: RotationContext) -> None:
        """The pending value keeps the policy (a value stored by hand in between would not)."""
        length, alphabet, prefix = self._policy(ctx.options)
        value = ctx.pending.reveal()
        body = value[len(prefix) :]
        if not value.startswith(prefix) or len(body) != length or set(body) - set(alphabet):
            raise RotationFailed(
                f"the pending value of {ctx.ref} does not match its policy"
                f" ({length} characters of {ctx.options.get('alphabet', 'alnum')}"
                f"{', prefix ' + prefix if prefix else ''})"
            )

    def finish(self, ctx: RotationContext) -> None:
        """Nothing upstream to retire."""

    def undo(self, ctx: RotationContext) -> None:
        """Nothing upstream to restore."""


def random_value(options: Mapping[str, str]) -> SecretValue:
    """A value by the policy in ``options`` (``length``, ``alphabet``, ``prefix`` only):
    what the random rotator creates, for other rotators that generate their value."""
    length, alphabet, prefix = RandomRotator._policy(options)
    return SecretValue(prefix + "".join(secrets.choice(alphabet) for _ in range(length)))
