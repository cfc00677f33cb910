"""A KMS call per secret version for a vault's most sensitive secrets, with a data-key cache.

By default a version's data key (DEK) is wrapped by the vault's KEKs in memory
(:class:`~sealbox.kms.local.KekRing`) and a read never calls a key provider. A vault may
opt in, per classification, to have the DEKs of its most sensitive secrets wrapped by one
of its key providers directly (a Transit engine, an HSM, a cloud KMS): each new version of
a secret classified at or above the threshold costs one provider call to write, and a read
unwraps through the provider — through a :class:`DataKeyCache` bounded by age, use count
and entries, so that path stays usable.

Such a version is stored with ``kek_id = "kms:<provider>"`` and a wrapped key
``kms NUL <provider> NUL <the provider's blob>``. Only that provider can open it: storage
refuses to remove the provider while any version uses it, and
:func:`rewrap_per_version` moves them under another provider (resumable).

The setting (``kms_per_version`` in the vault settings, JSON, never secret) is set through
:class:`PerVersionOps` (``Vault.kms_per_version``); a process re-reads it every
:data:`REFRESH_SECONDS`, so a running server follows a change made elsewhere.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NamedTuple

from sealbox.auth.policy import Capability
from sealbox.context import CoreService
from sealbox.errors import InvalidInput, KeyProviderError, SealboxError
from sealbox.kms.per_version import (
    KMS_PREFIX,
    SETTING_KEY,
    CacheStats,
    PerVersionKeys,
    PerVersionSetting,
    is_per_version,
    open_wrapper,
)

if TYPE_CHECKING:
    from sealbox.kms.interface import KeyRing

__all__ = [
    "PerVersionOps",
    "PerVersionSetting",
    "PerVersionStatus",
    "RewrapProgress",
    "rewrap_per_version",
]

#: Audit path and operations.
KEYS_PATH = "sys/kms"  # the key providers' path (kms_ops.KMS_PATH)
CONFIGURE, REWRAP = "kms.per_version", "kms.per_version.rewrap"


# -- the core API -----------------------------------------------------------------------------
class PerVersionStatus(NamedTuple):
    setting: PerVersionSetting | None
    #: Versions wrapped by each provider itself (``kms:NAME`` -> count), stored.
    versions: dict[str, int]
    #: This process's cache and call counters.
    cache: CacheStats


class RewrapProgress(NamedTuple):
    done: int
    total: int


class PerVersionOps(CoreService):
    """Turn per-version KMS wrapping on or off, see its state, move its versions: admin on
    ``sys/kms``, each change audited in its own transaction. ``Vault.kms_per_version``."""

    def _keys(self) -> PerVersionKeys:
        return self._state.per_version_keys()

    @contextlib.contextmanager
    def _audited(self) -> Iterator[None]:
        self._audit.settle()
        self._audit.head_for(self._now())
        yield
        self._audit.after_write()
        self._audit.after_commit(self._now())

    def status(self) -> PerVersionStatus:
        self._authorize(Capability.READ, KEYS_PATH, CONFIGURE)
        counts = {k: n for k, n in self._storage.count_versions_by_kek().items()
                  if is_per_version(k)}  # fmt: skip
        setting = PerVersionSetting.parse(self._storage.get_setting(SETTING_KEY))
        return PerVersionStatus(setting, counts, self._keys().stats())

    def configure(self, setting: PerVersionSetting | None) -> None:
        """Store ``setting`` (None: off; versions already wrapped stay readable). The
        provider must be one of the vault's and reachable now (one wrap and unwrap)."""
        self._authorize(Capability.ADMIN, KEYS_PATH, CONFIGURE)
        self._key_provider()  # the event is keyed; only a key holder turns this on or off
        if setting is not None:
            self._probe(setting.provider)
        reason = "off" if setting is None else setting.to_json()
        try:
            with self._audited():
                self._storage.set_settings(
                    {SETTING_KEY: "" if setting is None else setting.to_json()},
                    audit=lambda: self._record(CONFIGURE, KEYS_PATH, reason=reason,
                                               immediate=True),
                    audit_node=self._audit.node,
                    audit_head=self._audit.head_for(self._now()),
                )  # fmt: skip
        except SealboxError as exc:
            self._record_failure(CONFIGURE, KEYS_PATH, exc)
            raise
        self._keys().use_setting(setting)

    def _probe(self, name: str) -> None:
        if name not in {p.name for p in self._storage.list_key_providers()}:
            raise InvalidInput(
                f"the vault has no key provider {name[:100]!r}",
                hint="add it to the vault's key providers first",
                hint_key="kms_status",
            )
        wrapper = self._keys().wrapper(name)
        ctx = b"sealbox/kms-per-version-probe\x00" + self.vault_id.encode()
        probe = b"\x00" * 32
        if wrapper.unwrap(wrapper.wrap(probe, ctx), ctx) != probe:  # pragma: no cover
            raise KeyProviderError(f"key provider {name!r} did not give back what it wrapped")
        self._keys().cache.clear()  # the probe's key is of no use

    def rewrap(
        self,
        to_provider: str | None,
        *,
        batch: int = 500,
        progress: Callable[[RewrapProgress], None] | None = None,
    ) -> int:
        """Move every ``kms:`` version under ``to_provider`` (None: under the vault's KEKs)
        and point the setting at it, so no new version lands on the old one. Resumable:
        each batch commits on its own, and a rerun continues with what is left. Values are
        never re-encrypted. Returns how many versions moved."""
        self._authorize(Capability.ADMIN, KEYS_PATH, REWRAP)
        ring = self._key_provider()
        keys = self._keys()
        if to_provider is not None:
            self._probe(to_provider)
            current = PerVersionSetting.parse(self._storage.get_setting(SETTING_KEY))
            if current is not None and current.provider != to_provider:
                self.configure(_replace_provider(current, to_provider))
        target_kek = KMS_PREFIX + to_provider if to_provider is not None else None
        counts = self._storage.count_versions_by_kek()
        total = sum(n for k, n in counts.items() if is_per_version(k) and k != target_kek)
        done = 0
        where = f"to {to_provider or 'the key-encryption keys'}"
        after: tuple[int, int] | None = None
        while True:
            rows = self._storage.per_version_to_rewrap(target_kek or "", after=after, limit=batch)
            if not rows:
                break
            after = (rows[-1].secret_id, rows[-1].version)
            moved = []
            for r in rows:
                ctx = self._context(r.project, r.env, r.name, r.version)
                path = f"{r.project}/{r.env}/{r.name}"
                dek = open_wrapper(keys, r.kek_id, path, r.version).unwrap(r.wrapped_key, ctx)
                new_kek, blob = _wrap_for(keys, ring, to_provider, dek, ctx)
                moved.append((r.secret_id, r.version, r.kek_id, new_kek, blob))
            with self._audited():
                done += self._storage.rewrap_versions(
                    moved,
                    audit=lambda n: self._record(REWRAP, KEYS_PATH, immediate=True,
                                                 reason=f"{n} version(s) {where}"),
                    audit_node=self._audit.node,
                    audit_head=self._audit.head_for(self._now()),
                )  # fmt: skip
            if progress is not None:
                progress(RewrapProgress(done, total))
        return done


def _wrap_for(
    keys: PerVersionKeys, ring: KeyRing, to: str | None, dek: bytes, ctx: bytes
) -> tuple[str, bytes]:
    if to is None:
        return ring.current_key_id(), ring.wrap(dek, ctx)
    return KMS_PREFIX + to, keys.wrapper(to).wrap(dek, ctx)


def _replace_provider(setting: PerVersionSetting, provider: str) -> PerVersionSetting:
    return PerVersionSetting(
        provider,
        setting.min_classification,
        setting.cache_max_age,
        setting.cache_max_uses,
        setting.cache_max_entries,
    )


def rewrap_per_version(
    ops: PerVersionOps,
    to_provider: str | None,
    *,
    progress: Callable[[RewrapProgress], None] | None = None,
) -> int:
    """Re-wrap every ``kms:<old>`` version under ``to_provider`` (``kms migrate``); see
    :meth:`PerVersionOps.rewrap`."""
    return ops.rewrap(to_provider, progress=progress)
