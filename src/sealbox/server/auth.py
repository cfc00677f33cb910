"""Who is calling: token extraction, a short-lived resolution cache, login rate limits.

NOTE: the token cache trades revocation lag for speed. A resolution (token -> principal,
and the per-principal :class:`Vault` view) is reused for at most ``token_cache_ttl``
seconds (1 s by default), keyed by the token's SHA-256, so the read path does not pay a
database lookup per request. Consequences, documented in docs/server.md:

* a token revoked through *another* server process, or whose identity lost a policy,
  keeps working on this process for up to the TTL; so does a child of a token revoked
  there (revocation is one statement over the token's subtree in the database, and a
  resolution checks every ancestor, so the next one after the TTL refuses it);
* a token revoked through *this* process stops at once, and so do its descendants (an
  entry names its token's ancestors, :attr:`Principal.token_parents`, and is dropped
  with any of them);
* a token past its expiry keeps working for up to the TTL after it.

Login attempts are limited by :class:`RateLimiter` (see its docstring and docs/server.md).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sealbox.auth.principal import Principal
from sealbox.caller import Actor
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
        """Drop a revoked token's entry, and its descendants', at once (revocation
        through this process revokes the subtree)."""
        self._entries = {
            k: v
            for k, v in self._entries.items()
            if v[1].principal.token_accessor != accessor
            and accessor not in v[1].principal.token_parents
        }

    def clear(self) -> None:
        """Drop every entry: after a change of an identity's policies or tokens, whose
        effect reaches the descendants of its tokens, whoever they belong to."""
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


class _Buckets:
    """Token buckets per key: ``rate`` per second refill, up to ``burst``."""

    def __init__(self, rate_per_minute: float, burst: float) -> None:
        self.rate = rate_per_minute / 60.0
        self.burst = float(burst)
        self._levels: dict[str, tuple[float, float]] = {}

    def level(self, key: str, now: float) -> float:
        level, at = self._levels.get(key, (self.burst, now))
        return min(self.burst, level + (now - at) * self.rate)

    def wait(self, key: str, now: float) -> float:
        """Seconds until the key's bucket holds one token again (0: it does now)."""
        return max(0.0, (1.0 - self.level(key, now)) / self.rate)

    def spend(self, key: str, now: float) -> None:
        self._levels[key] = (self.level(key, now) - 1.0, now)
        if len(self._levels) > MAX_LIMIT_KEYS:
            # Full buckets carry no information; drop them to bound memory.
            self._levels = {
                k: v for k, v in self._levels.items() if self.level(k, now) < self.burst
            }


#: Keys a limiter remembers at most (beyond it, those that carry no information go).
MAX_LIMIT_KEYS = 50_000


class RateLimiter:
    """Login limits that slow a guesser down without locking its victim or neighbours out.

    Three separate budgets (numbers are the defaults; docs/server.md explains them):

    * **attempts per source address**: every login attempt, right or wrong, spends one of
      ``attempt_burst`` (30), refilled at ``attempt_rate`` (60) a minute. It bounds the
      Argon2 CPU one address can make the server spend (~0.15 s an attempt).
    * **failures per source address**: only a *failed* login spends one of ``burst``
      (``login_burst``, 10), refilled at ``rate_per_minute`` (``login_rate``, 5). It stops
      one address from trying many identities (password spraying); a correct login costs
      nothing here.
    * **failures per (identity, source)**: the first ``free_failures`` (5) consecutive
      failures cost nothing; the k-th one after that blocks *that pair* for ``2 ** (k-1)``
      seconds (1 s, 2 s, 4 s …, at most ``max_delay``, 900 s). A success resets the pair;
      so does an hour without a failure. The same identity from another address, and
      another identity from this address, are not affected.

    Refusals (429 + Retry-After) spend nothing and reach no password check. Per process.
    """

    def __init__(
        self,
        rate_per_minute: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        *,
        attempt_rate: float = 60.0,
        attempt_burst: int = 30,
        free_failures: int = 5,
        max_delay: float = 900.0,
        forget_after: float = 3600.0,
    ) -> None:
        self._clock = clock
        self._failures = _Buckets(rate_per_minute, burst)
        self._attempts = _Buckets(attempt_rate, attempt_burst)
        self._free = free_failures
        self._max_delay = max_delay
        self._forget_after = forget_after
        #: (identity, source) -> (consecutive failures, time of the last, blocked until)
        self._pairs: dict[tuple[str, str], tuple[int, float, float]] = {}

    def _pair(self, key: tuple[str, str], now: float) -> tuple[int, float, float]:
        count, last, until = self._pairs.get(key, (0, now, now))
        if now - last > self._forget_after:
            return 0, now, now
        return count, last, until

    def admit(self, who: str, source: str) -> None:
        """Let an attempt by ``who`` from ``source`` reach the password check, or 429."""
        now = self._clock()
        _, _, until = self._pair((who, source), now)
        wait = max(
            until - now,
            self._attempts.wait(source, now),
            self._failures.wait(source, now),
        )
        if wait > 0:
            raise TooManyRequests(
                "too many login attempts; retry later", retry_after=max(1, math.ceil(wait))
            )
        self._attempts.spend(source, now)

    def failed(self, who: str, source: str) -> None:
        """A wrong credential: charge the source's failures and back the pair off."""
        now = self._clock()
        self._failures.spend(source, now)
        count, _, _ = self._pair((who, source), now)
        count += 1
        past = count - self._free  # failures beyond the free ones, this one included
        delay = 0.0 if past <= 0 else min(self._max_delay, 2.0 ** (past - 1))
        self._pairs[(who, source)] = (count, now, now + delay)
        if len(self._pairs) > MAX_LIMIT_KEYS:
            self._pairs = {k: v for k, v in self._pairs.items() if now - v[1] <= self._forget_after}

    def succeeded(self, who: str, source: str) -> None:
        self._pairs.pop((who, source), None)

    @contextmanager
    def attempt(self, who: str, source: str) -> Iterator[None]:
        """Around one login: :meth:`admit`, then :meth:`failed` if it raises
        :class:`AuthenticationFailed`, else :meth:`succeeded`."""
        self.admit(who, source)
        try:
            yield
        except AuthenticationFailed:
            self.failed(who, source)
            raise
        self.succeeded(who, source)
