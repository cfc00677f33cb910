"""The vault's key and session operations: unlock, lock, passphrase change.

Each is an audited core operation (DESIGN.md invariant 2): a success records its event
in the same storage transaction as the change (fail closed, like a secret write), and a
failure — a wrong passphrase, a missing key file — records a ``denied`` or ``error`` event
before the error reaches the caller. Events never hold a passphrase, a master key or a
session secret: the session id (not secret: it only names the stored record) at most.

Reached as :attr:`sealbox.vault.Vault.keys`; the provider-specific part (where the master
key comes from) is the vault's :class:`~sealbox.kms.interface.Unlocker`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from sealbox.errors import AuthenticationFailed, InvalidInput, SealboxError

if TYPE_CHECKING:
    from sealbox.audit.recorder import AuditRecorder
    from sealbox.caller import Actor
    from sealbox.kms.interface import KeyRing, Unlocker
    from sealbox.storage.interface import KeyStore, SessionStore

    class KeyStorage(KeyStore, SessionStore, Protocol):
        """What the key operations keep: the KEKs and the unlock sessions."""


#: Audit operations and the path their events name.
UNLOCK, LOCK, PASSPHRASE_CHANGE = "unlock", "lock", "passphrase.change"
#: A long-running process (a server, a worker) loaded the master key for its lifetime.
KEYS_LOAD = "keys.load"
SESSIONS_PATH, KEYS_PATH = "sys/sessions", "sys/keys"

MIN_SESSION_TTL = timedelta(seconds=1)
MAX_SESSION_TTL = timedelta(days=30)


class KeyOps:
    """Unlock sessions and the master key of one vault, acting as one actor."""

    def __init__(
        self,
        *,
        storage: KeyStorage,
        vault_id: str,
        unlocker: Unlocker,
        audit: AuditRecorder,
        actor: Actor,
        clock: Callable[[], datetime],
        opened: Callable[[KeyRing], None],
        on_lock: Callable[[], object] | None = None,
    ) -> None:
        self._storage, self._vault_id, self._unlocker = storage, vault_id, unlocker
        self._audit, self._actor, self._clock = audit, actor, clock
        #: Told of a provider this operation opened (the vault keeps it, and events
        #: recorded from then on are keyed).
        self._opened = opened
        #: Told of a lock: drops what this process holds opened by a provider (the
        #: per-version data-key cache).
        self._on_lock = on_lock

    def _record(
        self,
        operation: str,
        path: str,
        outcome: str = "allowed",
        reason: str = "",
        *,
        immediate: bool = False,
    ) -> None:
        self._audit.record(
            at=self._clock().isoformat(),
            actor=self._actor,
            operation=operation,
            path=path,
            outcome=outcome,
            reason=reason,
            immediate=immediate,
        )

    @contextlib.contextmanager
    def _audited(self, operation: str, path: str) -> Iterator[None]:
        """Record a failure of the operation inside; its success records its own event in
        its transaction (the spooled chain is stored first and continues after it)."""
        self._audit.settle()
        try:
            yield
        except AuthenticationFailed:
            # The credential was wrong: what it was is never recorded.
            with contextlib.suppress(SealboxError):
                self._record(operation, path, "denied", "bad credentials")
            raise
        except SealboxError as exc:
            with contextlib.suppress(SealboxError):
                self._record(operation, path, "error", exc.code)
            raise
        self._audit.after_write()
        self._audit.after_commit(self._clock().isoformat())

    def _use(self, provider: KeyRing) -> None:
        self._opened(provider)
        # Loaded now: the event is recorded inside the change's transaction.
        self._audit.audit_keys()

    def _in_tx(self, operation: str, path: str, reason: str) -> None:
        self._record(operation, path, reason=reason, immediate=True)

    def unlock(self, ttl: timedelta) -> tuple[str, str]:
        """Start an unlock session; returns (SEALBOX_SESSION value, expiry ISO time)."""
        if ttl < MIN_SESSION_TTL or ttl > MAX_SESSION_TTL:
            raise InvalidInput("a session lasts between 1 second and 30 days")
        with self._audited(UNLOCK, SESSIONS_PATH):
            return self._session(ttl, *self._unlocker.unlock_key())

    def unlock_with(
        self, ttl: timedelta, provider: str, unlock_key: bytes, ring: KeyRing
    ) -> tuple[str, str]:
        """Start an unlock session for keys opened elsewhere (unseal shares combined:
        ``unlock_key`` is what reopens ``provider``)."""
        if ttl < MIN_SESSION_TTL or ttl > MAX_SESSION_TTL:
            raise InvalidInput("a session lasts between 1 second and 30 days")
        with self._audited(UNLOCK, SESSIONS_PATH):
            return self._session(ttl, provider, unlock_key, ring)

    def _session(
        self, ttl: timedelta, name: str, unlock_key: bytes, ring: KeyRing
    ) -> tuple[str, str]:
        from sealbox.kms import master

        self._use(ring)
        now = self._clock()
        self._storage.delete_sessions(expired_before=now.isoformat())
        token, row = master.new_session(self._vault_id, unlock_key, now, ttl, provider=name)
        reason = f"session {row.session_id} until {row.expires_at}"
        self._storage.put_session(
            row,
            audit=lambda: self._in_tx(UNLOCK, SESSIONS_PATH, reason),
            audit_node=self._audit.node,
            audit_head=self._audit.head_for(self._clock().isoformat()),
        )
        return token.encode(), row.expires_at

    def load(self, purpose: str) -> None:
        """Load the key provider for this process's lifetime (a server must not start
        sealed), recording which process now holds the master key and why."""
        with self._audited(KEYS_LOAD, KEYS_PATH):
            self._use(self._unlocker.key_ring())
            self._record(KEYS_LOAD, KEYS_PATH, reason=f"{purpose} (pid {os.getpid()})")
        self._audit.flush()

    def lock(self) -> int:
        """End every unlock session of the vault; returns how many there were.

        Needs no key: the event is keyed only if this process has the keys open. Data
        keys this process cached from a provider (per-version KMS wrapping) are dropped.
        """
        if self._on_lock is not None:
            self._on_lock()
        with self._audited(LOCK, SESSIONS_PATH):
            count = self._storage.delete_sessions(
                audit=lambda n: self._in_tx(LOCK, SESSIONS_PATH, f"{n} sessions ended"),
                audit_node=self._audit.node,
                audit_head=self._audit.head_for(self._clock().isoformat()),
            )
        return count

    def change_passphrase(self, old: str, new: str) -> None:
        """Re-wrap the KEKs under a master key from a new passphrase; values are untouched.
        Every unlock session ends (they hold the old master key)."""
        if not new:
            raise InvalidInput("the new passphrase is empty")
        with self._audited(PASSPHRASE_CHANGE, KEYS_PATH):
            ring, rekeyed = self._unlocker.change_passphrase(old, new)
            self._use(ring)
            reason = (
                f"{len(rekeyed.wrappings)} key-encryption keys re-wrapped by key provider"
                f" {rekeyed.provider!r}; its sessions ended"
            )
            self._storage.update_key_provider(
                rekeyed.provider,
                config=rekeyed.config,
                wrappings=rekeyed.wrappings,
                end_sessions=True,
                audit=lambda: self._in_tx(PASSPHRASE_CHANGE, KEYS_PATH, reason),
                audit_node=self._audit.node,
                audit_head=self._audit.head_for(self._clock().isoformat()),
            )
