"""The vault's key providers as an audited core service: ``vault.kms``.

``list`` and ``status`` show them (status opens each unattended provider and checks,
wrapping by wrapping, that it really opens the KEK it claims to: a provider configured
but never applied, or whose key changed, shows as a problem, never silently); ``add``
wraps every KEK under a new provider and stores it with those wrappings in one
transaction; ``remove`` drops one, refused when it is the only provider that can open
some KEK. Every change needs ``admin`` on ``sys/kms/<name>`` and is audited.

KEK rotation and moving to another provider are :mod:`sealbox.kms_rotate`.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sealbox.auth.policy import Capability
from sealbox.context import CoreService
from sealbox.errors import InvalidInput, KeyProviderError, SealboxError
from sealbox.model import (
    KekInfo,
    KeyProviderInfo,
    KmsAdded,
    KmsStatus,
    ProviderStatus,
    SecretValue,
)

if TYPE_CHECKING:
    from sealbox.kms.interface import KeyProvider
    from sealbox.kms.local import KekRing
    from sealbox.kms.opening import RingOpener
    from sealbox.storage.rows import KeyProviderRow

KMS_PATH = "sys/kms"
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")


def provider_path(name: str) -> str:
    return f"{KMS_PATH}/{name}"


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            f"invalid key provider name {name[:60]!r}: 1-40 of a-z, 0-9, '-', '_' (starting"
            " with a letter or digit)"
        )
    return name


def _info(row: KeyProviderRow) -> KeyProviderInfo:
    from sealbox.kms.opening import config_of

    return KeyProviderInfo(row.name, row.kind, row.position, row.created_at, config_of(row))


class KmsOps(CoreService):
    """Key providers: providers, keks, status, add, remove (see the module docstring)."""

    __slots__ = ()

    def _opener(self) -> RingOpener:
        from sealbox.kms.opening import RingOpener

        opener = self._state.unlocker
        if not isinstance(opener, RingOpener):
            raise KeyProviderError("this vault was opened without its key providers")
        return opener

    def _ring(self) -> KekRing:
        from sealbox.kms.local import KekRing

        ring = self._key_provider()
        if not isinstance(ring, KekRing):  # pragma: no cover - a test double
            raise KeyProviderError("this vault's keys cannot be re-wrapped")
        return ring

    # -- reading ------------------------------------------------------------------------------
    def providers(self) -> list[KeyProviderInfo]:
        """The providers, in the order they are tried."""
        self._authorize(Capability.READ, KMS_PATH, "kms.list")
        return [_info(r) for r in self._storage.list_key_providers()]

    def keks(self) -> list[KekInfo]:
        """The KEK versions, oldest first, with how many data keys each wraps."""
        self._authorize(Capability.READ, KMS_PATH, "kms.list")
        return self._kek_infos()

    def _kek_infos(self) -> list[KekInfo]:
        counts = self._storage.count_versions_by_kek()
        return [
            KekInfo(k.kek_id, k.created_at, k.active, counts.get(k.kek_id, 0))
            for k in self._storage.list_keks()
        ]

    def status(self, *, probe: bool = True) -> KmsStatus:
        """Each provider's reach and which KEKs it opens; ``probe=False`` compares the
        stored wrappings only (no provider is called)."""
        self._authorize(Capability.ADMIN, KMS_PATH, "kms.status")
        keks = self._kek_infos()
        kek_ids = [k.kek_id for k in keks]
        wrappings = self._storage.list_kek_wrappings()
        ring = self._ring() if probe else None
        statuses = []
        problems: list[str] = []
        for row in self._storage.list_key_providers():
            mine = {w.kek_id: w for w in wrappings if w.provider == row.name}
            missing = tuple(k for k in kek_ids if k not in mine)
            found = _probe(self._opener(), row, mine, ring) if probe else None
            reachable, key_id, error, opens = found or (None, "", "", ())
            statuses.append(
                ProviderStatus(
                    row.name,
                    row.kind,
                    key_id,
                    reachable,
                    error,
                    tuple(sorted(mine)),
                    opens,
                    missing,
                )
            )
            if missing:
                problems.append(
                    f"key provider {row.name!r} holds no wrapping of {len(missing)} key-encryption"
                    f" key(s) ({', '.join(missing[:3])}): it cannot open the vault alone"
                )
            if reachable is False:
                problems.append(f"key provider {row.name!r} cannot be used now: {error}")
            elif reachable and set(opens) != set(mine):
                bad = sorted(set(mine) - set(opens))
                problems.append(
                    f"key provider {row.name!r} does not open its wrapping of {', '.join(bad[:3])}"
                    " (the provider's key changed, or the wrapping was altered)"
                )
        wrapped = {w.kek_id for w in wrappings}
        for kek in kek_ids:
            if kek not in wrapped:  # pragma: no cover - storage refuses this state
                problems.append(f"key-encryption key {kek!r} is wrapped by no key provider")
        return KmsStatus(tuple(keks), tuple(statuses), tuple(problems))

    # -- changing -----------------------------------------------------------------------------
    def add(
        self,
        name: str,
        kind: str,
        options: Mapping[str, str],
        *,
        position: int | None = None,
    ) -> KmsAdded:
        """Wrap every KEK under a new provider and store it (one transaction, audited as
        ``kms.add``); each wrapping is unwrapped again first, so a provider that cannot
        open what it wrapped is never stored."""
        from sealbox.kms.local import kek_context
        from sealbox.kms.registry import provider_kind
        from sealbox.storage.rows import KekWrapping, KeyProviderRow

        check_name(name)
        path = provider_path(name)
        self._authorize(Capability.ADMIN, path, "kms.add")
        try:
            ring = self._ring()
            if any(r.name == name for r in self._storage.list_key_providers()):
                from sealbox.errors import AlreadyExists

                raise AlreadyExists(f"key provider {name!r} already exists")
            opener = self._opener()
            new = provider_kind(kind).create(name, options, opener.ctx)
            try:
                now = self._now()
                key_id = new.provider.key_id()
                wrappings = []
                for kek in self._storage.list_keks():
                    ctx = kek_context(self.vault_id, kek.kek_id)
                    key = ring.kek(kek.kek_id)
                    wrapped = new.provider.wrap(key, ctx)
                    _verify(new.provider, wrapped, ctx, key)
                    wrappings.append(KekWrapping(kek.kek_id, name, wrapped, key_id, now))
                rows = self._storage.list_key_providers()
                pos = position if position is not None else max(r.position for r in rows) + 1
                row = KeyProviderRow(name, kind, json.dumps(new.config, sort_keys=True), pos, now)
                if new.keep is not None:
                    new.keep()
                self._audit.settle()  # the chain reaches the database in order
                self._storage.add_key_provider(
                    row,
                    wrappings,
                    audit=lambda: self._record(
                        "kms.add",
                        path,
                        immediate=True,
                        reason=f"{kind}; {len(wrappings)} key-encryption keys wrapped ({key_id})",
                    ),
                    audit_node=self._audit.node,
                    audit_head=self._audit.head_for(self._now()),
                )
            finally:
                new.provider.close()
        except SealboxError as exc:
            self._record_failure("kms.add", path, exc)
            raise
        self._committed()
        return KmsAdded(_info(row), tuple(SecretValue(s.encode()) for s in new.shares))

    def remove(self, name: str) -> None:
        """Drop a provider and its wrappings (audited as ``kms.remove``); refused while it
        is the only one that can open some KEK."""
        path = provider_path(name[:100])
        self._authorize(Capability.ADMIN, path, "kms.remove")
        try:
            self._audit.settle()
            self._storage.remove_key_provider(
                name,
                audit=lambda: self._record("kms.remove", path, immediate=True),
                audit_node=self._audit.node,
                audit_head=self._audit.head_for(self._now()),
            )
        except SealboxError as exc:
            self._record_failure("kms.remove", path, exc)
            raise
        self._committed()

    def _committed(self) -> None:
        self._audit.after_write()
        self._audit.after_commit(self._now())


def _verify(provider: KeyProvider, wrapped: bytes, ctx: bytes, key: bytes) -> None:
    if not hmac.compare_digest(provider.unwrap(wrapped, ctx), key):
        raise KeyProviderError(f"key provider {provider.name!r} did not give back what it wrapped")


def _probe(
    opener: RingOpener, row: KeyProviderRow, mine: Mapping[str, Any], ring: KekRing | None
) -> tuple[bool | None, str, str, tuple[str, ...]]:
    """(reachable, key id, error, KEKs seen to open) for one provider."""
    from sealbox.kms.local import kek_context
    from sealbox.kms.opening import config_of
    from sealbox.kms.registry import provider_kind

    try:
        keeper = opener.keeper
        if keeper is not None and keeper.name == row.name:
            provider, owned = keeper, False
        elif provider_kind(row.kind).interactive(config_of(row)):
            return None, "", "not tried: it needs a person (a passphrase or shares)", ()
        else:
            provider, owned = opener.open_provider(row), True
    except SealboxError as exc:
        return False, "", exc.message, ()
    try:
        try:
            provider.check()
            key_id = provider.key_id()
        except SealboxError as exc:
            return False, "", exc.message, ()
        opens = []
        for kek_id, wrapping in mine.items():
            try:
                got = provider.unwrap(wrapping.wrapped, kek_context(opener.ctx.vault_id, kek_id))
            except SealboxError:
                continue
            if ring is not None and hmac.compare_digest(got, ring.kek(kek_id)):
                opens.append(kek_id)
        return True, key_id, "", tuple(sorted(opens))
    finally:
        if owned:
            provider.close()
