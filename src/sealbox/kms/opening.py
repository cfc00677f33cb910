"""Opening a vault's KEKs through its key providers: :class:`RingOpener`.

Providers are tried in order — an unlock session's local provider first, then those that
open unattended (an HSM, Transit, a cloud KMS, a key file) by position, then those that
need a person (a passphrase) — until every KEK is open. A provider that cannot be reached
or refuses is passed over (its error kept); any one provider that holds a wrapping of every
KEK opens the vault. The provider that opened it stays open in the ring's process, so a
KEK made later elsewhere (``sealbox kms rotate``) is opened on first sight.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sealbox.errors import (
    AuthenticationFailed,
    IntegrityError,
    InvalidInput,
    KeyProviderError,
    SealboxError,
    Sealed,
)
from sealbox.kms.local import KekRing, kek_context
from sealbox.kms.registry import LOCAL, ProviderContext, provider_kind
from sealbox.storage.rows import KekWrapping, KeyProviderRow

if TYPE_CHECKING:
    from sealbox.kms.interface import KeyProvider, Rekeyed
    from sealbox.kms.local_unlock import LocalKind


def config_of(row: KeyProviderRow) -> dict[str, Any]:
    try:
        config = json.loads(row.config)
    except ValueError:
        config = None
    if not isinstance(config, dict):
        raise KeyProviderError(f"key provider {row.name!r} has an unreadable config")
    return config


def _local_kind() -> LocalKind:
    from sealbox.kms.local_unlock import LocalKind

    return LocalKind()


class RingOpener:
    """Opens the vault's KEKs. Implements :class:`~sealbox.kms.interface.Unlocker` and
    :class:`~sealbox.kms.local.KekSource`."""

    def __init__(self, ctx: ProviderContext) -> None:
        self.ctx = ctx
        #: The provider that opened the ring (kept open to open KEKs made later).
        self._keeper: KeyProvider | None = None

    @property
    def keeper(self) -> KeyProvider | None:
        """The provider that opened the KEKs in this process, if any (still open)."""
        return self._keeper

    # -- what is stored -----------------------------------------------------------------------
    def providers(self) -> list[KeyProviderRow]:
        rows = self.ctx.storage.list_key_providers()
        if not rows:
            raise KeyProviderError("the vault has no key provider")
        return rows

    def provider_row(self, name: str) -> KeyProviderRow:
        for row in self.ctx.storage.list_key_providers():
            if row.name == name:
                return row
        raise KeyProviderError(f"the vault has no key provider {name[:100]!r}")

    def open_provider(self, row: KeyProviderRow) -> KeyProvider:
        """One stored provider, opened with its own credentials."""
        return provider_kind(row.kind).open(row.name, config_of(row), self.ctx)

    def open_named(self, name: str) -> tuple[KeyProvider, bool]:
        """Provider ``name`` (per-version KMS wrapping): the one that opened the ring when
        it is that one (not the caller's to close), else opened now (the caller's)."""
        keeper = self._keeper
        if keeper is not None and keeper.name == name:
            return keeper, False
        return self.open_provider(self.provider_row(name)), True

    def _ordered(self, rows: list[KeyProviderRow]) -> list[KeyProviderRow]:
        def interactive(row: KeyProviderRow) -> bool:
            try:
                return provider_kind(row.kind).interactive(config_of(row))
            except SealboxError:
                return False  # tried, and its error reported, in its place

        unattended = [r for r in rows if not interactive(r)]
        return unattended + [r for r in rows if r not in unattended]

    # -- opening ------------------------------------------------------------------------------
    def ring_from(self, provider: KeyProvider) -> KekRing:
        """The KEKs ``provider`` holds wrappings of (every one, normally), or the error
        that says why not. ``provider`` is kept to open KEKs made later."""
        keks = self.ctx.storage.list_keks()
        active = next((k.kek_id for k in keks if k.active), None)
        if active is None:
            raise KeyProviderError("the vault has no active key-encryption key")
        mine = {w.kek_id: w for w in self.ctx.storage.list_kek_wrappings()
                if w.provider == provider.name}  # fmt: skip
        opened: dict[str, bytes] = {}
        for kek in keks:
            wrapping = mine.get(kek.kek_id)
            if wrapping is not None:
                opened[kek.kek_id] = self._unwrap(provider, wrapping)
        if active not in opened:
            raise KeyProviderError(
                f"key provider {provider.name!r} holds no wrapping of the active"
                " key-encryption key",
                hint="check the key providers' status: added but never applied?",
                hint_key="kms_status",
            )
        self._keeper = provider
        return KekRing(opened, active, source=self)

    def _unwrap(self, provider: KeyProvider, wrapping: KekWrapping) -> bytes:
        try:
            return provider.unwrap(
                wrapping.wrapped, kek_context(self.ctx.vault_id, wrapping.kek_id)
            )
        except IntegrityError:
            raise IntegrityError(
                f"key provider {provider.name!r} could not open key-encryption key"
                f" {wrapping.kek_id!r}: its stored wrapping was altered, or the provider's key"
                " is not the one that wrapped it"
            ) from None

    def key_ring(self) -> KekRing:
        session = self.ctx.env.get("SEALBOX_SESSION")
        if session:
            return self._from_session(session)
        rows = self._ordered(self.providers())
        failures: list[tuple[str, SealboxError]] = []
        for row in rows:
            provider = None
            try:
                provider = self.open_provider(row)
                ring = self.ring_from(provider)
            except SealboxError as exc:
                if provider is not None:
                    provider.close()
                failures.append((row.name, exc))
                continue
            self._close_others(provider)
            return ring
        raise _combined(failures)

    def _close_others(self, keep: KeyProvider) -> None:
        if self._keeper is not None and self._keeper is not keep:
            self._keeper.close()

    def _from_session(self, value: str) -> KekRing:
        from sealbox.kms import master

        token = master.SessionToken.parse(value)
        row = self.ctx.storage.get_session(token.session_id)
        key = master.open_session(self.ctx.vault_id, token, row, self.ctx.clock())
        assert row is not None  # open_session refuses a missing row
        prow = self.provider_row(row.provider)
        kind = provider_kind(prow.kind)
        from_key = getattr(kind, "from_unlock_key", None)
        if from_key is None:
            raise KeyProviderError(
                f"key provider {prow.name!r} ({prow.kind}) cannot be reopened from a session"
            )
        provider: KeyProvider = from_key(prow.name, config_of(prow), key)
        return self.ring_from(provider)

    def _local_rows(self) -> list[KeyProviderRow]:
        rows = [r for r in self.providers() if r.kind == LOCAL]
        if not rows:
            raise InvalidInput(
                "this vault has no local key provider (passphrase, key file or keyring): its"
                " keys are opened by its key provider each time, with no session to start",
            )
        return rows

    def unlock_key(self) -> tuple[str, bytes, KekRing]:
        kind = _local_kind()
        failures: list[tuple[str, SealboxError]] = []
        for row in self._ordered(self._local_rows()):
            try:
                key = kind.master_key(config_of(row), self.ctx)
                provider = kind.from_master(row.name, config_of(row), key)
                return row.name, key, self.ring_from(provider)
            except SealboxError as exc:
                failures.append((row.name, exc))
        raise _combined(failures)

    def change_passphrase(self, old: str, new: str) -> tuple[KekRing, Rekeyed]:
        from sealbox.kms.interface import Rekeyed
        from sealbox.kms.local_unlock import dump_config, method_of
        from sealbox.kms.master import UnlockMethod

        kind = _local_kind()
        rows = [r for r in self._local_rows()
                if method_of(config_of(r)) is UnlockMethod.PASSPHRASE]  # fmt: skip
        if not rows:
            raise InvalidInput("this vault is not protected by a passphrase")
        row = rows[0]
        config = config_of(row)
        provider = kind.from_master(row.name, config, kind.master_key(config, self.ctx, old))
        ring = self.ring_from(provider)
        new_config, new_provider = kind.rekey(row.name, config, new)
        now = self.ctx.clock().isoformat()
        vault_id, key_id = self.ctx.vault_id, new_provider.key_id()
        wrappings = [
            KekWrapping(k, row.name, new_provider.wrap(ring.kek(k), kek_context(vault_id, k)),
                        key_id, now)
            for k in ring.kek_ids
        ]  # fmt: skip
        return ring, Rekeyed(row.name, dump_config(new_config), wrappings)

    def close(self) -> None:
        """Close the provider that opened the ring (the vault closes, or a seal: its key
        leaves memory)."""
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.close()

    # -- KekSource ----------------------------------------------------------------------------
    def active_kek(self) -> str | None:
        try:
            return next((k.kek_id for k in self.ctx.storage.list_keks() if k.active), None)
        except SealboxError:
            return None  # storage briefly away: keep wrapping under the KEK we have

    def open_kek(self, kek_id: str) -> bytes | None:
        keeper = self._keeper
        if keeper is None:
            return None
        try:
            wrappings = self.ctx.storage.list_kek_wrappings()
        except SealboxError:
            return None
        for w in wrappings:
            if w.kek_id == kek_id and w.provider == keeper.name:
                return self._unwrap(keeper, w)
        return None


def _combined(failures: list[tuple[str, SealboxError]]) -> SealboxError:
    """One provider: its own error. Several: a wrong passphrase as such, else one
    KeyProviderError naming what each provider said."""
    if len(failures) == 1:
        return failures[0][1]
    for _, exc in failures:
        if isinstance(exc, AuthenticationFailed):
            return exc
    if failures and all(isinstance(exc, Sealed) for _, exc in failures):
        return failures[0][1]
    said = "; ".join(f"{name}: {exc.message}" for name, exc in failures)
    return KeyProviderError(
        f"no key provider could open the vault's keys ({said})",
        hint="check each key provider's status",
        hint_key="kms_status",
    )
