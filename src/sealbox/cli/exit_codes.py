"""The one table from error classes to exit statuses. Stable: scripts rely on it."""

from __future__ import annotations

from sealbox import errors

EXIT_STATUS: dict[type[errors.SealboxError], int] = {
    errors.SealboxError: 1,
    errors.InvalidInput: 2,
    errors.NotFound: 3,
    errors.AccessDenied: 4,
    errors.AuthenticationFailed: 4,
    errors.AlreadyExists: 5,
    errors.Conflict: 5,
    errors.Sealed: 6,
    errors.IntegrityError: 7,
    errors.BackendUnavailable: 8,
    errors.NotInitialised: 8,
    errors.KeyProviderError: 9,
    errors.AddressInUse: 10,
}


def exit_status(exc: errors.SealboxError) -> int:
    """The most specific class's status."""
    for cls in type(exc).__mro__:
        if cls in EXIT_STATUS:
            return EXIT_STATUS[cls]
    return 1
