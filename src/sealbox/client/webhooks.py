"""Webhook signatures by the Standard Webhooks scheme (standardwebhooks.com, spec 1.0.0).

A sender calls :func:`sign_webhook` and sends the three headers it returns with the body;
a receiver calls :func:`verify_webhook` (or a :class:`WebhookVerifier`, which fetches the
secrets itself) with the raw body and those headers. Any Standard Webhooks library (Svix's,
the spec's own in Python, JavaScript, Go, Ruby, PHP, Java, Rust, C#…) verifies what
:func:`sign_webhook` makes, and :func:`verify_webhook` verifies what they make.

The scheme, exactly as the spec says:

- the secret is ``whsec_`` followed by the base64 of 24 to 64 random bytes; the HMAC key is
  those bytes (the ``webhook`` rotator makes such secrets);
- headers ``webhook-id`` (a unique message id, the receiver's idempotency key),
  ``webhook-timestamp`` (integer Unix seconds) and ``webhook-signature``;
- the signed content is ``{webhook-id}.{webhook-timestamp}.{body}``, the signature
  ``v1,`` + base64(HMAC-SHA256(key, content)); the signature header is a space-separated
  list, so that a sender may sign with two secrets during a rollover;
- the receiver compares in constant time, accepts any listed ``v1`` signature made with
  any secret it holds (current and, during the grace window, previous), and refuses a
  timestamp more than the tolerance (5 minutes) away from its clock: a replay.

Every failure is a :class:`~sealbox.errors.WebhookVerificationFailed` whose message says
which header is wrong and why, and never holds a secret or a signature.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import inspect
import re
import secrets as _random
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sealbox.errors import InvalidInput, NotFound, WebhookVerificationFailed
from sealbox.model import SecretValue

if TYPE_CHECKING:
    from sealbox.model import SecretRef

#: The prefix Standard Webhooks gives symmetric secrets.
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
#: The spec's recommended replay window, in seconds.
DEFAULT_TOLERANCE = 300
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"

#: A secret: the stored text (``whsec_…``) wrapped or not, or the raw key bytes.
Secret = SecretValue | str | bytes

# NOTE: the spec forbids "." in the id and the timestamp: the signed content joins them with
# dots, so a dot would let one split of id/timestamp/body pass for another.
_ID = re.compile(r"[^\s.]{1,256}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_VERSION = re.compile(r"v[0-9]{1,3}[a-z]{0,3}")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
# NOTE: bounds on what an unauthenticated sender makes the receiver compute.
MAX_SIGNATURE_HEADER = 4096
MAX_SIGNATURES = 16


@dataclass(frozen=True)
class WebhookHeaders:
    """The three headers a signed webhook carries (send :meth:`as_dict` with the body)."""

    id: str
    timestamp: int
    signature: str

    def as_dict(self) -> dict[str, str]:
        return {
            ID_HEADER: self.id,
            TIMESTAMP_HEADER: str(self.timestamp),
            SIGNATURE_HEADER: self.signature,
        }

    def __repr__(self) -> str:
        # A signature is no secret, but it is a valid credential for this body for 5 minutes.
        return f"WebhookHeaders(id={self.id!r}, timestamp={self.timestamp}, signature='…')"


def secret_key(secret: Secret) -> bytes:
    """The HMAC key of a secret: the bytes its base64 body decodes to.

    Text is ``whsec_`` + base64 (as the spec and every Standard Webhooks library read it);
    a sealbox ``webhook`` rotator configured with another prefix ending in ``_`` works too
    (standard base64 has no ``_``, so the prefix is everything up to the last one). Bytes
    are the key itself. InvalidInput, without the value, for anything else.
    """
    if isinstance(secret, bytes):
        key = secret
    else:
        text = secret.reveal() if isinstance(secret, SecretValue) else secret
        body = text.strip()
        body = body.rpartition("_")[2]
        # NOTE: the reference libraries accept unpadded base64; so do we.
        padded = body + "=" * (-len(body) % 4)
        if not body or not _BASE64.fullmatch(padded):
            raise InvalidInput(
                "a webhook secret must be whsec_ followed by base64 (as the webhook rotator"
                " makes them); this one is not"
            )
        try:
            key = base64.b64decode(padded, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput("a webhook secret's base64 body does not decode") from None
    if not key:
        raise InvalidInput("a webhook secret may not be empty")
    return key


def _signature(key: bytes, msg_id: str, timestamp: int, payload: bytes) -> bytes:
    content = f"{msg_id}.{timestamp}.".encode() + payload
    return hmac.new(key, content, hashlib.sha256).digest()


def _body(payload: bytes | str) -> bytes:
    return payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)


def _secrets(secret: Secret | Sequence[Secret]) -> list[Secret]:
    if isinstance(secret, SecretValue | str | bytes):
        return [secret]
    return list(secret)


def sign_webhook(
    payload: bytes | str,
    secret: Secret | Sequence[Secret],
    *,
    msg_id: str | None = None,
    timestamp: int | None = None,
) -> WebhookHeaders:
    """The headers of ``payload`` (the exact body you send) signed with ``secret``.

    ``secret`` may be a list: the signature header then holds one signature per secret
    (a sender that signs with current and previous during a rollover suits receivers on
    either). ``msg_id`` defaults to a new random ``msg_…`` (reuse it when retrying a
    delivery: it is the receiver's idempotency key); ``timestamp`` to now.
    """
    keys = [secret_key(s) for s in _secrets(secret)]
    if not keys:
        raise InvalidInput("sign_webhook needs at least one secret")
    if msg_id is None:
        msg_id = "msg_" + _random.token_urlsafe(18)
    elif not _ID.fullmatch(msg_id):
        raise InvalidInput("a webhook id must be 1 to 256 characters without spaces or dots")
    ts = int(time.time()) if timestamp is None else int(timestamp)
    if not 0 <= ts < 10**12:
        raise InvalidInput("a webhook timestamp is whole Unix seconds")
    body = _body(payload)
    signature = " ".join(
        "v1," + base64.b64encode(_signature(key, msg_id, ts, body)).decode("ascii") for key in keys
    )
    return WebhookHeaders(msg_id, ts, signature)


def _refused(message: str, reason: str) -> WebhookVerificationFailed:
    return WebhookVerificationFailed(
        message,
        reason=reason,
        hint="answer the sender with a 4xx and process nothing",
    )


def _parse_signatures(signature: str) -> list[bytes]:
    """The ``v1`` signatures of a signature header (other versions, ``v1a``, are skipped)."""
    if len(signature) > MAX_SIGNATURE_HEADER:
        raise _refused(
            f"the {SIGNATURE_HEADER} header is longer than {MAX_SIGNATURE_HEADER} characters",
            "malformed",
        )
    entries = signature.split()
    if not entries:
        raise _refused(f"the {SIGNATURE_HEADER} header is empty", "malformed")
    if len(entries) > MAX_SIGNATURES:
        raise _refused(
            f"the {SIGNATURE_HEADER} header lists more than {MAX_SIGNATURES} signatures",
            "malformed",
        )
    found: list[bytes] = []
    for entry in entries:
        version, comma, value = entry.partition(",")
        if not comma or not _VERSION.fullmatch(version) or not value:
            raise _refused(
                f"the {SIGNATURE_HEADER} header has an entry that is not version,signature"
                " (Standard Webhooks: v1,<base64>, space-separated)",
                "malformed",
            )
        if version != "v1":
            continue
        if not _BASE64.fullmatch(value) or len(value) % 4:
            raise _refused(f"a v1 signature in {SIGNATURE_HEADER} is not base64", "malformed")
        found.append(base64.b64decode(value))
    if not found:
        raise _refused(
            f"the {SIGNATURE_HEADER} header has no v1 (HMAC-SHA256) signature", "signature"
        )
    return found


def _parse_timestamp(timestamp: str | int) -> int:
    text = str(timestamp).strip()
    if not _TIMESTAMP.fullmatch(text):
        raise _refused(f"the {TIMESTAMP_HEADER} header is not whole Unix seconds", "malformed")
    return int(text)


def verify_webhook(
    payload: bytes | str,
    signature: str,
    timestamp: str | int,
    *,
    msg_id: str,
    secrets: Iterable[Secret],
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> None:
    """Check a webhook: ``payload`` is the raw body as received (not re-serialised JSON),
    ``signature``, ``timestamp`` and ``msg_id`` its three headers' values.

    Passes if any ``v1`` signature in the header was made with any of ``secrets``
    (``[current, previous]`` during a rollover) over this id, timestamp and body, and the
    timestamp is within ``tolerance`` seconds of ``now`` (default: the clock). Raises
    :class:`~sealbox.errors.WebhookVerificationFailed` otherwise, its ``reason``
    ``"malformed"``, ``"timestamp"`` or ``"signature"``.
    """
    if not isinstance(msg_id, str) or not _ID.fullmatch(msg_id):
        raise _refused(f"the {ID_HEADER} header is missing, or holds spaces or dots", "malformed")
    if not isinstance(signature, str):
        raise _refused(f"the {SIGNATURE_HEADER} header is missing", "malformed")
    ts = _parse_timestamp(timestamp)
    offered = _parse_signatures(signature)
    keys = [secret_key(s) for s in secrets]
    if not keys:
        # NOTE: an empty list is a configuration mistake, never "accept everything".
        raise InvalidInput("verify_webhook needs at least one secret to check against")
    if not tolerance >= 0:
        raise InvalidInput("the webhook timestamp tolerance is a number of seconds, 0 or more")
    clock = time.time() if now is None else now
    if abs(clock - ts) > tolerance:
        when = "old" if ts < clock else "far in the future"
        raise _refused(
            f"the webhook's timestamp is too {when}: {abs(int(clock) - ts)} s from this"
            f" receiver's clock, more than the {tolerance:g} s allowed (a replay, or a"
            " clock out of step)",
            "timestamp",
        )
    body = _body(payload)
    for key in keys:
        expected = _signature(key, msg_id, ts, body)
        for candidate in offered:
            if hmac.compare_digest(expected, candidate):
                return
    raise _refused(
        "no signature of this webhook matches a secret this receiver holds (a forged or"
        " altered request, or a sender on a secret rotated out)",
        "signature",
    )


def verify_webhook_headers(
    payload: bytes | str,
    headers: Mapping[str, str],
    *,
    secrets: Iterable[Secret],
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> str:
    """:func:`verify_webhook` with a request's headers (any case); the verified message id
    (record it to process each webhook once: the spec's idempotency key)."""
    fields = _header_fields(headers)
    verify_webhook(
        payload,
        fields[SIGNATURE_HEADER],
        fields[TIMESTAMP_HEADER],
        msg_id=fields[ID_HEADER],
        secrets=secrets,
        tolerance=tolerance,
        now=now,
    )
    return fields[ID_HEADER]


def _header_fields(headers: Mapping[str, str]) -> dict[str, str]:
    lower = {str(k).lower(): v for k, v in headers.items()}
    missing = [h for h in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER) if not lower.get(h)]
    if missing:
        raise _refused(f"the webhook lacks the header {', '.join(missing)}", "malformed")
    return {h: lower[h] for h in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)}


