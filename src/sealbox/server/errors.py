"""THE one table from error codes to HTTP statuses, and the two error body shapes.

Native routes answer ``{"error": {"code", "message", "request_id"}}``; Vault-compatible
routes answer ``{"errors": ["…"]}`` as Vault does. Messages come from the core, which
never puts a secret value in one; anything unexpected is a 500 that says only its
request id (the detail goes to the log, without values).
"""

from __future__ import annotations

import json

from sealbox import errors
from sealbox.wire.errors import encode_error


class TooManyRequests(errors.SealboxError):
    """A rate limit refused the request (login attempts)."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PayloadTooLarge(errors.SealboxError):
    """The request body is larger than the server accepts."""

    code = "payload_too_large"


class MethodNotAllowed(errors.SealboxError):
    code = "method_not_allowed"


class UnsupportedMediaType(errors.SealboxError):
    """The body is not in the media type the route takes (KV v2 PATCH: a merge patch)."""

    code = "unsupported_media_type"


#: The code of an unexpected failure: a detail-free 500.
UNEXPECTED = "internal_error"

#: Codes of errors that never cross HTTP, and why.
NEVER_SENT: dict[str, str] = {
    errors.AddressInUse.code: "`sealbox server` cannot listen: there is no request to answer",
}

#: error code -> HTTP status. Anything not here is a 500 (``tests/unit/test_error_tables.py``
#: checks every error class is here or in :data:`NEVER_SENT`).
HTTP_STATUS: dict[str, int] = {
    errors.InvalidInput.code: 400,
    errors.AuthenticationFailed.code: 401,
    errors.WebhookVerificationFailed.code: 401,
    errors.AccessDenied.code: 403,
    errors.NotFound.code: 404,
    MethodNotAllowed.code: 405,
    errors.AlreadyExists.code: 409,
    errors.Conflict.code: 409,
    PayloadTooLarge.code: 413,
    UnsupportedMediaType.code: 415,
    TooManyRequests.code: 429,
    errors.SealboxError.code: 500,
    errors.IntegrityError.code: 500,
    errors.UpstreamError.code: 502,
    errors.RotationFailed.code: 502,
    UNEXPECTED: 500,
    errors.Sealed.code: 503,
    errors.BackendUnavailable.code: 503,
    errors.StorageBusy.code: 503,
    errors.AuditUnavailable.code: 503,
    errors.NotInitialised.code: 503,
    errors.KeyProviderError.code: 503,
}

#: codes whose answer carries ``Retry-After`` (seconds): the condition is expected to pass.
RETRY_AFTER: dict[str, int] = {
    errors.BackendUnavailable.code: 1,
    errors.StorageBusy.code: 1,
    errors.AuditUnavailable.code: 1,
    errors.KeyProviderError.code: 1,
}


def status_for(exc: errors.SealboxError) -> int:
    return HTTP_STATUS.get(exc.code, 500)


def public_message(exc: errors.SealboxError) -> str:
    """What the client is told. Storage and key-provider details stay in the log."""
    if isinstance(exc, errors.IntegrityError):
        # The core's message names the path and version, never a value.
        return exc.message
    if isinstance(exc, errors.BackendUnavailable):
        return "storage is unavailable; retry shortly"
    if isinstance(exc, errors.KeyProviderError):
        return "the key provider is unavailable; retry shortly"
    return exc.message


def headers_for(exc: errors.SealboxError) -> dict[str, str]:
    if isinstance(exc, TooManyRequests):
        return {"retry-after": str(exc.retry_after)}
    if exc.code in RETRY_AFTER:
        return {"retry-after": str(RETRY_AFTER[exc.code])}
    return {}


#: What Vault answers for a missing, malformed, expired or revoked token.
PERMISSION_DENIED = "permission denied"


def compat_error(exc: errors.SealboxError) -> tuple[int, str]:
    """(status, message) of an error on a Vault-compatible path: a token that does not
    authenticate is Vault's 403 ``permission denied`` (hvac's ``is_authenticated()``
    returns False on it), everything else keeps its status and message. Login failures
    are on native paths (``/v1/auth/<method>/login``) and keep their 401."""
    if isinstance(exc, errors.AuthenticationFailed):
        return 403, PERMISSION_DENIED
    return status_for(exc), public_message(exc)


def native_body(code: str, message: str, request_id: str) -> bytes:
    return json.dumps(encode_error(code, message, request_id)).encode()


def compat_body(message: str) -> bytes:
    return json.dumps({"errors": [message] if message else []}).encode()
