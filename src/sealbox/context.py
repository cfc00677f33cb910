"""What every core service works with: one vault's shared parts, and who is calling.

A :class:`VaultState` is made once per opened vault and shared by reference by every view
of it (:meth:`sealbox.vault.Vault.as_principal`), so one unlock serves them all. A
:class:`CallerContext` is per caller: the principal its policies come from, the actor its
audit events name, and the clock. :class:`CoreService` joins the two and holds the helpers
every service needs — authorise (default deny, denial audited), record an event, open a
sealed version — once, for all of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from sealbox.caller import Actor
from sealbox.crypto import envelope
from sealbox.errors import AccessDenied, IntegrityError, SealboxError, Sealed
from sealbox.model import SecretValue

if TYPE_CHECKING:
    from sealbox.audit.recorder import AuditRecorder, Touched
    from sealbox.audit_commit import AuditCommit
    from sealbox.auth.policy import Capability
    from sealbox.auth.principal import Principal
    from sealbox.changes import ChangeEvent
    from sealbox.kms.interface import KeyRing, Unlocker
    from sealbox.kms.per_version import PerVersionKeys
    from sealbox.storage.interface import Storage
    from sealbox.storage.rows import VersionRow

Clock = Callable[[], datetime]
KeyLoader = Callable[[], "KeyRing"]
ChangeObserver = Callable[["ChangeEvent"], None]
_new_tuple = tuple.__new__


def utcnow() -> datetime:
    return datetime.now(UTC)


class VaultState:
    """The parts of one opened vault that every view of it shares.

    Keys are obtained lazily, once: listing names and metadata works on a locked vault,
    and the first view that needs a value asks the loader (the unlocker) for all of them.
    """

    __slots__ = (
        "_keys",
        "_load_keys",
        "_per_version",
        "audit",
        "commit",
        "on_change",
        "sealing",
        "storage",
        "unlocker",
        "vault_id",
    )

    def __init__(
        self,
        *,
        storage: Storage,
        vault_id: str,
        load_keys: KeyLoader,
        audit: AuditRecorder,
        unlocker: Unlocker | None = None,
        on_change: ChangeObserver | None = None,
    ) -> None:
        self.storage = storage
        self.vault_id = vault_id
        self.audit = audit
        #: Opens the key provider for the key operations (``Vault.keys``); None when the
        #: vault was handed only a loader.
        self.unlocker = unlocker
        #: Called after every committed change of a secret (the server's live updates).
        self.on_change = on_change
        self._load_keys = load_keys
        self._keys: KeyRing | None = None
        self._per_version: PerVersionKeys | None = None
        #: The audit-commit strategy ``Vault.audit_commit`` (chosen by ``Vault.serve``),
        #: shared by every view: a request's view commits as the server does.
        self.commit: AuditCommit | None = None
        #: The seal state of a long-running process (unseal shares being collected, held
        #: sealed): :mod:`sealbox.unseal`. None: keys load lazily, as for the CLI.
        self.sealing: SealState | None = None

    def key_provider(self) -> KeyRing:
        keys = self._keys
        if keys is None:
            sealing = self.sealing
            if sealing is not None and sealing.held:
                raise Sealed("the vault is sealed: unseal it with its shares", hint_key="unseal")
            keys = self._load_keys()
            self.use_keys(keys)
        return keys

    def per_version_keys(self) -> PerVersionKeys:
        """Per-version KMS wrapping in this process (:mod:`sealbox.kms.per_version`):
        its setting, providers and data-key cache, made on first use."""
        found = self._per_version
        if found is None:
            from sealbox.kms.per_version import PerVersionKeys, opener_for

            # NOTE: two threads racing here make two; one is kept (a cache lost, no more).
            found = self._per_version = PerVersionKeys(self.storage, opener_for(self.unlocker))
        return found

    def drop_data_keys(self) -> int:
        """Empty the per-version data-key cache (a lock, a seal); how many were dropped."""
        found = self._per_version
        return found.clear() if found is not None else 0

    @property
    def unsealed(self) -> bool:
        """True once the KEKs are in memory."""
        return self._keys is not None

    def drop_keys(self) -> None:
        """Forget the KEKs (``operator seal``); the loader is not asked again until an
        unseal hands keys back (:meth:`use_keys`)."""
        if self.sealing is None:
            self.sealing = SealState()
        self.sealing.held = True
        self._keys = None
        self.drop_data_keys()

    def use_keys(self, provider: KeyRing) -> None:
        """Keep ``provider`` (loaded here, or opened by an unlock): events are keyed from now."""
        self._keys = provider
        if self.sealing is not None:
            self.sealing.held = False
        self.audit.use_keys(provider, self.vault_id)


class SealState:
    """A process's seal: unseal shares collected so far (in memory only, never stored or
    logged), whether the vault is held sealed, and what the last readiness probe of each
    key provider said."""

    __slots__ = ("held", "listeners", "nonce", "pending", "probes", "shares")

    def __init__(self) -> None:
        self.held = False
        #: KEKs opened by a background auto-unseal, taken up on the serving thread.
        self.pending: KeyRing | None = None
        self.nonce = ""
        self.shares: list[Any] = []
        self.probes: dict[str, str] = {}
        #: Told after a seal (another vault of this process holding copies of the KEKs).
        self.listeners: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        return f"SealState(held={self.held}, progress={len(self.shares)})"


class CallerContext(NamedTuple):
    """Who one view of the vault acts for. Immutable: a new caller is a new context."""

    principal: Principal
    actor: Actor
    clock: Clock
    #: The actor as events name it (see :func:`event_actor`).
    event_actor: Actor

    @classmethod
    def of(cls, principal: Principal, actor: Actor, clock: Clock) -> CallerContext:
        """The context for ``principal`` acting as ``actor`` (its event actor derived)."""
        if not (actor.identity_id and actor.auth_method and actor.token_accessor):
            actor_ev = event_actor(actor, principal)
        else:
            actor_ev = actor
        # NOTE: tuple.__new__ directly: a server builds one per request, and the
        # generated __new__ costs a third more.
        return _new_tuple(cls, (principal, actor, clock, actor_ev))


def event_actor(actor: Actor, principal: Principal) -> Actor:
    """The actor as events name it: with the principal's id, auth method, token accessor."""
    if actor.identity_id and actor.auth_method and actor.token_accessor:
        return actor
    # NOTE: built by position, not with _replace (five times slower): a server does this
    # for the first request of every token.
    identity, source, identity_id, auth_method, accessor, *rest = actor
    return _new_tuple(
        Actor,
        (
            identity,
            source,
            identity_id or principal.identity_id,
            auth_method or principal.auth_method,
            accessor or principal.token_accessor,
            *rest,
        ),
    )


