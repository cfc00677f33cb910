"""THE one table from error codes to exit statuses. Stable: scripts rely on it.

Keyed by the stable ``code`` every :class:`~sealbox.errors.SealboxError` carries, like the
server's HTTP table, so a remote error (which the SDK raises again by its code) exits as the
embedded one does. ``tests/unit/test_error_tables.py`` checks every error class is here or
in :data:`NEVER_IN_CLI`.
"""

from __future__ import annotations

from sealbox import errors

EXIT_STATUS: dict[str, int] = {
    errors.SealboxError.code: 1,
    # The SDK's RateLimited (a server's 429, too many login attempts).
    "rate_limited": 1,
    errors.InvalidInput.code: 2,
    errors.NotFound.code: 3,
    errors.AccessDenied.code: 4,
    errors.AuthenticationFailed.code: 4,
    errors.WebhookVerificationFailed.code: 4,
    errors.AlreadyExists.code: 5,
    errors.Conflict.code: 5,
    errors.Sealed.code: 6,
    errors.IntegrityError.code: 7,
    errors.BackendUnavailable.code: 8,
    errors.StorageBusy.code: 8,
    errors.AuditUnavailable.code: 8,
    errors.NotInitialised.code: 8,
    errors.KeyProviderError.code: 9,
    errors.AddressInUse.code: 10,
    errors.UpstreamError.code: 11,
    errors.RotationFailed.code: 12,
}

#: Codes only the HTTP server raises: the SDK turns each into one of the classes above
#: (``sealbox.client.errors.ERROR_CLASSES``), so the CLI never holds an error with them.
NEVER_IN_CLI: dict[str, str] = {
    "payload_too_large": "the SDK raises InvalidInput",
    "method_not_allowed": "the SDK raises InvalidInput",
    "unsupported_media_type": "the SDK raises InvalidInput",
    "internal_error": "the SDK raises SealboxError",
}


def exit_status(exc: errors.SealboxError) -> int:
    """The status of the most specific class whose code is in the table."""
    for cls in type(exc).__mro__:
        code = getattr(cls, "code", None)
        if code in EXIT_STATUS:
            return EXIT_STATUS[code]
    return 1
