"""The SDK's read cache: in memory with a TTL, and an encrypted on-disk copy for offline use.

Disk entries live in ``SEALBOX_HOME/cache/`` (a 0700 directory), one 0600 file per entry,
written atomically. Each file is AES-256-GCM under a key derived (HKDF) from the token and
the server address, so only a holder of the token can read it; the file name is an HMAC
of the entry's key (it reveals no project, env or name). The fetch time is inside the
authenticated plaintext, so nobody can make an old copy look fresh.

NOTE: a copy stays readable with a token that has since been revoked, for as long as the
file exists; ``offline_max_age`` bounds how old a copy may be served, and ``sealbox
logout`` deletes the token's files.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sealbox.errors import SealboxError

FORMAT = 1


@dataclass(frozen=True)
class Entry:
    """A cached answer and when it was fetched (seconds since the epoch)."""

    data: Any = field(repr=False)  # revealed values
    fetched_at: float

    def age(self, now: float) -> float:
        return max(0.0, now - self.fetched_at)


class MemoryCache:
    """Entries by key; thread-safe. Expiry is decided by the reader (TTL or max staleness)."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Entry | None:
        with self._lock:
            return self._entries.get(key)

    def put(self, key: str, entry: Entry) -> None:
        with self._lock:
            self._entries[key] = entry

    def drop(self, match: Callable[[str], bool]) -> None:
        with self._lock:
            for key in [k for k in self._entries if match(k)]:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def cache_dir(home: Path) -> Path:
    return home / "cache"


class DiskCache:
    """Encrypted entries for one (server, token) pair."""

    def __init__(self, directory: Path, token: str, server: str) -> None:
        import hashlib

        from sealbox.crypto.kdf import derive_subkey

        ikm = token.encode("utf-8")
        self._dir = directory
        self._server = server
        self._key = derive_subkey(ikm, b"sealbox client cache v1|" + server.encode())
        self._names = derive_subkey(ikm, b"sealbox client cache names v1|" + server.encode())
        self.prefix = hashlib.sha256(self._names).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"DiskCache({str(self._dir)!r})"

    def _path(self, key: str) -> Path:
        import hashlib
        import hmac

        digest = hmac.new(self._names, key.encode(), hashlib.sha256).hexdigest()[:40]
        return self._dir / f"{self.prefix}-{digest}.bin"

    def _aad(self, key: str) -> bytes:
        return f"sealbox-cache|{FORMAT}|{self._server}|{key}".encode()

    def get(self, key: str) -> Entry | None:
        """The stored entry, or None when absent or unreadable (tampered, other token)."""
        from sealbox.crypto import aead

        try:
            blob = self._path(key).read_bytes()
        except OSError:
            return None
        try:
            plain = aead.decrypt(self._key, blob, self._aad(key), what="cache entry")
            record = json.loads(plain)
            return Entry(record["data"], float(record["fetched_at"]))
        except (SealboxError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, entry: Entry) -> None:
        """Write atomically (0600); a failure to write the cache never fails the read."""
        from sealbox.crypto import aead
        from sealbox.files import atomic_write

        plain = json.dumps({"data": entry.data, "fetched_at": entry.fetched_at}).encode()
        try:
            self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            atomic_write(self._path(key), aead.encrypt(self._key, plain, self._aad(key)))
        except OSError:
            import logging

            logging.getLogger("sealbox.client").warning(
                "could not write the offline cache in %s", self._dir
            )

    def drop(self, key: str) -> None:
        with contextlib.suppress(OSError):
            self._path(key).unlink()

    def wipe(self) -> int:
        """Delete every entry of this token (``sealbox logout``); returns how many."""
        count = 0
        for path in self._dir.glob(f"{self.prefix}-*.bin"):
            try:
                path.unlink()
                count += 1
            except OSError:
                pass
        return count


def now() -> float:
    return time.time()


def describe_age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
