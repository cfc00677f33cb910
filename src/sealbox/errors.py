"""One exception hierarchy for sealbox.

Every error the core raises is a :class:`SealboxError`. Each class carries a stable
``code`` string; the adapters map codes to exit statuses (CLI) and HTTP statuses (server),
one table each. Messages never contain secret material: they name secrets by their
``project/env/NAME`` path, never by value. Messages and hints do not name CLI commands or
flags (HTTP and SDK callers read them too); the CLI words its own hint from ``hint_key``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping


class SealboxError(Exception):
    """Root of every error sealbox raises on purpose."""

    code = "error"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        hint_key: str | None = None,
        hint_args: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        #: What to do next, in terms every caller (CLI, HTTP, SDK) understands.
        self.hint = hint
        #: Names the situation for a front end that words its own hint (the CLI names its
        #: commands and flags: ``sealbox.cli.hints``); ``hint_args`` fill that wording in.
        self.hint_key = hint_key
        self.hint_args: Mapping[str, str] = dict(hint_args or {})

    def diagnostics(self, wording: Mapping[str, str] | None = None) -> str:
        """The message plus what the user can do next, for display.

        ``wording`` maps a ``hint_key`` to a front end's own hint (a ``str.format`` template
        over ``hint_args``); without an entry the neutral ``hint`` is shown.
        """
        hint = self.hint
        template = (wording or {}).get(self.hint_key or "")
        if template is not None:
            # A template that does not fit its arguments leaves the neutral hint.
            with contextlib.suppress(KeyError, IndexError, ValueError):
                hint = template.format_map(self.hint_args)
        if hint:
            return f"{self.message}\nhint: {hint}"
        return self.message


class InvalidInput(SealboxError):
    """The caller sent something malformed: a bad name, a bad file, a bad option."""

    code = "invalid_input"


class NotFound(SealboxError):
    """A project, environment, secret or version does not exist (or is deleted)."""

    code = "not_found"


class AlreadyExists(SealboxError):
    """Creating something that is already there."""

    code = "already_exists"


class Conflict(SealboxError):
    """A compare-and-set failed: the secret changed since the version the caller named."""

    code = "conflict"


class AccessDenied(SealboxError):
    """The identity may not do this. Never says whether the target exists."""

    code = "access_denied"


class AuthenticationFailed(SealboxError):
    """Wrong passphrase, wrong key file, unknown or expired token or session."""

    code = "authentication_failed"


class Sealed(SealboxError):
    """The vault is locked: no master key is available to this process."""

    code = "sealed"


class IntegrityError(SealboxError):
    """Stored ciphertext or metadata failed authentication (tampered, moved or corrupt)."""

    code = "integrity_error"


class KeyProviderError(SealboxError):
    """A key provider could not wrap or unwrap a key (missing key, unreachable KMS)."""

    code = "key_provider_error"


class BackendUnavailable(SealboxError):
    """Storage cannot be reached or written (missing file, read-only, database down)."""

    code = "backend_unavailable"


class StorageBusy(BackendUnavailable):
    """Another writer holds the lock a non-waiting write needed; nothing was changed."""

    code = "storage_busy"


class AuditUnavailable(BackendUnavailable):
    """No audit sink accepted an event, so the operation was refused (fail closed)."""

    code = "audit_unavailable"


class UpstreamError(SealboxError):
    """The system a secret belongs to (a database, a webhook receiver, a third-party API)
    could not be reached, or refused what a rotation or a lease asked of it."""

    code = "upstream_error"


class RotationFailed(SealboxError):
    """A rotation step failed (its test found the new credential not working, a rotator
    raised): nothing was promoted, and the rotation waits to be resumed or cancelled."""

    code = "rotation_failed"


class WebhookVerificationFailed(SealboxError):
    """A webhook's signature headers did not verify (Standard Webhooks): malformed, signed
    with no secret the receiver holds, or timestamped outside the tolerance (a replay).

    ``reason`` is ``"malformed"``, ``"signature"`` or ``"timestamp"``; a receiver answers
    the sender with a 4xx either way and processes nothing.
    """

    code = "webhook_verification_failed"

    def __init__(
        self,
        message: str,
        *,
        reason: str = "signature",
        hint: str | None = None,
        hint_key: str | None = None,
        hint_args: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, hint=hint, hint_key=hint_key, hint_args=hint_args)
        self.reason = reason


class NotInitialised(SealboxError):
    """No vault exists at the configured location."""

    code = "not_initialised"


class AddressInUse(SealboxError):
    """``sealbox server`` cannot listen: another process holds its address."""

    code = "address_in_use"


ALL_ERRORS: tuple[type[SealboxError], ...] = (
    SealboxError,
    InvalidInput,
    NotFound,
    AlreadyExists,
    Conflict,
    AccessDenied,
    AuthenticationFailed,
    Sealed,
    IntegrityError,
    KeyProviderError,
    BackendUnavailable,
    StorageBusy,
    AuditUnavailable,
    NotInitialised,
    UpstreamError,
    RotationFailed,
    WebhookVerificationFailed,
)
"""The core's errors that can cross HTTP (the SDK raises each again by its code)."""
