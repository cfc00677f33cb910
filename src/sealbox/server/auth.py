"""Who is calling: token extraction, a short-lived resolution cache, login rate limits.

NOTE: the token cache trades revocation lag for speed. A resolution (token -> principal,
and the per-principal :class:`Vault` view) is reused for at most ``token_cache_ttl``
seconds (1 s by default), keyed by the token's SHA-256, so the read path does not pay a
database lookup per request. Consequences, documented in docs/server.md:

* a token revoked through *another* server process, or whose identity lost a policy,
  keeps working on this process for up to the TTL;
* a token revoked through *this* process stops at once (its entries are dropped);
* a token past its expiry keeps working for up to the TTL after it.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sealbox.audit.recorder import Actor
from sealbox.auth.principal import Principal
from sealbox.errors import AuthenticationFailed
from sealbox.server.errors import TooManyRequests
from sealbox.vault import Vault

MAX_TOKEN_LENGTH = 256
MAX_CACHE_ENTRIES = 10_000


def bearer_token(headers: dict[bytes, bytes] | list[tuple[bytes, bytes]]) -> str | None:
    """The token from ``Authorization: Bearer …`` or ``X-Vault-Token`` (raw ASGI headers)."""
    items = headers.items() if isinstance(headers, dict) else headers
    for key, value in items:
        if key == b"x-vault-token":
            return value.decode("latin-1").strip()
        if key == b"authorization":
            scheme, _, rest = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                return rest.strip()
    return None


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: its principal and the vault acting for it."""

    principal: Principal
    vault: Vault


class TokenCache:
    """Token -> :class:`Caller`, for at most ``ttl`` seconds. Failures are never cached."""

    def __init__(
        self, vault: Vault, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._vault = vault
        self._authenticator = vault.authenticator()
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[str, tuple[float, Caller]] = {}
        self.hits = 0
        self.misses = 0

    def counts(self) -> tuple[int, int]:
        """(hits, misses) since start, for the metrics."""
        return self.hits, self.misses

    def resolve(self, token: str | None, scope: Mapping[str, Any] | None = None) -> Caller:
        """The caller behind a token; every failure is the same 401.

        With the request's ASGI ``scope``, the caller's vault view records the remote
        address, user agent and request id in every audit event of this request.
        """
        caller = self._resolve(token)
        if scope is None:
            return caller
        p = caller.principal
        actor = Actor(
            p.name,
            "api",
            identity_id=p.identity_id,
            auth_method=p.auth_method,
            token_accessor=p.token_accessor,
            remote_addr=_client_address(scope),
            user_agent=_header(scope, b"user-agent"),
            request_id=scope.get("sealbox.request_id") or None,
        )
        return Caller(p, caller.vault.as_principal(p, actor))

    def _resolve(self, token: str | None) -> Caller:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            # The same error as an unknown token; the checksum check in resolve() below is
            # constant time, and only a well-formed token reaches the database.
            raise AuthenticationFailed("invalid or expired token")
        key = hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            self.hits += 1
            return entry[1]
        self.misses += 1
        principal = self._authenticator.resolve(token)
        caller = Caller(
            principal, self._vault.as_principal(principal, Actor(principal.name, "api"))
        )
        if self._ttl > 0:
            if len(self._entries) >= MAX_CACHE_ENTRIES:
                self._prune(now)
            self._entries[key] = (now + self._ttl, caller)
        return caller

    def _prune(self, now: float) -> None:
        live = {k: v for k, v in self._entries.items() if v[0] > now}
        self._entries = live if len(live) < MAX_CACHE_ENTRIES else {}

    def forget_accessor(self, accessor: str) -> None:
        """Drop a revoked token's entry at once (revocation through this process)."""
        self._entries = {
            k: v for k, v in self._entries.items() if v[1].principal.token_accessor != accessor
        }

    def forget_identity(self, name: str) -> None:
        """Drop every entry of an identity (its tokens revoked or its policies changed)."""
        self._entries = {k: v for k, v in self._entries.items() if v[1].principal.name != name}

    def clear(self) -> None:
        self._entries.clear()


def _client_address(scope: Mapping[str, Any]) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


#: Longest header value (a user agent) copied into an audit event.
MAX_HEADER_TEXT = 256
#: Bytes kept as they are; every other one (controls, quotes, backslashes, non-ASCII)
#: becomes "?", so a client's header cannot forge or break a log or audit line.
_HEADER_TEXT = bytes(b if 0x20 <= b < 0x7F and b not in b'"\\' else ord("?") for b in range(256))


def _header(scope: Mapping[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            # Bounded: a user agent is metadata, not a place to store a novel.
            return bytes(value[:MAX_HEADER_TEXT]).translate(_HEADER_TEXT).decode("ascii")
    return None


class RateLimiter:
    """In-memory token buckets: ``rate`` per minute, up to ``burst`` at once, per key."""

    def __init__(
        self, rate_per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate_per_minute / 60.0
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def _level(self, key: str, now: float) -> float:
        level, at = self._buckets.get(key, (self._burst, now))
        return min(self._burst, level + (now - at) * self._rate)

    def take(self, *keys: str) -> None:
        """Spend one attempt from every key's bucket, or refuse (429) spending none."""
        now = self._clock()
        levels = {k: self._level(k, now) for k in keys}
        short = [level for level in levels.values() if level < 1.0]
        if short:
            wait = max(math.ceil((1.0 - level) / self._rate) for level in short)
            raise TooManyRequests("too many login attempts; retry later", retry_after=max(1, wait))
        for key, level in levels.items():
            self._buckets[key] = (level - 1.0, now)
        if len(self._buckets) > 50_000:
            # Full buckets carry no information; drop them to bound memory.
            self._buckets = {
                k: v for k, v in self._buckets.items() if self._level(k, now) < self._burst
            }
