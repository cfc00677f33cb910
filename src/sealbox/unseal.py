"""Seal and unseal: collecting unseal shares, opening the vault's KEKs from them, and
dropping the KEKs from memory again (Vault's ``operator unseal`` / ``operator seal``).

A process's :class:`~sealbox.context.SealState` holds the shares given so far, in memory
only: never on disk, in a log or an audit event (events record the progress, the outcome
and a failure's reason code). At the threshold the shares are combined, the vault's
``shamir`` key provider is rebuilt with its private key, and the KEKs are opened through
the vault's unlocker and handed to the vault state (``VaultState.use_keys``).

Reached as :attr:`sealbox.vault.Vault.unseal`.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import TYPE_CHECKING, NamedTuple

from sealbox.auth.policy import Capability
from sealbox.context import CoreService, SealState
from sealbox.errors import InvalidInput, KeyProviderError, SealboxError, Sealed

if TYPE_CHECKING:
    from sealbox.kms.interface import KeyRing
    from sealbox.kms.shamir import ShamirConfig
    from sealbox.storage.rows import KeyProviderRow

UNSEAL, SEAL, KMS_ADD = "unseal", "seal", "kms.add"
SEAL_PATH = "sys/seal"
SHAMIR = "shamir"


class SealStatus(NamedTuple):
    """What ``/v1/sys/seal-status`` reports (Vault's fields, by their meaning)."""

    sealed: bool
    #: Shares needed, shares made (0 and 0 when the vault has no shamir provider).
    threshold: int
    shares: int
    #: Shares collected so far towards the threshold.
    progress: int
    #: Names the current unseal attempt (empty when none is under way).
    nonce: str
    #: True when the shares are recovery shares beside an unattended provider (auto-unseal).
    recovery: bool
    #: The key provider names and kinds of the vault.
    providers: tuple[tuple[str, str], ...] = ()
    #: A session started from the shares (embedded unseal): (SEALBOX_SESSION, expiry).
    session: tuple[str, str] | None = None

    def __repr__(self) -> str:
        return (
            f"SealStatus(sealed={self.sealed}, {self.progress}/{self.threshold} of"
            f" {self.shares}, session={'***' if self.session else None})"
        )


class UnsealOps(CoreService):
    """Unseal shares, seal, and the seal's status for one vault process."""

    __slots__ = ()

    @property
    def _seal(self) -> SealState:
        sealing = self._state.sealing
        if sealing is None:
            sealing = self._state.sealing = SealState()
        return sealing

    # -- what the vault has -----------------------------------------------------------------
    def _rows(self) -> list[KeyProviderRow]:
        return self._storage.list_key_providers()

    def _shamir(self, rows: list[KeyProviderRow]) -> tuple[KeyProviderRow, ShamirConfig] | None:
        from sealbox.kms.opening import config_of
        from sealbox.kms.shamir import ShamirConfig

        for row in rows:
            if row.kind == SHAMIR:
                return row, ShamirConfig.of(config_of(row))
        return None

    @property
    def held(self) -> bool:
        """True while this process is held sealed (no loader is asked for keys)."""
        sealing = self._state.sealing
        return sealing is not None and sealing.held and not self._state.unsealed

    def retryable(self) -> bool:
        """True when some provider opens without a person (an HSM, Transit, a cloud KMS,
        a key file): worth retrying while it is away."""
        from sealbox.kms.opening import config_of
        from sealbox.kms.registry import provider_kind

        for row in self._rows():
            if row.kind == SHAMIR:
                continue
            try:
                if not provider_kind(row.kind).interactive(config_of(row)):
                    return True
            except SealboxError:
                continue
        return False

    def can_start_sealed(self) -> bool:
        """A server may start sealed when something could unseal it later: its shares,
        or an unattended provider other than a local one (a KMS that may come back)."""
        if self.has_shares():
            return True
        return self.retryable() and any(r.kind not in (SHAMIR, "local") for r in self._rows())

    def has_shares(self) -> bool:
        """True when the vault can be unsealed with shares."""
        return self._shamir(self._rows()) is not None

    def status(self) -> SealStatus:
        rows = self._rows()
        found = self._shamir(rows)
        t, n = (found[1].threshold, found[1].shares) if found else (0, 0)
        seal = self._seal
        return SealStatus(
            sealed=not self._state.unsealed,
            threshold=t,
            shares=n,
            progress=len(seal.shares),
            nonce=seal.nonce,
            recovery=any(r.kind != SHAMIR for r in rows) and found is not None,
            providers=tuple((r.name, r.kind) for r in rows),
        )

    # -- unseal -----------------------------------------------------------------------------
    def reset(self) -> SealStatus:
        """Forget the shares collected so far."""
        seal = self._seal
        had = len(seal.shares)
        seal.shares.clear()
        seal.nonce = ""
        if had:
            self._event(UNSEAL, "error", f"reset after {had} shares")
        return self.status()

    def submit(self, share: str, *, session_ttl: timedelta | None = None) -> SealStatus:
        """Take one share. Below the threshold: the progress. At it: the shares are
        combined and the vault's KEKs opened (with ``session_ttl``, an unlock session is
        started from them too: embedded use). A bad share is refused with InvalidInput
        naming which one it is; the shares collected before it are kept."""
        from sealbox.kms import shamir

        found = self._shamir(self._rows())
        if found is None:
            raise InvalidInput("this vault has no unseal shares (no shamir key provider)")
        row, config = found
        seal = self._seal
        if self._state.unsealed and session_ttl is None:
            return self.status()  # Vault: an unseal key given to an unsealed vault is a no-op
        position = len(seal.shares) + 1
        try:
            parsed = shamir.parse_share(share, position, config)
            shamir.check_new(parsed, position, seal.shares)
        except SealboxError as exc:
            self._event(UNSEAL, "denied", f"share {position} refused: {exc.code}")
            raise
        if not seal.shares:
            seal.nonce = os.urandom(16).hex()
        seal.shares.append(parsed)
        if len(seal.shares) < config.threshold:
            self._event(UNSEAL, "allowed", f"progress {len(seal.shares)}/{config.threshold}")
            return self.status()
        shares, seal.shares = list(seal.shares), []
        seal.nonce = ""
        try:
            secret = shamir.combine(shares, config)
            provider = shamir.ShamirKind().from_unlock_key(row.name, config.to_dict(), secret)
            unlocker = self._state.unlocker
            if unlocker is None:
                raise KeyProviderError("this vault was opened without its unlocker")
            ring = unlocker.ring_from(provider)
        except SealboxError as exc:
            self._event(UNSEAL, "denied", f"{config.threshold} shares combined: {exc.code}")
            raise
        self._state.use_keys(ring)
        self._event(UNSEAL, "allowed", f"unsealed with {config.threshold} shares ({row.name})")
        session = None
        if session_ttl is not None:
            from sealbox.keys import KeyOps

            ops = KeyOps(
                storage=self._storage,
                vault_id=self.vault_id,
                unlocker=unlocker,
                audit=self._audit,
                actor=self._event_actor,
                clock=self._clock,
                opened=self._state.use_keys,
            )
            session = ops.unlock_with(session_ttl, row.name, secret, ring)
        return self.status()._replace(session=session)

    def open_unattended(self, *, record: bool = True) -> bool:
        """Try the providers that open without a person (auto-unseal). True once open
        (audited unless ``record`` is False: a helper whose keys another vault takes up)."""
        if self._state.unsealed:
            return True
        unlocker = self._state.unlocker
        if unlocker is None:
            return False
        try:
            ring = unlocker.key_ring()
        except SealboxError as exc:
            self._seal.probes["open"] = exc.code
            return False
        self._state.use_keys(ring)
        if record:
            self._event(UNSEAL, "allowed", "unsealed by an unattended key provider")
        return True

    def add_recovery(self, name: str, threshold: int, shares: int) -> tuple[str, ...]:
        """Add a shamir provider ``name`` (recovery shares) to this open vault, wrapping
        every KEK under it in one transaction (admin on sys/keys); returns the shares, to
        be shown once. Audited as ``kms.add``."""
        from sealbox.keys import KEYS_PATH
        from sealbox.kms.local import kek_context
        from sealbox.kms.local_unlock import dump_config
        from sealbox.kms.registry import ProviderContext
        from sealbox.kms.shamir import ShamirKind
        from sealbox.storage.rows import KekWrapping, KeyProviderRow

        self._authorize(Capability.ADMIN, KEYS_PATH, KMS_ADD)
        if self._shamir(self._rows()) is not None:
            raise InvalidInput("this vault has unseal shares already (a shamir key provider)")
        try:
            ring = self._key_provider()
            kek_of = getattr(ring, "kek", None)
            if kek_of is None:
                raise KeyProviderError("this vault's keys cannot be re-wrapped here")
            ctx = ProviderContext(
                self._storage,
                self.vault_id,
                None,
                {},
                None,
                self._clock,
            )
            new = ShamirKind().create(name, {"shares": str(shares), "threshold": str(threshold)},
                                      ctx)  # fmt: skip
            now = self._now()
            position = max((r.position for r in self._rows()), default=0) + 1
            vid, key_id = self.vault_id, new.provider.key_id()
            wrappings = [
                KekWrapping(k.kek_id, name,
                            new.provider.wrap(kek_of(k.kek_id), kek_context(vid, k.kek_id)),
                            key_id, now)
                for k in self._storage.list_keks()
            ]  # fmt: skip
            row = KeyProviderRow(name, "shamir", dump_config(new.config), position, now)
            reason = f"{name} (shamir {threshold} of {shares}): {len(wrappings)} keys wrapped"
            self._audit.settle()
            self._storage.add_key_provider(
                row,
                wrappings,
                audit=lambda: self._record(KMS_ADD, KEYS_PATH, reason=reason, immediate=True),
                audit_node=self._audit.node,
                audit_head=self._audit.head_for(self._now()),
            )
            self._audit.after_write()
            self._audit.after_commit(self._now())
        except SealboxError as exc:
            self._record_failure(KMS_ADD, KEYS_PATH, exc)
            raise
        new.provider.close()
        return new.shares

    def offer(self, ring: KeyRing) -> None:
        """KEKs opened elsewhere (a background thread's own vault, auto-unseal) for the
        serving thread to take up at its next request (:meth:`adopt_pending`)."""
        self._seal.pending = ring

    def adopt_pending(self) -> bool:
        """Take up offered KEKs; True if the vault is now unsealed."""
        seal = self._state.sealing
        if seal is None or seal.pending is None:
            return False
        ring, seal.pending = seal.pending, None
        self._state.use_keys(ring)
        seal.shares.clear()
        seal.nonce = ""
        self._event(UNSEAL, "allowed", "unsealed by an unattended key provider (auto-unseal)")
        return True

    def ring(self) -> KeyRing:
        """The KEKs this process holds (Sealed if none): for a helper vault sharing them."""
        return self._key_provider()

    def share_keys_from(self, other: UnsealOps) -> None:
        """Hold a copy of ``other``'s KEKs (another vault of this process: the scheduler
        of a server unsealed by shares, which cannot open them itself), dropped again when
        ``other`` is sealed. Later KEKs are learnt through this vault's own storage."""
        ring = other.ring()
        copy = getattr(ring, "copy", None)
        if copy is None:
            raise KeyProviderError("these keys cannot be shared with another vault")
        source = self._state.unlocker
        self._state.use_keys(copy(source if hasattr(source, "open_kek") else None))
        other._seal.listeners.append(self.hold_sealed)

    # -- seal -------------------------------------------------------------------------------
    def seal(self) -> None:
        """Drop the KEKs from this process's memory (admin on sys/seal), audited first:
        from then on every operation that needs a key is refused until an unseal."""
        self._authorize(Capability.ADMIN, SEAL_PATH, SEAL)
        self._event(SEAL, "allowed", "keys dropped from memory")
        self._audit.flush()
        self.follow_seal()

    def follow_seal(self) -> None:
        """Drop the KEKs here without an authorisation or event of its own: another worker
        process of this server authorised and recorded the seal (server/seal_flag.py)."""
        seal = self._seal
        seal.shares.clear()
        seal.nonce = ""
        self._state.drop_keys()
        if self._state.unlocker is not None:
            self._state.unlocker.close()
        listeners, seal.listeners = list(seal.listeners), []
        for listener in listeners:
            listener()

    def hold_sealed(self) -> None:
        """Start (or stay) sealed without asking the loader: a server whose keys could not
        be opened at start."""
        self._state.drop_keys()

    # -- readiness --------------------------------------------------------------------------
    def probes(self) -> dict[str, str]:
        """What the last :meth:`probe` said of each provider (``ok`` or an error code)."""
        return dict(self._seal.probes)

    def probe(self) -> dict[str, str]:
        """Reach each key provider now (bounded by the providers' timeout): ``ok``,
        ``sealed`` (shares needed) or the error code. Call it off the request path."""
        unlocker = self._state.unlocker
        result: dict[str, str] = {}
        for row in self._rows():
            if row.kind == SHAMIR:
                result[row.name] = "ok" if self._state.unsealed else Sealed.code
                continue
            opener = getattr(unlocker, "open_provider", None)
            if opener is None:
                result[row.name] = KeyProviderError.code
                continue
            try:
                provider = opener(row)
                try:
                    provider.check()
                finally:
                    provider.close()
            except SealboxError as exc:
                result[row.name] = exc.code
            else:
                result[row.name] = "ok"
        self.note_probes(result)
        return result

    def note_probes(self, result: dict[str, str]) -> None:
        """Keep a probe's result (made elsewhere: a background thread's own vault)."""
        self._seal.probes = dict(result)

    def _event(self, operation: str, outcome: str, reason: str) -> None:
        try:
            self._record(operation, SEAL_PATH, outcome=outcome, reason=reason)
        except SealboxError:
            if outcome == "allowed" and operation == SEAL:
                raise