class WebhookVerifier:
    """A receiver's verifier that fetches the secrets itself and follows a rollover.

    ``secrets`` is called for the secrets to accept (current, then previous while the
    grace window lasts). Their keys are kept ``cache_ttl`` seconds; a webhook whose
    signature matches none of them makes the verifier fetch once more and try again, so a
    sender that moved to the new secret is accepted without restarting the receiver. That
    extra fetch happens at most once every ``refresh_after`` seconds: forged requests must
    not turn into a flood of reads on sealbox. An error of ``secrets`` (sealbox
    unreachable) propagates from :meth:`verify`: answer it with a 5xx, and the sender
    retries later. Thread-safe.
    """

    def __init__(
        self,
        secrets: Callable[[], Sequence[Secret]],
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        cache_ttl: float = 60.0,
        refresh_after: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = secrets
        self.tolerance = tolerance
        self.cache_ttl = cache_ttl
        self.refresh_after = refresh_after
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: list[bytes] | None = None
        self._fetched_at = 0.0
        #: How many times the secrets were fetched (for tests and metrics).
        self.fetches = 0
        #: How many change events of the secret expired the cache (``follow=True``).
        self.changes = 0
        #: The :class:`~sealbox.client.watch.Watch` following the secret (``follow=True``).
        self.watch: Any = None

    @classmethod
    def from_client(
        cls, client: Any, ref: SecretRef, *, follow: bool = False, **options: Any
    ) -> WebhookVerifier:
        """Secrets read from a sealbox :class:`~sealbox.client.Client` (or an embedded
        Vault): the current value, and the previous one while it is readable.

        Both are read by stage, ``client.get(ref, stage="current")`` and
        ``client.get(ref, stage="previous")``, where the client's ``get`` takes a ``stage``
        (a client without reads by stage gives the current value only: pass a ``secrets``
        callable to :class:`WebhookVerifier` then). A previous value that is not readable
        (none, its grace window is over, or revoked) is left out. A read by stage is never
        answered from the client's memory or offline cache: the verifier accepts a secret
        only on the strength of a read of sealbox at most ``cache_ttl`` old, never a copy
        from before a rollover or past a grace window. When sealbox cannot be reached the
        read's error propagates from :meth:`verify` (answer 5xx: the sender retries).

        ``follow=True`` also watches the secret's environment (``client.watch``): a
        change of the secret (a rotation's promotion, a revocation) expires the cached
        secrets at once, so a sender on the new secret is accepted even within
        ``refresh_after`` of the last read, and a revoked one is refused without waiting
        for ``cache_ttl``. Call :meth:`close` to stop watching.
        """
        get: Callable[..., Any] = client.get
        try:
            by_stage = "stage" in inspect.signature(get).parameters
        except (TypeError, ValueError):
            by_stage = False

        invalidate: Callable[..., Any] | None = getattr(client, "invalidate", None)

        def read() -> list[Secret]:
            # NOTE: the verifier keeps its own cache and calls this only when that expires
            # or a signature did not match: the client's read cache must not answer with
            # the value from before the rollover (reads by stage bypass it; a plain read
            # needs the client's copies dropped first).
            if not by_stage:
                if invalidate is not None:
                    invalidate(ref.project, ref.env, ref.name)
                return [get(ref).value]
            found: list[Secret] = [get(ref, stage="current").value]
            with contextlib.suppress(NotFound):
                found.append(get(ref, stage="previous").value)
            return found

        verifier = cls(read, **options)
        if follow:
            watch: Callable[..., Any] | None = getattr(client, "watch", None)
            if watch is None:
                raise InvalidInput("follow=True needs a client with watch() (a sealbox Client)")

            def changed(event: Any) -> None:
                if event.name == ref.name:
                    verifier.expire(changed=True)

            verifier.watch = watch(ref.project, ref.env, changed)
        return verifier

    def expire(self, *, changed: bool = False) -> None:
        """Forget the cached secrets: the next :meth:`verify` reads them again (the secret
        changed). Not rate-limited like a mismatch's refresh: call it on a change event,
        never on something a request controls. ``changed`` counts it in :attr:`changes`."""
        with self._lock:
            self._keys = None
            if changed:
                self.changes += 1

    def close(self) -> None:
        """Stop following the secret's changes (``follow=True``)."""
        if self.watch is not None:
            self.watch.stop()
            self.watch = None

    def __enter__(self) -> WebhookVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _load(self) -> list[bytes]:
        keys = [secret_key(s) for s in self._source()]
        if not keys:
            raise InvalidInput("the webhook verifier's source gave no secret")
        self.fetches += 1
        self._keys = keys
        self._fetched_at = self._clock()
        return keys

    def _current_keys(self) -> list[bytes]:
        with self._lock:
            if self._keys is None or self._clock() - self._fetched_at >= self.cache_ttl:
                return self._load()
            return self._keys

    def _refreshed_keys(self, stale: list[bytes]) -> list[bytes] | None:
        """Fresh keys after a signature mismatch, or None when a fetch is not due yet."""
        with self._lock:
            if self._keys is None:  # expired by a change meanwhile
                return self._load()
            if self._keys is not stale:  # another thread refreshed meanwhile
                return self._keys
            if self._clock() - self._fetched_at < self.refresh_after:
                return None
            return self._load()

    def verify(
        self, payload: bytes | str, headers: Mapping[str, str], *, now: float | None = None
    ) -> str:
        """Check a webhook by its request headers; the verified message id."""
        keys = self._current_keys()
        try:
            return verify_webhook_headers(
                payload, headers, secrets=keys, tolerance=self.tolerance, now=now
            )
        except WebhookVerificationFailed as exc:
            if exc.reason != "signature":
                raise
            fresh = self._refreshed_keys(keys)
            if fresh is None or fresh == keys:
                raise
            return verify_webhook_headers(
                payload, headers, secrets=fresh, tolerance=self.tolerance, now=now
            )