class CoreService:
    """A core service: one vault's shared state, acting for one caller."""

    # NOTE: slots and properties, not copied attributes: a server builds a view (and its
    # services) per request, so building one must cost two stores, not a dict copy.
    __slots__ = ("_caller", "_state")

    def __init__(self, state: VaultState, caller: CallerContext) -> None:
        self._state = state
        self._caller = caller

    @property
    def vault_id(self) -> str:
        return self._state.vault_id

    @property
    def principal(self) -> Principal:
        return self._caller.principal

    @property
    def actor(self) -> Actor:
        return self._caller.actor

    @property
    def _storage(self) -> Storage:
        return self._state.storage

    @property
    def _audit(self) -> AuditRecorder:
        return self._state.audit

    @property
    def _clock(self) -> Clock:
        return self._caller.clock

    @property
    def _event_actor(self) -> Actor:
        return self._caller.event_actor

    def _now(self) -> str:
        return self._caller.clock().isoformat()

    def _key_provider(self) -> KeyRing:
        return self._state.key_provider()

    def _authorize(self, capability: Capability, path: str, operation: str) -> None:
        """Default deny. A denial says nothing about whether the target exists."""
        decision = self._caller.principal.decide(path, capability)
        if not decision.allowed:
            with contextlib.suppress(SealboxError):
                self._record(operation, path, outcome="denied", reason=decision.reason)
            raise AccessDenied(f"permission denied: {capability.value} on {path}")

    def _record(
        self,
        operation: str,
        path: str,
        version: int | None = None,
        *,
        touched: Sequence[Touched] = (),
        immediate: bool = False,
        **kw: str,
    ) -> None:
        self._state.audit.record(
            at=self._now(),
            actor=self._caller.event_actor,
            operation=operation,
            path=path,
            version=version,
            touched=touched,
            immediate=immediate,
            **kw,
        )

    def _record_failure(self, operation: str, path: str, exc: SealboxError) -> None:
        # The original error is what the caller must see.
        with contextlib.suppress(SealboxError):
            self._record(operation, path, outcome="error", reason=exc.code)

    def _context(self, project: str, env: str, name: str, version: int) -> bytes:
        return envelope.version_context(self._state.vault_id, project, env, name, version)

    def _open(self, row: VersionRow) -> SecretValue:
        ctx = self._context(row.project, row.env, row.name, row.version)
        wrapper: envelope.Wrapper
        if row.kek_id.startswith("kms:"):
            # Wrapped by a key provider itself (per-version KMS wrapping of a critical
            # secret): through its data-key cache. Every other version: the KEKs in memory.
            from sealbox.kms.per_version import open_wrapper

            path = f"{row.project}/{row.env}/{row.name}"
            wrapper = open_wrapper(self._state.per_version_keys(), row.kek_id, path, row.version)
        else:
            wrapper = self._key_provider()
        try:
            plaintext = envelope.open_sealed(row.ciphertext, row.wrapped_key, wrapper, ctx)
        except IntegrityError:
            raise IntegrityError(
                f"integrity check failed for {row.project}/{row.env}/{row.name} version "
                f"{row.version}: the stored ciphertext was altered or moved",
                hint="restore the vault from a backup, or roll back to another version",
            ) from None
        return SecretValue(plaintext)
