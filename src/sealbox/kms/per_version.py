"""Per-version KMS wrapping's mechanics: the setting, the data-key cache, and the wrapper
that has a key provider wrap a version's data key itself (the core service that turns it on
is :mod:`sealbox.kms_per_version`).

A version so wrapped is stored with ``kek_id = "kms:<provider>"`` and a wrapped key
``kms NUL <provider> NUL <the provider's blob>``; reads unwrap through the provider via a
:class:`DataKeyCache` bounded by age, use count and entries. One
:class:`PerVersionKeys` per opened vault and process (kept by
:class:`~sealbox.context.VaultState`) holds the setting, re-read every
:data:`REFRESH_SECONDS`, the providers opened for it, and the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from sealbox.errors import (
    AuthenticationFailed,
    IntegrityError,
    InvalidInput,
    KeyProviderError,
    NotFound,
    SealboxError,
)
from sealbox.model import Classification

if TYPE_CHECKING:
    from sealbox.crypto.envelope import Wrapper
    from sealbox.kms.interface import KeyProvider, Unlocker
    from sealbox.storage.interface import Storage

SETTING_KEY = "kms_per_version"
#: ``kek_id`` of a version whose data key provider NAME wraps itself: ``kms:NAME``.
KMS_PREFIX = "kms:"
_BLOB_TAG = b"kms"
#: How often a long-lived process re-reads the setting (another process may change it).
REFRESH_SECONDS = 30.0

_ORDER = {c: i for i, c in enumerate(Classification)}  # low < medium < high < critical


def is_per_version(kek_id: str) -> bool:
    """True for a version whose data key a key provider wraps itself."""
    return kek_id.startswith(KMS_PREFIX)


def provider_of(kek_id: str) -> str:
    """The provider name in a ``kms:NAME`` kek_id."""
    return kek_id[len(KMS_PREFIX) :]


# -- the setting ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PerVersionSetting:
    """Which versions a provider wraps itself, and the data-key cache's bounds."""

    provider: str
    min_classification: Classification = Classification.CRITICAL
    #: Seconds a DEK unwrapped by the provider may serve reads from memory (0: no cache).
    cache_max_age: float = 300.0
    #: Reads one unwrap may serve, the first included (1: no cache).
    cache_max_uses: int = 1000
    #: DEKs held at most (least recently used dropped first; 0: no cache).
    cache_max_entries: int = 10000

    def __post_init__(self) -> None:
        if not self.provider or len(self.provider) > 100:
            raise InvalidInput("per-version KMS wrapping needs a key provider's name")
        if not (0 <= self.cache_max_age <= 86400):
            raise InvalidInput("the data-key cache's max age is between 0 and 86400 seconds")
        if not (1 <= self.cache_max_uses <= 10**9):
            raise InvalidInput("the data-key cache's max uses is between 1 and 1000000000")
        if not (0 <= self.cache_max_entries <= 10**7):
            raise InvalidInput("the data-key cache's max entries is between 0 and 10000000")

    def applies(self, classification: Classification | None) -> bool:
        """True when a secret so classified has its versions wrapped by the provider."""
        return (
            classification is not None and _ORDER[classification] >= _ORDER[self.min_classification]
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "min_classification": self.min_classification.value,
            "cache_max_age": self.cache_max_age,
            "cache_max_uses": self.cache_max_uses,
            "cache_max_entries": self.cache_max_entries,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PerVersionSetting:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise InvalidInput(f"unknown per-version KMS option(s): {', '.join(sorted(unknown))}")
        try:
            level = Classification(data.get("min_classification", "critical"))
        except ValueError:
            raise InvalidInput(
                "the classification threshold is one of "
                + ", ".join(c.value for c in Classification)
            ) from None
        try:
            return cls(
                provider=str(data.get("provider") or ""),
                min_classification=level,
                cache_max_age=float(data.get("cache_max_age", 300.0)),
                cache_max_uses=int(data.get("cache_max_uses", 1000)),
                cache_max_entries=int(data.get("cache_max_entries", 10000)),
            )
        except (TypeError, ValueError):
            raise InvalidInput("a per-version KMS cache bound is not a number") from None

    @classmethod
    def parse(cls, text: str | None) -> PerVersionSetting | None:
        """The stored setting; None when off (absent or empty)."""
        if not text:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise KeyProviderError("the vault's per-version KMS setting is unreadable")
        return cls.from_dict(data)


# -- the data-key cache -----------------------------------------------------------------------
class CacheStats(NamedTuple):
    entries: int
    hits: int
    misses: int
    #: Calls made to providers to unwrap (and wrap) data keys by this process.
    provider_calls: int


class _Entry:
    __slots__ = ("born", "dek", "uses")

    def __init__(self, dek: bytes, born: float) -> None:
        self.dek = bytearray(dek)
        self.born = born
        self.uses = 1  # the read that fetched it


def _zeroise(entry: _Entry) -> None:
    for i in range(len(entry.dek)):
        entry.dek[i] = 0


def cache_key(blob: bytes, context: bytes) -> bytes:
    """The cache's key for a wrapped DEK and its context (a hash: no blob kept)."""
    h = hashlib.sha256(b"sealbox/dek-cache\x00")
    h.update(len(context).to_bytes(4, "big"))
    h.update(context)
    h.update(blob)
    return h.digest()


class DataKeyCache:
    """Data keys a provider unwrapped, kept in memory for a bounded time and use count.

    Thread safe. An entry is dropped (its bytes overwritten) when it is older than
    ``max_age`` seconds, once it has served ``max_uses`` reads, when ``max_entries``
    newer ones push it out, and on :meth:`clear` (a lock or seal). The bytes handed to a
    caller are a copy the cache cannot zeroise: they live as long as the read.
    """

    def __init__(
        self,
        *,
        max_age: float,
        max_uses: int,
        max_entries: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._clock = clock
        self.max_age, self.max_uses, self.max_entries = max_age, max_uses, max_entries
        self.hits = self.misses = 0

    @property
    def enabled(self) -> bool:
        return self.max_age > 0 and self.max_uses > 1 and self.max_entries > 0

    def bounds(self, *, max_age: float, max_uses: int, max_entries: int) -> None:
        """New bounds (the setting changed): entries beyond them are dropped now."""
        with self._lock:
            self.max_age, self.max_uses, self.max_entries = max_age, max_uses, max_entries
            now = self._clock()
            for key in [k for k, e in self._entries.items() if self._stale(e, now)]:
                _zeroise(self._entries.pop(key))
            self._trim()

    def _stale(self, entry: _Entry, now: float) -> bool:
        return now - entry.born >= self.max_age or entry.uses >= self.max_uses

    def _trim(self) -> None:
        while len(self._entries) > self.max_entries:
            _zeroise(self._entries.popitem(last=False)[1])

    def get(self, key: bytes) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            if self._clock() - entry.born >= self.max_age:
                _zeroise(self._entries.pop(key))
                self.misses += 1
                return None
            entry.uses += 1
            dek = bytes(entry.dek)
            if entry.uses >= self.max_uses:
                _zeroise(self._entries.pop(key))  # this was its last read
            else:
                self._entries.move_to_end(key)
            self.hits += 1
            return dek

    def put(self, key: bytes, dek: bytes) -> None:
        if not self.enabled:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                _zeroise(old)
            self._entries[key] = _Entry(dek, self._clock())
            self._trim()

    def clear(self) -> int:
        """Drop every entry (overwritten); returns how many there were."""
        with self._lock:
            count = len(self._entries)
            for entry in self._entries.values():
                _zeroise(entry)
            self._entries.clear()
            return count

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"DataKeyCache(entries={len(self._entries)}, max_entries={self.max_entries})"


# -- the per-process state --------------------------------------------------------------------
class ProviderOpener(Protocol):
    """Opens one of the vault's stored key providers by name (a
    :class:`~sealbox.kms.opening.RingOpener`)."""

    def open_named(self, name: str) -> tuple[KeyProvider, bool]:
        """The provider, and whether the caller owns it (closes it when done with it)."""
        ...


def opener_for(unlocker: Unlocker | None) -> ProviderOpener | None:
    """The vault's unlocker as a :class:`ProviderOpener` (None if it cannot be one)."""
    from sealbox.kms.opening import RingOpener

    return unlocker if isinstance(unlocker, RingOpener) else None


class _ProviderWrapper:
    """A provider as an envelope :class:`~sealbox.crypto.envelope.Wrapper` of data keys:
    blobs tagged with the provider's name, unwraps through the cache."""

    __slots__ = ("_keys", "_name", "_provider", "_tag", "owned")

    def __init__(self, keys: PerVersionKeys, name: str, provider: KeyProvider, owned: bool) -> None:
        self._keys, self._name, self._provider, self.owned = keys, name, provider, owned
        self._tag = _BLOB_TAG + b"\x00" + name.encode() + b"\x00"

    def wrap(self, key: bytes, context: bytes) -> bytes:
        self._keys.count_call()
        return self._tag + self._provider.wrap(key, context)

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        if not blob.startswith(self._tag):
            # The row's kek_id names another provider than the blob: moved or altered.
            raise IntegrityError("integrity check failed: unknown key wrapping")
        cache = self._keys.cache
        key = cache_key(blob, context)
        dek = cache.get(key)
        if dek is not None:
            return dek
        self._keys.count_call()
        try:
            dek = self._provider.unwrap(blob[len(self._tag) :], context)
        except AuthenticationFailed:
            # A local provider says so of any blob it cannot open: here, an altered one.
            raise IntegrityError("integrity check failed: the data key does not open") from None
        cache.put(key, dek)
        return dek

    def close(self) -> None:
        self._provider.close()

    def __repr__(self) -> str:
        return f"ProviderWrapper({self._name!r})"


class PerVersionKeys:
    """One vault's per-version KMS state in this process: the setting (re-read every
    :data:`REFRESH_SECONDS`), the providers opened for it, and the data-key cache.
    Kept by :class:`~sealbox.context.VaultState`; thread safe."""

    def __init__(
        self,
        storage: Storage,
        opener: ProviderOpener | None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._storage, self._opener, self._clock = storage, opener, clock
        self._lock = threading.Lock()
        self._providers: dict[str, _ProviderWrapper] = {}
        self._setting: PerVersionSetting | None = None
        self._read_at: float | None = None
        defaults = PerVersionSetting("-")
        self.cache = DataKeyCache(
            max_age=defaults.cache_max_age,
            max_uses=defaults.cache_max_uses,
            max_entries=defaults.cache_max_entries,
            clock=clock,
        )
        self._calls = 0

    def count_call(self) -> None:
        with self._lock:
            self._calls += 1

    def stats(self) -> CacheStats:
        return CacheStats(len(self.cache), self.cache.hits, self.cache.misses, self._calls)

    # -- the setting ----------------------------------------------------------------------
    def setting(self) -> PerVersionSetting | None:
        """The vault's setting as last read (re-read when older than REFRESH_SECONDS)."""
        now = self._clock()
        if self._read_at is None or now - self._read_at >= REFRESH_SECONDS:
            self.use_setting(PerVersionSetting.parse(self._storage.get_setting(SETTING_KEY)))
        return self._setting

    def use_setting(self, setting: PerVersionSetting | None) -> None:
        """Follow ``setting`` from now (read from storage, or just stored here)."""
        self._setting, self._read_at = setting, self._clock()
        if setting is not None:
            self.cache.bounds(
                max_age=setting.cache_max_age,
                max_uses=setting.cache_max_uses,
                max_entries=setting.cache_max_entries,
            )

    # -- providers ------------------------------------------------------------------------
    def wrapper(self, name: str) -> Wrapper:
        """Provider ``name`` as a data-key wrapper (opened once, kept open)."""
        found = self._providers.get(name)
        if found is not None:
            return found
        with self._lock:
            found = self._providers.get(name)
            if found is None:
                if self._opener is None:
                    raise KeyProviderError(
                        "this vault was opened without its key providers: a version wrapped"
                        f" by key provider {name[:100]!r} cannot be opened here"
                    )
                provider, owned = self._opener.open_named(name)
                found = _ProviderWrapper(self, name, provider, owned)
                self._providers[name] = found
        return found

    def for_write(self, storage: Storage, project: str, env: str, name: str) -> Sealer | None:
        """How a new version of ``project/env/name`` is sealed when its classification
        asks for a provider's own wrapping; None for the KEK ring (the default)."""
        setting = self.setting()
        if setting is None:
            return None
        try:
            row = storage.get_secret(project, env, name)
        except NotFound:
            return None  # a new secret has no classification yet
        level = _classification(row.meta_json)
        if not setting.applies(level):
            return None
        return Sealer(self.wrapper(setting.provider), KMS_PREFIX + setting.provider)

    def clear(self) -> int:
        """Drop every cached data key and close the providers opened here (a lock or a
        seal); returns how many keys were dropped."""
        count = self.cache.clear()
        with self._lock:
            providers, self._providers = list(self._providers.values()), {}
        for p in providers:
            if p.owned:
                with contextlib.suppress(SealboxError):
                    p.close()
        return count

    def __repr__(self) -> str:
        return f"PerVersionKeys(providers={sorted(self._providers)!r}, cache={self.cache!r})"


class Sealer(NamedTuple):
    """What seals a new version: the wrapper of its DEK and the kek_id stored with it."""

    wrapper: Wrapper
    kek_id: str


def _classification(meta_json: str) -> Classification | None:
    try:
        value = json.loads(meta_json).get("classification")
        return Classification(value) if value else None
    except (ValueError, AttributeError):
        return None


def open_wrapper(keys: PerVersionKeys, kek_id: str, path: str, version: int) -> Wrapper:
    """The wrapper that opens a ``kms:`` version; errors name the version."""
    try:
        keys.setting()  # the cache's bounds as stored, in a process that only reads too
        return _Named(keys.wrapper(provider_of(kek_id)), path, version)
    except KeyProviderError as exc:
        raise _unavailable(exc, provider_of(kek_id), path, version) from None


class _Named:
    """A wrapper whose provider errors name the secret version they were for."""

    __slots__ = ("_inner", "_path", "_version")

    def __init__(self, inner: Wrapper, path: str, version: int) -> None:
        self._inner, self._path, self._version = inner, path, version

    def wrap(self, key: bytes, context: bytes) -> bytes:  # pragma: no cover - reads only
        return self._inner.wrap(key, context)

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        try:
            return self._inner.unwrap(blob, context)
        except KeyProviderError as exc:
            name = blob.split(b"\x00", 2)[1].decode("ascii", "replace")[:100]
            raise _unavailable(exc, name, self._path, self._version) from None


def _unavailable(exc: KeyProviderError, name: str, path: str, version: int) -> KeyProviderError:
    return KeyProviderError(
        f"{path} version {version} is wrapped by key provider {name!r} itself, which failed:"
        f" {exc.message}",
        hint=exc.hint or "check that key provider's reachability and credentials",
        hint_key=exc.hint_key or "kms_status",
        hint_args=exc.hint_args,
    )
