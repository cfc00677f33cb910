"""THE one table from a server's error ``code`` back to the :class:`SealboxError` class.

The server maps each error class to an HTTP status by its stable ``code`` and sends
``{"error": {"code", "message", "request_id"}}``; the client raises the same class again,
so a caller (and the CLI's exit status) cannot tell a remote error from an embedded one.
A reply of the wrong shape is a :class:`BadReply` (:func:`reading`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sealbox import errors
from sealbox.wire.fields import WireError


class RateLimited(errors.SealboxError):
    """The server refused the request for now (too many login attempts)."""

    code = "rate_limited"


class BadReply(errors.BackendUnavailable):
    """The server's answer is not what the sealbox API sends (a proxy page, garbage, a bug).

    A kind of :class:`~sealbox.errors.BackendUnavailable`: the service is not usable, and the
    offline cache may stand in for it.
    """


#: error code (as the server sends it) -> the class raised here.
ERROR_CLASSES: dict[str, type[errors.SealboxError]] = {
    errors.SealboxError.code: errors.SealboxError,
    errors.InvalidInput.code: errors.InvalidInput,
    errors.NotFound.code: errors.NotFound,
    errors.AlreadyExists.code: errors.AlreadyExists,
    errors.Conflict.code: errors.Conflict,
    errors.AccessDenied.code: errors.AccessDenied,
    errors.AuthenticationFailed.code: errors.AuthenticationFailed,
    errors.Sealed.code: errors.Sealed,
    errors.IntegrityError.code: errors.IntegrityError,
    errors.KeyProviderError.code: errors.KeyProviderError,
    errors.BackendUnavailable.code: errors.BackendUnavailable,
    errors.StorageBusy.code: errors.StorageBusy,
    errors.AuditUnavailable.code: errors.AuditUnavailable,
    errors.NotInitialised.code: errors.NotInitialised,
    errors.UpstreamError.code: errors.UpstreamError,
    errors.RotationFailed.code: errors.RotationFailed,
    errors.WebhookVerificationFailed.code: errors.WebhookVerificationFailed,
    # Codes only the HTTP layer produces.
    RateLimited.code: RateLimited,
    "payload_too_large": errors.InvalidInput,
    "method_not_allowed": errors.InvalidInput,
    "unsupported_media_type": errors.InvalidInput,
    "internal_error": errors.SealboxError,
}

#: When a reply has no sealbox error body (a proxy, a load balancer): by HTTP status.
STATUS_CLASSES: dict[int, type[errors.SealboxError]] = {
    400: errors.InvalidInput,
    401: errors.AuthenticationFailed,
    403: errors.AccessDenied,
    404: errors.NotFound,
    409: errors.Conflict,
    413: errors.InvalidInput,
    429: RateLimited,
    502: errors.BackendUnavailable,
    503: errors.BackendUnavailable,
    504: errors.BackendUnavailable,
}

#: class -> (a hint any caller understands, the ``hint_key`` the CLI words its own hint by).
HINTS: dict[type[errors.SealboxError], tuple[str, str]] = {
    errors.AuthenticationFailed: ("log in to the server again, or set SEALBOX_TOKEN", "login"),
}


def _hinted(cls: type[errors.SealboxError], message: str) -> errors.SealboxError:
    hint, key = HINTS.get(cls, (None, None))
    return cls(message, hint=hint, hint_key=key)


def error_for(code: str, message: str, *, status: int, where: str) -> errors.SealboxError:
    """The exception for a server error body (unknown codes keep their message)."""
    cls = ERROR_CLASSES.get(code)
    if cls is None:
        cls = STATUS_CLASSES.get(status, errors.SealboxError)
    if issubclass(cls, errors.BackendUnavailable):
        message = f"the sealbox server at {where} is unavailable: {message}"
    return _hinted(cls, message)


def error_for_status(status: int, where: str) -> errors.SealboxError:
    """The exception for an error status without a sealbox body."""
    cls = STATUS_CLASSES.get(status)
    if cls is None:
        return BadReply(f"unexpected HTTP {status} from {where} (is it a sealbox server?)")
    if status == 404:
        return errors.NotFound(
            f"{where} has no such API route (HTTP 404 without a sealbox error body)",
            hint="check SEALBOX_ADDR points at a sealbox server of a compatible version",
        )
    if issubclass(cls, errors.BackendUnavailable):
        return cls(f"the sealbox server at {where} is unavailable (HTTP {status})")
    return _hinted(cls, f"HTTP {status} from {where}")


@contextmanager
def reading(where: str, what: str) -> Iterator[None]:
    """Turns a malformed reply (a codec's :class:`WireError`, or a KeyError/TypeError/
    ValueError while reading one) into one clear :class:`BadReply` naming the server."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # NOTE: a WireError's message names the field, never a value; others say their kind.
        detail = str(exc) if isinstance(exc, WireError) else type(exc).__name__
        raise BadReply(
            f"malformed reply from the sealbox server at {where} ({what}): {detail}"
        ) from None
