"""KEK rotation and moving to another key provider, as an audited core service:
``vault.kms_rotation``.

``rotate`` makes a new random KEK, wraps it under EVERY stored key provider (each wrapping
is unwrapped again first where the provider can; any provider that cannot wrap it stops
the rotation before anything is stored), stores it as the active KEK, then re-wraps every
data key that is not under it, batch by batch (one transaction each), and the audit keys.
Values are never re-encrypted: only the wrapped data keys change. A last pass from the
start repeats until it finds nothing, for versions a running server wrote under the old
KEK meanwhile (a server's ring re-reads the active KEK every
:data:`~sealbox.kms.local.REFRESH_SECONDS`).

A rotation killed at any instant resumes: its state is in storage (the active KEK, and
the versions and audit keys not under it). ``rotate`` refuses while such an unfinished
re-wrap exists (it would make yet another KEK); ``rotate(resume=True)`` finishes it.
``retire_old`` then deletes every old KEK that wraps nothing any more.

``migrate`` moves the vault onto one provider: adds it (``vault.kms.add``) unless it is
there, proves it opens every KEK (``vault.kms.status``), then removes every other provider
but those kept. A rerun continues from what is done.

Every step needs ``admin`` on ``sys/kms`` and is audited (``kms.rotate``,
``kms.rewrap``, ``kms.rewrap-audit-keys``, ``kms.rewrap-provider``, ``kms.retire``,
``kms.migrate``; ``kms.add``/``kms.remove`` for the steps of a migration).
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

from sealbox.auth.policy import Capability
from sealbox.context import CoreService
from sealbox.crypto import envelope
from sealbox.errors import (
    AuthenticationFailed,
    Conflict,
    IntegrityError,
    InvalidInput,
    KeyProviderError,
    SealboxError,
    Sealed,
)
from sealbox.kms.local import REFRESH_SECONDS, KekRing, kek_context, new_kek, wrapping_kek
from sealbox.kms_ops import KMS_PATH, KmsOps
from sealbox.model import KekRotated, KmsMigrated, RewrapProgress

if TYPE_CHECKING:
    from sealbox.kms.interface import KeyProvider
    from sealbox.kms.opening import RingOpener
    from sealbox.storage.rows import KekWrapping, RewrapRow

#: Data keys re-wrapped per transaction by default.
DEFAULT_BATCH = 2000
MAX_BATCH = 50_000
#: How long old KEKs are kept after the active one was made before they may be retired:
#: long enough for every running server to have seen the new one.
RETIRE_GRACE = REFRESH_SECONDS + 5.0
#: Per-version KMS wrappings (another module) are not KEK-wrapped: skipped here.
PER_VERSION_PREFIX = "kms:"

Progress = Callable[[RewrapProgress], None]
Stop = Callable[[], bool]


class _Stopped(Exception):
    """Asked to stop between two batches."""


class KmsRotation(CoreService):
    """KEK rotation, re-wrap, retirement and provider migration (module docstring)."""

    __slots__ = ()

    # -- helpers ------------------------------------------------------------------------------
    def _opener(self) -> RingOpener:
        return KmsOps(self._state, self._caller)._opener()

    def _ring(self) -> KekRing:
        return KmsOps(self._state, self._caller)._ring()

    def _active(self) -> str:
        active = next((k.kek_id for k in self._storage.list_keks() if k.active), None)
        if active is None:
            raise KeyProviderError("the vault has no active key-encryption key")
        return active

    def _committed(self) -> None:
        self._audit.after_write()
        self._audit.after_commit(self._now())

    def _tx_audit(self) -> dict[str, Any]:
        self._audit.settle()  # the chain reaches the database in order
        return {"audit_node": self._audit.node, "audit_head": self._audit.head_for(self._now())}

    def _event(self, operation: str, path: str, reason: str) -> Callable[[], None]:
        """Records one event inside a storage transaction."""

        def record() -> None:
            self._record(operation, path, immediate=True, reason=reason)

        return record

    def _rewrap_event(self, target: str) -> Callable[[int], None]:
        def record(n: int) -> None:
            self._record(
                "kms.rewrap",
                KMS_PATH,
                immediate=True,
                reason=f"{n} data key(s) re-wrapped under {target}",
            )

        return record

    def _left_under_others(self, target: str) -> int:
        counts = self._storage.count_versions_by_kek()
        return sum(
            n for k, n in counts.items() if k != target and not k.startswith(PER_VERSION_PREFIX)
        )

    def _audit_key_settings(self) -> dict[str, tuple[str, bytes]]:
        """setting -> (the KEK wrapping it, its context), for the wrapped audit keys."""
        from sealbox.audit import keys as audit_keys

        out: dict[str, tuple[str, bytes]] = {}
        public = audit_keys.verify_key(self._storage)
        contexts = {audit_keys.AUDIT_KEY: audit_keys.audit_key_context(self.vault_id)}
        if public is not None:
            contexts[audit_keys.SIGNING_KEY] = audit_keys.signing_key_context(self.vault_id, public)
        for setting, ctx in contexts.items():
            raw = self._storage.get_setting(setting)
            if raw is None:
                continue
            try:
                blob = base64.b64decode(raw, validate=True)
            except ValueError:
                raise IntegrityError(
                    f"the vault's {setting.replace('_', ' ')} is not valid base64"
                ) from None
            kek = wrapping_kek(blob)
            if kek is None:
                raise IntegrityError(f"the vault's {setting.replace('_', ' ')} is not KEK-wrapped")
            out[setting] = (kek, ctx)
        return out

    def unfinished(self) -> tuple[str, int, int]:
        """(active KEK, data keys not under it, audit keys not under it): a rotation is
        unfinished when either count is not 0."""
        self._authorize(Capability.READ, KMS_PATH, "kms.list")
        active = self._active()
        audit_left = sum(1 for k, _ in self._audit_key_settings().values() if k != active)
        return active, self._left_under_others(active), audit_left

    # -- rotate -------------------------------------------------------------------------------
    def rotate(
        self,
        *,
        resume: bool = False,
        retire_old: bool = False,
        batch: int = DEFAULT_BATCH,
        progress: Progress | None = None,
        stop: Stop | None = None,
        grace: float = RETIRE_GRACE,
        sleep: Callable[[float], None] = time.sleep,
    ) -> KekRotated:
        """Make a new active KEK and re-wrap every data key and audit key under it
        (``resume``: finish the re-wrap under the active KEK, making none). ``stop`` is
        asked after each batch; ``progress`` is told after each. ``retire_old`` deletes the
        old KEKs once nothing uses them, ``grace`` seconds after the active one was made
        at the earliest (waiting meanwhile)."""
        if not 1 <= batch <= MAX_BATCH:
            raise InvalidInput(f"the batch size is 1 to {MAX_BATCH}")
        operation = "kms.rotate"
        self._authorize(Capability.ADMIN, KMS_PATH, operation)
        try:
            ring = self._ring()
            target = self._active()
            created = False
            providers: tuple[str, ...] = ()
            if not resume:
                audit_left = sum(1 for k, _ in self._audit_key_settings().values() if k != target)
                left = self._left_under_others(target)
                if left or audit_left:
                    raise Conflict(
                        f"an earlier key rotation is unfinished: {left} data key(s) and"
                        f" {audit_left} audit key(s) are not yet re-wrapped under the active"
                        f" key-encryption key {target!r}; finish it before making another",
                        hint="resume the unfinished rotation",
                        hint_key="kms_rotate_resume",
                    )
                target, providers = self._new_kek(ring)
                created = True
        except SealboxError as exc:
            self._record_failure(operation, KMS_PATH, exc)
            raise
        return self._finish(
            ring, target, created, providers, retire_old, batch, progress, stop, grace, sleep
        )

    def _new_kek(self, ring: KekRing) -> tuple[str, tuple[str, ...]]:
        """Wrap a new KEK under every provider (refusing before anything is stored if one
        cannot), re-wrap existing KEKs under providers whose key changed, store it."""
        from sealbox.storage.rows import KekRecord

        kek_id, kek = new_kek()
        opened = self._open_every_provider()
        try:
            now = self._now()
            ctx = kek_context(self.vault_id, kek_id)
            wrappings = [self._wrap_checked(p, kek_id, kek, ctx, now) for p, _ in opened]
            providers = self._rewrap_providers([p for p, _ in opened], ring)
            names = ", ".join(p.name for p, _ in opened)
            self._storage.add_kek(
                KekRecord(kek_id, now, True),
                wrappings,
                audit=lambda: self._record(
                    "kms.rotate",
                    KMS_PATH,
                    immediate=True,
                    reason=f"new active key-encryption key {kek_id}, wrapped under {names}",
                ),
                **self._tx_audit(),
            )
            self._committed()
        finally:
            for provider, owned in opened:
                if owned:
                    provider.close()
        ring.add(kek_id, kek, active=True)
        return kek_id, providers

    def _open_every_provider(self) -> list[tuple[KeyProvider, bool]]:
        """Every stored provider, open: (provider, opened here so to be closed)."""
        opener = self._opener()
        keeper = opener.keeper
        opened: list[tuple[KeyProvider, bool]] = []
        try:
            for row in self._storage.list_key_providers():
                if keeper is not None and keeper.name == row.name:
                    opened.append((keeper, False))
                    continue
                try:
                    opened.append((opener.open_provider(row), True))
                except AuthenticationFailed as exc:
                    raise AuthenticationFailed(
                        f"key provider {row.name!r}: {exc.message}; nothing was changed"
                    ) from None
                except SealboxError as exc:
                    raise _unreachable(row.name, exc) from None
        except BaseException:
            for provider, owned in opened:
                if owned:
                    provider.close()
            raise
        return opened

    def _wrap_checked(
        self, provider: KeyProvider, kek_id: str, kek: bytes, ctx: bytes, now: str
    ) -> KekWrapping:
        """``kek`` wrapped by ``provider``, unwrapped again first where it can (a shamir
        provider wraps with its public key and opens only once unsealed)."""
        from sealbox.storage.rows import KekWrapping

        try:
            key_id = provider.key_id()
            wrapped = provider.wrap(kek, ctx)
            try:
                got = provider.unwrap(wrapped, ctx)
            except Sealed:
                got = kek  # public-key wrapping: checked when the provider is unsealed
            if not hmac.compare_digest(got, kek):
                raise KeyProviderError("it did not give back what it wrapped")
        except SealboxError as exc:
            raise _unreachable(provider.name, exc) from None
        return KekWrapping(kek_id, provider.name, wrapped, key_id, now)

    def _rewrap_providers(self, providers: Sequence[KeyProvider], ring: KekRing) -> tuple[str, ...]:
        """Re-wrap existing KEKs under each provider whose key changed (a rotated Transit
        key: the stored ``key_ref`` is not the provider's key id now)."""
        stored = self._storage.list_kek_wrappings()
        done = []
        for provider in providers:
            key_id = provider.key_id()
            stale = [w for w in stored if w.provider == provider.name and w.key_ref != key_id]
            if not stale:
                continue
            now = self._now()
            fresh = [
                self._wrap_checked(
                    provider,
                    w.kek_id,
                    ring.kek(w.kek_id),
                    kek_context(self.vault_id, w.kek_id),
                    now,
                )
                for w in stale
            ]
            path = f"{KMS_PATH}/{provider.name}"
            self._storage.update_key_provider(
                provider.name,
                wrappings=fresh,
                audit=self._event(
                    "kms.rewrap-provider",
                    path,
                    f"{len(fresh)} key-encryption key wrapping(s) re-wrapped under {key_id}",
                ),
                **self._tx_audit(),
            )
            self._committed()
            done.append(provider.name)
        return tuple(done)

    def _finish(
        self,
        ring: KekRing,
        target: str,
        created: bool,
        providers: tuple[str, ...],
        retire_old: bool,
        batch: int,
        progress: Progress | None,
        stop: Stop | None,
        grace: float,
        sleep: Callable[[float], None],
    ) -> KekRotated:
        total = self._left_under_others(target)
        counter = [0]
        report = progress or (lambda _p: None)
        audit_keys = 0
        try:
            self._passes(ring, target, batch, counter, total, report, stop)
            audit_keys = self._rewrap_audit_keys(ring, target)
            retired: tuple[str, ...] = ()
            if retire_old:
                self._wait_grace(target, grace, sleep, stop, counter[0], report)
                self._passes(ring, target, batch, counter, total, report, stop, final=True)
                if stop is not None and stop():
                    raise _Stopped
                retired = self._retire(target)
        except _Stopped:
            return KekRotated(
                target, created, counter[0], audit_keys, providers, (), False,
                self._left_under_others(target),
            )  # fmt: skip
        except SealboxError as exc:
            self._record_failure("kms.rewrap", KMS_PATH, exc)
            raise
        return KekRotated(target, created, counter[0], audit_keys, providers, retired, True, 0)

    def _passes(
        self,
        ring: KekRing,
        target: str,
        batch: int,
        counter: list[int],
        total: int,
        report: Progress,
        stop: Stop | None,
        *,
        final: bool = False,
    ) -> None:
        """Passes from the start until one re-wraps nothing."""
        while True:
            phase = "final" if final else "rewrap"
            n = self._one_pass(ring, target, batch, counter, total, report, stop, phase)
            if n == 0:
                return
            final = True

    def _one_pass(
        self,
        ring: KekRing,
        target: str,
        batch: int,
        counter: list[int],
        total: int,
        report: Progress,
        stop: Stop | None,
        phase: str,
    ) -> int:
        cursor: tuple[int, int] | None = None
        stored = 0
        while True:
            rows = self._storage.versions_to_rewrap(target, after=cursor, limit=batch)
            if not rows:
                return stored
            cursor = (rows[-1].secret_id, rows[-1].version)
            if self._active() != target:
                raise Conflict(
                    f"another key rotation made a newer key-encryption key active while this"
                    f" one re-wrapped under {target!r}: that rotation finishes the re-wrap"
                )
            out, bad = self._rewrapped(ring, target, rows)
            if out:
                n = self._storage.rewrap_versions(
                    out,
                    audit=self._rewrap_event(target),
                    **self._tx_audit(),
                )
                self._committed()
                stored += n
                counter[0] += n
            if bad is not None:
                self._bad_version(*bad, done=counter[0])
            report(RewrapProgress(target, counter[0], max(total, counter[0]), phase))
            if stop is not None and stop():
                raise _Stopped

    def _rewrapped(
        self, ring: KekRing, target: str, rows: Sequence[RewrapRow]
    ) -> tuple[list[tuple[int, int, str, str, bytes]], tuple[RewrapRow, SealboxError] | None]:
        """The batch's re-wrapped data keys, up to the first that does not open."""
        vault_id = self.vault_id
        context = envelope.version_context
        out: list[tuple[int, int, str, str, bytes]] = []
        for r in rows:
            if r.kek_id.startswith(PER_VERSION_PREFIX):
                continue
            ctx = context(vault_id, r.project, r.env, r.name, r.version)
            try:
                key = ring.unwrap(r.wrapped_key, ctx)
            except (IntegrityError, KeyProviderError) as exc:
                return out, (r, exc)
            out.append(
                (r.secret_id, r.version, r.kek_id, target, ring.wrap_under(target, key, ctx))
            )
        return out, None

    def _bad_version(self, row: RewrapRow, exc: SealboxError, *, done: int) -> NoReturn:
        path = f"{row.project}/{row.env}/{row.name}"
        with contextlib.suppress(SealboxError):
            self._record("kms.rewrap", path, row.version, outcome="error", reason=exc.code)
        kept = (
            f"; the {done} data key(s) re-wrapped before it stay re-wrapped, the old"
            " key-encryption keys are kept"
        )
        hint = "restore that version from a backup (or purge the secret), then resume the re-wrap"
        if isinstance(exc, IntegrityError):
            raise IntegrityError(
                f"the re-wrap stopped at {path} version {row.version}: its wrapped data key was"
                f" altered (or moved from another version){kept}",
                hint=hint,
                hint_key="kms_rewrap_bad",
            )
        raise KeyProviderError(
            f"the re-wrap stopped at {path} version {row.version}: its data key is wrapped by"
            f" a key-encryption key this vault does not hold{kept}",
            hint=hint,
            hint_key="kms_rewrap_bad",
        )

    def _rewrap_audit_keys(self, ring: KekRing, target: str) -> int:
        values = {}
        for setting, (kek, ctx) in self._audit_key_settings().items():
            if kek == target:
                continue
            raw = self._storage.get_setting(setting)
            assert raw is not None  # listed above
            try:
                key = ring.unwrap(base64.b64decode(raw), ctx)
            except (IntegrityError, KeyProviderError):
                raise IntegrityError(
                    f"the vault's {setting.replace('_', ' ')} does not open: it was altered",
                    hint="restore the vault's settings from a backup",
                ) from None
            values[setting] = base64.b64encode(ring.wrap_under(target, key, ctx)).decode()
        if values:
            self._storage.set_settings(
                values,
                audit=lambda: self._record(
                    "kms.rewrap-audit-keys",
                    KMS_PATH,
                    immediate=True,
                    reason=f"{len(values)} audit key(s) re-wrapped under {target}",
                ),
                **self._tx_audit(),
            )
            self._committed()
        return len(values)

    # -- retire -------------------------------------------------------------------------------
    def _wait_grace(
        self,
        target: str,
        grace: float,
        sleep: Callable[[float], None],
        stop: Stop | None,
        done: int,
        report: Progress,
    ) -> None:
        """Wait until the active KEK is ``grace`` seconds old (a second at a time, so a
        stop request is heard)."""
        made = next(k.created_at for k in self._storage.list_keks() if k.kek_id == target)
        remaining = grace - (self._clock() - datetime.fromisoformat(made)).total_seconds()
        if remaining > 0:
            report(RewrapProgress(target, done, done, "wait"))
        while remaining > 0:
            if stop is not None and stop():
                raise _Stopped
            step = min(1.0, remaining)
            sleep(step)
            remaining -= step

    def _retire(self, target: str) -> tuple[str, ...]:
        """Delete every inactive KEK that wraps no data key and no audit key; Conflict
        naming those still used."""
        counts = self._storage.count_versions_by_kek()
        audit_keks = {k for k, _ in self._audit_key_settings().values()}
        used = []
        retired = []
        for kek in self._storage.list_keks():
            if kek.kek_id == target or kek.active:
                continue
            if counts.get(kek.kek_id) or kek.kek_id in audit_keks:
                used.append(kek.kek_id)
                continue
            self._storage.delete_kek(
                kek.kek_id,
                audit=self._event("kms.retire", KMS_PATH, f"key-encryption key {kek.kek_id}"),
                **self._tx_audit(),
            )
            self._committed()
            retired.append(kek.kek_id)
        if used:
            raise Conflict(
                f"key-encryption key(s) {', '.join(used[:3])} still wrap data or audit keys:"
                " not retired (they stay, so nothing becomes unreadable)",
                hint="finish the re-wrap, then retire the old keys",
                hint_key="kms_rotate_resume",
            )
        return tuple(retired)

    def retire(self) -> tuple[str, ...]:
        """Delete the old KEKs nothing uses any more (refused, Conflict, while one is)."""
        self._authorize(Capability.ADMIN, KMS_PATH, "kms.retire")
        try:
            return self._retire(self._active())
        except SealboxError as exc:
            self._record_failure("kms.retire", KMS_PATH, exc)
            raise

    # -- migrate ------------------------------------------------------------------------------
    def migrate(
        self,
        to: str,
        *,
        kind: str | None = None,
        options: Mapping[str, str] | None = None,
        keep: Sequence[str] = (),
    ) -> KmsMigrated:
        """Move the vault onto provider ``to`` (added first with ``kind`` and ``options``
        when it is not there), then remove every other provider but ``keep``. Nothing is
        removed before ``to`` is seen to open every KEK. A rerun continues."""
        operation = "kms.migrate"
        path = f"{KMS_PATH}/{to[:100]}"
        self._authorize(Capability.ADMIN, KMS_PATH, operation)
        kms = KmsOps(self._state, self._caller)
        try:
            rows = {r.name: r for r in self._storage.list_key_providers()}
            unknown = sorted(set(keep) - set(rows) - {to})
            if unknown:
                raise InvalidInput(f"no key provider to keep named {', '.join(unknown)[:100]}")
            added = False
            shares: tuple[Any, ...] = ()
            if to not in rows:
                if not kind:
                    raise InvalidInput(
                        f"the vault has no key provider {to[:100]!r}: give its kind (and its"
                        " options) to add it"
                    )
                made = kms.add(to, kind, dict(options or {}))
                added, shares = True, made.shares
            elif kind and rows[to].kind != kind:
                raise InvalidInput(
                    f"key provider {to!r} is a {rows[to].kind!r} provider, not {kind!r}"
                )
            self._prove(kms, to)
            self._per_version(to, keep)
            removed = []
            for name in [r.name for r in self._storage.list_key_providers()]:
                if name == to or name in keep:
                    continue
                kms.remove(name)
                removed.append(name)
            kept = tuple(n for n in keep if n != to)
            self._record(
                operation,
                path,
                reason=f"onto {to}; removed {', '.join(removed) or 'none'};"
                f" kept {', '.join(kept) or 'none'}",
            )
            self._audit.flush()
        except SealboxError as exc:
            self._record_failure(operation, path, exc)
            raise
        return KmsMigrated(to, added, tuple(removed), kept, shares)

    def _prove(self, kms: KmsOps, to: str) -> None:
        status = kms.status(probe=True)
        mine = next(p for p in status.providers if p.name == to)
        every = {k.kek_id for k in status.keks}
        if mine.reachable is not True or set(mine.opens) != every:
            why = mine.error or (
                f"it opens {len(mine.opens)} of the {len(every)} key-encryption keys"
            )
            raise KeyProviderError(
                f"key provider {to!r} is not proven to open every key-encryption key ({why}):"
                " nothing was removed",
                hint_key="kms_status",
            )

    def _per_version(self, to: str, keep: Sequence[str]) -> None:
        """Versions a provider wraps itself (``kms per-version``) follow the move when
        their provider is about to be removed: re-wrapped under ``to`` first, resumably."""
        from sealbox.kms.per_version import provider_of
        from sealbox.kms_per_version import PerVersionOps

        ops = PerVersionOps(self._state, self._caller)
        found = ops.status()
        moving = {provider_of(k) for k, n in found.versions.items() if n} - {to, *keep}
        setting = found.setting
        if moving or (setting is not None and setting.provider not in (to, *keep)):
            ops.rewrap(to)


def _unreachable(name: str, exc: SealboxError) -> KeyProviderError:
    return KeyProviderError(
        f"key provider {name!r} cannot wrap the new key-encryption key ({exc.message}):"
        " nothing was changed; every provider must wrap it",
        hint="make the provider reachable (or remove it), then rotate again",
        hint_key="kms_status",
    )
