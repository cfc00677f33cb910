"""The ``webhook`` rotator: a new webhook signing secret (Standard Webhooks format).

The value is ``whsec_`` followed by the base64 of ``length`` random bytes (24 to 64,
default 32), as the spec and every Standard Webhooks library read it. Options:

- ``length`` — key bytes, 24 to 64 (the spec's bounds);
- ``prefix`` — another prefix than ``whsec_``: letters, digits, ``-`` and ``_``, ending in ``_``
  (sealbox's helpers find the key after the last ``_``; other libraries expect ``whsec_``);
- ``set``, ``test``, ``undo``, ``timeout``, ``input``, ``admin`` — optional programs, as
  for the ``command`` rotator, for a receiver that must be told the new secret (a third
  party's webhook settings API): set gets the pending value, undo the current one, on
  stdin only.

Without programs there is no upstream system to tell, on purpose: when sender and receiver
both read the secret from sealbox, the rollover is theirs to follow. The sender signs with
the current value (after ``finish``, the new one) and the receiver accepts current and
previous during the grace window (:class:`sealbox.client.webhooks.WebhookVerifier` does
that and picks the new secret up by itself), so no request is refused while either side
changes over. Pushing a secret to an arbitrary URL would be a protocol of our own, and each
vendor's settings API differs: that is what the optional programs are for.

``test`` proves the pending value is a well-formed secret of the configured length and
that a webhook signed with it verifies (and not with the current one), then runs the test
program if there is one.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Mapping

from sealbox.errors import InvalidInput, RotationFailed, WebhookVerificationFailed
from sealbox.model import SecretValue
from sealbox.rotation.command import (
    RUN_OPTIONS,
    Programs,
    parse_programs,
    program_input,
    run_program,
)
from sealbox.rotation.interface import RotationContext

DEFAULT_PREFIX = "whsec_"
DEFAULT_LENGTH = 32
MIN_LENGTH = 24
MAX_LENGTH = 64
PROGRAM_STEPS = ("set", "test", "undo")
_PREFIX = re.compile(r"[A-Za-z0-9_-]{0,31}_")


class WebhookRotator:
    """A random Standard Webhooks signing secret; optional programs tell a receiver."""

    name = "webhook"

    def check(self, options: Mapping[str, str]) -> None:
        self._policy(options)

    def runs_programs(self, options: Mapping[str, str]) -> bool:
        """When it tells a receiver through programs (set/test/undo options)."""
        return any(step in options for step in PROGRAM_STEPS)

    @staticmethod
    def _policy(options: Mapping[str, str]) -> tuple[int, str, Programs]:
        known = {"length", "prefix", *RUN_OPTIONS, *PROGRAM_STEPS}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InvalidInput(
                f"the webhook rotator has no option {', '.join(unknown)}"
                f" (it takes {', '.join(sorted(known))})"
            )
        try:
            length = int(options.get("length", DEFAULT_LENGTH))
        except ValueError:
            raise InvalidInput("option length must be a whole number of bytes") from None
        if not MIN_LENGTH <= length <= MAX_LENGTH:
            raise InvalidInput(
                f"option length must be {MIN_LENGTH} to {MAX_LENGTH} bytes (Standard Webhooks)"
            )
        prefix = options.get("prefix", DEFAULT_PREFIX)
        if not _PREFIX.fullmatch(prefix):
            raise InvalidInput(
                "option prefix must be at most 32 letters, digits, - or _, ending in _"
                " (whsec_ by default: other Standard Webhooks libraries expect it)"
            )
        return length, prefix, parse_programs(options, PROGRAM_STEPS, "webhook")

    def create(self, ctx: RotationContext) -> SecretValue:
        length, prefix, _ = self._policy(ctx.options)
        return SecretValue(prefix + base64.b64encode(secrets.token_bytes(length)).decode())

    def set(self, ctx: RotationContext) -> None:
        self._run(ctx, "set", ctx.pending)

    def test(self, ctx: RotationContext) -> None:
        # NOTE: the SDK's helpers are the scheme's one implementation; imported here only,
        # so loading the rotator registry does not load the HTTP client.
        from sealbox.client.webhooks import secret_key, sign_webhook, verify_webhook

        length, prefix, _ = self._policy(ctx.options)
        value = ctx.pending.reveal()
        try:
            if not value.startswith(prefix) or len(secret_key(ctx.pending)) != length:
                raise InvalidInput("off policy")
        except InvalidInput:
            raise RotationFailed(
                f"the pending value of {ctx.ref} is not a webhook secret of its policy"
                f" ({prefix} and the base64 of {length} bytes)"
            ) from None
        probe = b'{"type":"sealbox.rotation.test"}'
        headers = sign_webhook(probe, ctx.pending)
        verify_webhook(
            probe,
            headers.signature,
            headers.timestamp,
            msg_id=headers.id,
            secrets=[ctx.pending],
        )
        if ctx.current is not None:
            try:
                verify_webhook(
                    probe,
                    headers.signature,
                    headers.timestamp,
                    msg_id=headers.id,
                    secrets=[ctx.current],
                )
            except (WebhookVerificationFailed, InvalidInput):
                pass
            else:
                raise RotationFailed(
                    f"the pending value of {ctx.ref} signs like the current one: it was not changed"
                )
        self._run(ctx, "test", ctx.pending)

    def finish(self, ctx: RotationContext) -> None:
        """Nothing to retire: the previous value expires with the grace window."""

    def undo(self, ctx: RotationContext) -> None:
        self._run(ctx, "undo", ctx.current)

    def _run(self, ctx: RotationContext, step: str, value: SecretValue | None) -> None:
        _, _, programs = self._policy(ctx.options)
        if step not in programs.commands:
            if step == "set":
                ctx.note("no receiver to tell (sender and receiver read sealbox)")
            return
        stdin, hide = program_input(ctx, programs, step, value)
        run_program(ctx, programs, step, stdin, hide=hide)
