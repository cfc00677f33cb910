"""The rotation engine: the core service every rotator runs in (``vault.rotations``).

A rotation runs the four steps AWS Secrets Manager made standard — **create** (the new
value, stored as the secret's pending version), **set** (the upstream system accepts it),
**test** (the pending value works there), **finish** (pending becomes current, current
becomes previous, then the rotator retires what it must) — under a rotation id (AWS's
ClientRequestToken). Each step is recorded before and after it runs, on the rotation's
row and as an audit event naming the rotation (never a value), so a process killed at
any instant leaves a record from which :meth:`RotationOps.resume` runs the interrupted
step again (every step is idempotent; a retried create finds its version by the rotation
id) and :meth:`RotationOps.cancel` undoes it (the upstream system takes the current value
back, the pending version loses its stage, the current one is untouched).

A rotation is held by one process at a time: its row names the owner and a lease, which
every step renews. Another process takes an unfinished rotation over when the lease ran
out, or at once when the owner is a process of this host that no longer exists (a
``sealbox rotate`` killed mid-way). A secret has at most one unfinished rotation: a second
is refused, naming the first.

A step that fails leaves the rotation ``pending`` (the upstream system was unreachable:
resume retries) or ``failed`` (its test refused the value, the rotator raised), with the
reason, and nothing promoted. A dry run (the rehearsal) runs create, set and test, then
undo, and reports whether test passed. Every verb is authorised with ``rotate`` on the
secret; admin secrets a rotator reads (``ctx.secret``) are ordinary audited reads by the
caller. Front ends (CLI, a future HTTP route) are thin calls to this service.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta

from sealbox import rotation_schedule, stages
from sealbox.auth.policy import Capability
from sealbox.context import CoreService
from sealbox.crypto import envelope
from sealbox.errors import (
    AccessDenied,
    Conflict,
    InvalidInput,
    NotFound,
    RotationFailed,
    SealboxError,
    UpstreamError,
)
from sealbox.model import (
    MAX_VALUE_BYTES,
    OPEN_ROTATION_STATES,
    DueOutcome,
    DueRotation,
    RotationConfig,
    RotationInfo,
    RotationState,
    SecretMeta,
    SecretRef,
    SecretValue,
    Stage,
)
from sealbox.rotation.interface import PRIVILEGED_PATH, Rotator, Step, runs_programs
from sealbox.rotation_records import (
    MAX_NOTE,
    MAX_NOTES,
    check_options,
    check_url,
    config_of,
    dump_state,
    info_of,
    is_rotation_id,
    load_state,
    new_rotation_id,
    newest_first,
    owner_gone,
    path_of,
    process_owner,
    ref_of,
)
from sealbox.rotation_step import StepContext
from sealbox.storage.rows import RotationConfigRow, RotationRow, SealedRow

#: How long a step's owner holds a rotation without renewing it (every step renews it).
LEASE = timedelta(minutes=5)
#: The policy path of the rotation listing (``rotation status``) and of rotation ids.
ROTATIONS_PATH = "sys/rotations"
NOTIFY_TIMEOUT = 5.0
MAX_GRACE = timedelta(days=365)
STEPS = (Step.CREATE, Step.SET, Step.TEST, Step.FINISH)
REHEARSAL = (Step.CREATE, Step.SET, Step.TEST, Step.UNDO)


class RotationOps(CoreService):
    """Rotations of one vault's secrets, for one caller."""

    __slots__ = ()

    # -- settings -----------------------------------------------------------------------------
    def configure(
        self,
        ref: SecretRef,
        method: str,
        *,
        options: Mapping[str, str] | None = None,
        grace: timedelta = timedelta(seconds=stages.DEFAULT_GRACE_SECONDS),
        window: str = "",
        start_offset: timedelta = timedelta(0),
        notify_url: str = "",
    ) -> RotationConfig:
        """How ``ref`` is rotated. The rotator checks its options now (a mistake is
        found when configured, not on the due date); the secret's metadata names the
        method (``rotation_method``)."""
        from sealbox.rotation.registry import rotator

        opts = check_options(options or {})
        if not timedelta(0) <= grace <= MAX_GRACE:
            raise InvalidInput(f"the grace window must be 0 to {MAX_GRACE.days} days")
        parsed = rotation_schedule.parse_window(window)
        rotation_schedule.check_offset(parsed, start_offset)
        notify_url = check_url(notify_url)
        self._authorize(Capability.ROTATE, ref.path, "rotation.configure")
        chosen = rotator(method)
        chosen.check(opts)
        if runs_programs(chosen, opts):
            # NOTE: the server runs a rotation's steps: configuring a program is running
            # it there, which a token allowed to rotate one secret must not be able to do.
            self._authorize(Capability.ADMIN, f"{PRIVILEGED_PATH}/{method}", "rotation.configure")
        if notify_url:
            # The vault's host will POST to this URL: an admin's choice, not a rotator's.
            self._authorize(Capability.ADMIN, ref.path, "rotation.configure")
        secret = self._storage.get_secret(ref.project, ref.env, ref.name)
        now = self._now()
        row = RotationConfigRow(
            ref.project,
            ref.env,
            ref.name,
            method,
            json.dumps(opts, sort_keys=True),
            int(grace.total_seconds()),
            str(parsed) if parsed is not None else "",
            int(start_offset.total_seconds()),
            notify_url,
            now,
            self.actor.identity,
        )
        with self._audited():
            self._storage.put_rotation_config(
                row,
                audit=lambda: self._record(
                    "rotation.configure", ref.path, immediate=True, reason=f"method {method}"
                ),
                audit_node=self._audit.node,
            )
        try:
            meta = SecretMeta.from_dict(json.loads(secret.meta_json))
        except (ValueError, TypeError):
            meta = SecretMeta()
        if meta.rotation_method != method:
            updated = meta._replace(rotation_method=method)
            with self._audited():
                self._storage.set_secret_meta(
                    ref.project,
                    ref.env,
                    ref.name,
                    json.dumps(updated.to_dict()),
                    now,
                    audit=lambda: self._record(
                        "metadata.write", ref.path, immediate=True, reason="rotation_method"
                    ),
                    audit_node=self._audit.node,
                )
        return config_of(row)

    def config(self, ref: SecretRef) -> RotationConfig | None:
        """How ``ref`` is rotated (None: it is not)."""
        self._authorize(Capability.LIST, ref.path, "rotation.config")
        row = self._storage.get_rotation_config(ref.project, ref.env, ref.name)
        return config_of(row) if row is not None else None

    def _load_config(self, ref: SecretRef) -> RotationConfigRow:
        row = self._storage.get_rotation_config(ref.project, ref.env, ref.name)
        if row is None:
            self._storage.get_secret(ref.project, ref.env, ref.name)  # NotFound first
            raise InvalidInput(
                f"{ref} has no rotation method",
                hint="configure how it is rotated first (a method such as random)",
                hint_key="rotation_configure",
                hint_args={"path": ref.path},
            )
        return row

    # -- running ------------------------------------------------------------------------------
    def start(
        self, ref: SecretRef, *, dry_run: bool = False, rotation_id: str | None = None
    ) -> RotationInfo:
        """Rotate ``ref`` now (``dry_run``: rehearse, then undo). With the ``rotation_id``
        of a rotation of ``ref`` that exists, that one is resumed (a retried request
        starts no second rotation)."""
        if rotation_id is not None and not is_rotation_id(rotation_id):
            raise InvalidInput("a rotation id is rot_ and 6 to 60 letters, digits, - or _")
        self._authorize(Capability.ROTATE, ref.path, "rotation.start")
        if rotation_id is not None:
            existing = self._storage.get_rotation(rotation_id)
            if existing is not None:
                if ref_of(existing) != ref:
                    raise Conflict(f"rotation {rotation_id} is a rotation of another secret")
                return self._continue(existing)
        cfg = self._load_config(ref)
        rotator = self._rotator(cfg.method)
        secret = self._storage.get_secret(ref.project, ref.env, ref.name)
        if secret.deleted_at is not None:
            raise NotFound(f"secret {ref} is deleted", hint_key="undelete_secret")
        now = self._now()
        row = RotationRow(
            id=rotation_id or new_rotation_id(),
            project=ref.project,
            env=ref.env,
            name=ref.name,
            method=cfg.method,
            state=RotationState.RUNNING.value,
            step=Step.CREATE.value,
            phase="",
            dry_run=dry_run,
            from_version=secret.current_version or None,
            pending_version=None,
            started_at=now,
            updated_at=now,
            finished_at=None,
            error="",
            rotator_state="{}",
            notes="[]",
            actor=self.actor.identity,
            owner=process_owner(),
            lease_until=self._lease_end(),
        )
        reason = f"{row.id} {'dry run ' if dry_run else ''}started"
        with self._audited():
            self._storage.start_rotation(
                row,
                audit=lambda: self._record(
                    "rotation.start", ref.path, row.from_version, immediate=True, reason=reason
                ),
                audit_node=self._audit.node,
            )
        return self._run(row, rotator, cfg)

    def resume(self, target: str | SecretRef) -> RotationInfo:
        """Run an unfinished rotation on from its interrupted or failed step (a finished
        one is returned as it is)."""
        row = self._find(target, "rotation.resume")
        if row.state not in OPEN_ROTATION_STATES:
            return info_of(row)
        return self._continue(row)

    def _continue(self, row: RotationRow) -> RotationInfo:
        if row.state not in OPEN_ROTATION_STATES:
            return info_of(row)
        row = self._take(row)
        if Step(row.step) == Step.UNDO and not row.dry_run:
            # A cancel whose undo failed: resuming it goes on cancelling (the last thing
            # asked of it), never back to promoting what was being taken back.
            return self._cancel(row)
        cfg = self._load_config(ref_of(row))
        return self._run(row, self._rotator(row.method), cfg)

    def cancel(self, target: str | SecretRef) -> RotationInfo:
        """Stop an unfinished rotation and restore what was there before it: the upstream
        system takes the current value back (when ``set`` may have run), the pending
        version loses its stage, the current one is untouched. Refused once the pending
        version was promoted (resume finishes it)."""
        row = self._find(target, "rotation.cancel")
        if row.state not in OPEN_ROTATION_STATES:
            raise Conflict(f"rotation {row.id} is {row.state} already: nothing to cancel")
        return self._cancel(self._take(row))

    def _cancel(self, row: RotationRow) -> RotationInfo:
        ref = ref_of(row)
        pending = row.pending_version or self._storage.version_for_rotation(
            ref.project, ref.env, ref.name, row.id
        )
        row = row._replace(pending_version=pending)
        if pending and self._stage_of(ref, pending) == Stage.CURRENT:
            raise Conflict(
                f"rotation {row.id} promoted version {pending} already: it cannot be cancelled",
                hint="resume it to finish",
                hint_key="rotation_resume",
                hint_args={"rotation": row.id},
            )
        cfg = self._load_config(ref)
        rotator = self._rotator(row.method)
        if Step(row.step) != Step.CREATE:
            # NOTE: set may have run (its start is recorded before it runs): the upstream
            # system must take the current value back before anything else.
            row = self._save(row, Step.UNDO, "started", RotationState.RUNNING)
            row, error = self._attempt(row, Step.UNDO, rotator, cfg)
            if error is not None:
                return self._stop(row, Step.UNDO, error, cfg)
            row = self._save(row, Step.UNDO, "done", RotationState.RUNNING)
        elif pending:
            self._drop_pending(ref, pending, row.id)
        return self._end(row, RotationState.CANCELLED, cfg, "rotation.cancel")

    # -- the steps ----------------------------------------------------------------------------
    def _run(self, row: RotationRow, rotator: Rotator, cfg: RotationConfigRow) -> RotationInfo:
        steps = REHEARSAL if row.dry_run else STEPS
        at = steps.index(Step(row.step)) if row.step in steps else 0
        if row.phase == "done":
            at += 1
        done: Step | None = None
        for step in steps[at:]:
            # NOTE: a step's end and the next one's start are one transaction (two
            # events): nothing runs between them, and a rotation costs a third fewer
            # commits (each one the write lock that every audited read also waits for).
            row = self._save(row, step, "started", RotationState.RUNNING, after=done)
            row, error = self._attempt(row, step, rotator, cfg)
            if error is not None:
                if row.dry_run and step in (Step.SET, Step.TEST):
                    # A rehearsal that failed still ends undone (what it would have done
                    # upstream is taken back); the report says why it failed.
                    row = row._replace(error=error.message)
                    row = self._save(row, Step.UNDO, "started", RotationState.RUNNING)
                    row, undo_error = self._attempt(row, Step.UNDO, rotator, cfg)
                    if undo_error is not None:
                        return self._stop(row, Step.UNDO, undo_error, cfg)
                    row = self._save(row, Step.UNDO, "done", RotationState.RUNNING)
                    return self._end(row, RotationState.REHEARSED, cfg, "rotation.rehearsed")
                return self._stop(row, step, error, cfg)
            done = step
        final = RotationState.REHEARSED if row.dry_run else RotationState.SUCCEEDED
        return self._end(row, final, cfg, f"rotation.{final.value}", after=done)

    def _attempt(
        self, row: RotationRow, step: Step, rotator: Rotator, cfg: RotationConfigRow
    ) -> tuple[RotationRow, SealboxError | None]:
        """Run one step; a failure of any kind comes back as an error (never a crash
        with a half state: the row says which step failed, and why)."""
        ctx = StepContext(
            _Values(self), row, json.loads(cfg.options), load_state(row.rotator_state)
        )
        error: SealboxError | None = None
        try:
            row = self._step(row, step, rotator, ctx)
        except (UpstreamError, RotationFailed) as exc:
            error = exc
        except SealboxError as exc:
            error = RotationFailed(f"{step.value} failed: {exc.message}")
        except Exception as exc:
            # NOTE: the type only: a third party's message may hold anything, a value too.
            error = RotationFailed(
                f"the {row.method} rotator raised {type(exc).__name__} in {step.value}"
            )
        if step == Step.TEST:
            tested = "passed" if error is None else "failed"
            if not isinstance(error, UpstreamError):
                row = row._replace(tested=tested)
        notes = [*json.loads(row.notes), *(f"{step.value}: {n}" for n in ctx.notes)]
        return row._replace(
            rotator_state=dump_state(ctx.state), notes=json.dumps(notes[-MAX_NOTES:])
        ), error

    def _step(
        self, row: RotationRow, step: Step, rotator: Rotator, ctx: StepContext
    ) -> RotationRow:
        ref = ref_of(row)
        if step == Step.CREATE:
            version = self._storage.version_for_rotation(ref.project, ref.env, ref.name, row.id)
            if version is None:
                value = rotator.create(ctx)
                if not isinstance(value, SecretValue):
                    raise RotationFailed(f"the {row.method} rotator's create returned no value")
                version = self._write_pending(ref, value, row.id)
            row = row._replace(pending_version=version)
        elif step == Step.SET:
            rotator.set(ctx)
        elif step == Step.TEST:
            rotator.test(ctx)
        elif step == Step.FINISH:
            assert row.pending_version is not None
            stage = self._stage_of(ref, row.pending_version)
            if stage == Stage.PENDING:
                self._promote(ref, row.pending_version, row.id)
            elif stage != Stage.CURRENT:
                raise RotationFailed(
                    f"version {row.pending_version} of {ref} is no longer pending"
                    f" ({stage.value if stage else 'no stage'}): it cannot be promoted"
                )
            rotator.finish(ctx)
        elif step == Step.UNDO:
            rotator.undo(ctx)
            pending = row.pending_version or self._storage.version_for_rotation(
                ref.project, ref.env, ref.name, row.id
            )
            if pending:
                self._drop_pending(ref, pending, row.id)
            row = row._replace(pending_version=pending)
        ctx.use(row)
        return row

    def _write_pending(self, ref: SecretRef, value: SecretValue, rotation_id: str) -> int:
        """The rotation's pending version, written once (its id found on a retry)."""
        if len(value) > MAX_VALUE_BYTES:
            raise RotationFailed(f"the new value for {ref} is larger than {MAX_VALUE_BYTES} bytes")
        keys = self._key_provider()
        sealer = self._state.per_version_keys().for_write(
            self._storage, ref.project, ref.env, ref.name
        )
        self._audit.audit_keys()
        plaintext = value.reveal_bytes()

        def seal_for(version: int) -> SealedRow:
            sealed = envelope.seal(
                plaintext,
                keys if sealer is None else sealer.wrapper,
                keys.current_key_id() if sealer is None else sealer.kek_id,
                self._context(ref.project, ref.env, ref.name, version),
            )
            self._record(
                "rotation.pending",
                ref.path,
                version,
                touched=((ref.path, version, plaintext),),
                immediate=True,
                reason=rotation_id,
            )
            return SealedRow(sealed.ciphertext, sealed.wrapped_key, sealed.kek_id)

        with self._audited():
            return self._storage.write_version(
                ref.project,
                ref.env,
                ref.name,
                seal_for,
                now=self._now(),
                actor=self.actor.identity,
                plan=stages.new_pending(),
                audit_node=self._audit.node,
                audit_head=self._audit.head_for(self._now()),
                rotation_id=rotation_id,
            )

    def _promote(self, ref: SecretRef, version: int, rotation_id: str) -> None:
        with self._audited():
            self._storage.restage(
                ref.project,
                ref.env,
                ref.name,
                stages.promote(version),
                self._now(),
                audit=lambda: self._record(
                    "rotation.promote", ref.path, version, immediate=True, reason=rotation_id
                ),
                audit_node=self._audit.node,
            )
        self._changed(ref, version, "rotate")

    def _drop_pending(self, ref: SecretRef, version: int, rotation_id: str) -> None:
        if self._stage_of(ref, version) != Stage.PENDING:
            return  # dropped already (a retried undo)
        with self._audited():
            self._storage.restage(
                ref.project,
                ref.env,
                ref.name,
                stages.drop_pending(version),
                self._now(),
                audit=lambda: self._record(
                    "rotation.drop", ref.path, version, immediate=True, reason=rotation_id
                ),
                audit_node=self._audit.node,
            )

    # -- the record ---------------------------------------------------------------------------
    def _save(
        self,
        row: RotationRow,
        step: Step,
        phase: str,
        state: RotationState,
        *,
        outcome: str = "allowed",
        reason: str = "",
        finished: bool = False,
        operation: str = "",
        after: Step | None = None,
    ) -> RotationRow:
        """Store the rotation's progress with the audit event that records it (one
        transaction), renewing this process's lease; ``after``: the step that ended
        before it, whose "done" event goes first."""
        now = self._now()
        new = row._replace(
            step=step.value,
            phase=phase,
            state=state.value,
            updated_at=now,
            finished_at=now if finished else None,
            owner=process_owner(),
            lease_until=self._lease_end(),
        )
        ref = ref_of(row)
        op = operation or f"rotation.{step.value}"
        why = reason or f"{row.id} {phase}"

        def audit() -> None:
            if after is not None:
                self._record(
                    f"rotation.{after.value}",
                    ref.path,
                    new.pending_version,
                    immediate=True,
                    reason=f"{row.id} done",
                )
            self._record(
                op, ref.path, new.pending_version, immediate=True, outcome=outcome, reason=why
            )

        with self._audited():
            self._storage.save_rotation(
                new, expect_owner=row.owner, audit=audit, audit_node=self._audit.node
            )
        return new

    def _stop(
        self, row: RotationRow, step: Step, error: SealboxError, cfg: RotationConfigRow
    ) -> RotationInfo:
        """A failed step: the rotation waits (pending: the upstream system was not
        reachable; failed: otherwise) with the reason, its step to be run again."""
        state = RotationState.PENDING if isinstance(error, UpstreamError) else RotationState.FAILED
        row = row._replace(error=error.message[:1000])
        row = self._save(
            row, step, "started", state, outcome="error", reason=f"{row.id} {error.code}"
        )
        info = info_of(row)
        self._notify(cfg, info)
        return info

    def _end(
        self,
        row: RotationRow,
        state: RotationState,
        cfg: RotationConfigRow,
        operation: str,
        *,
        after: Step | None = None,
    ) -> RotationInfo:
        if row.error and state in (RotationState.SUCCEEDED, RotationState.CANCELLED):
            # A resumed or cancelled rotation is no longer waiting on its failure: the
            # record stops showing it as the rotation's error, its notes keep it.
            notes = [*json.loads(row.notes), f"earlier error: {row.error}"[:MAX_NOTE]]
            row = row._replace(error="", notes=json.dumps(notes[-MAX_NOTES:]))
        row = self._save(
            row,
            Step(row.step),
            "done" if after is not None else row.phase,
            state,
            finished=True,
            operation=operation,
            reason=f"{row.id} {state.value}",
            after=after,
        )
        info = info_of(row)
        self._notify(cfg, info)
        return info

    def _take(self, row: RotationRow) -> RotationRow:
        """Hold ``row`` for this process: it is ours, its lease ran out, or its owner is a
        process of this host that died; else Conflict naming who holds it."""
        me = process_owner()
        if row.owner == me:
            return row
        lease_over = datetime.fromisoformat(row.lease_until) <= self._clock()
        if not (lease_over or owner_gone(row.owner)):
            raise Conflict(
                f"rotation {row.id} is being run by {row.owner} (its lease ends {row.lease_until})",
                hint="wait for it, or retry after the lease ends",
            )
        if not self._storage.claim_rotation(row.id, me, self._lease_end(), expect_owner=row.owner):
            raise Conflict(f"rotation {row.id} was taken over or finished by another process")
        return row._replace(owner=me)

    def _find(self, target: str | SecretRef, operation: str) -> RotationRow:
        if isinstance(target, SecretRef):
            self._authorize(Capability.ROTATE, target.path, operation)
            rows = self._storage.list_rotations(
                project=target.project, env=target.env, name=target.name, open_only=True, limit=1
            )
            if not rows:
                self._storage.get_secret(target.project, target.env, target.name)
                raise NotFound(f"{target} has no unfinished rotation")
            return rows[0]
        if not is_rotation_id(target):
            raise InvalidInput(f"{target[:80]!r} is not a rotation id (rot_…)")
        return self._by_id(target, Capability.ROTATE, operation)

    def _by_id(self, rotation_id: str, capability: Capability, operation: str) -> RotationRow:
        """The rotation ``rotation_id`` if the caller has ``capability`` on its secret.

        A caller refused gets the same answer whether the rotation exists or not (ids can
        be chosen by clients, so an answer that differed would tell them which exist);
        only a caller who may list every rotation (``sys/rotations``) hears "no rotation".
        """
        row = self._storage.get_rotation(rotation_id)
        if row is not None and self.principal.can(ref_of(row).path, capability):
            return row
        if row is None and self.principal.can(ROTATIONS_PATH, Capability.LIST):
            raise NotFound(f"no rotation {rotation_id}")
        where = ref_of(row).path if row is not None else f"{ROTATIONS_PATH}/{rotation_id}"
        with contextlib.suppress(SealboxError):
            self._record(operation, where, outcome="denied", reason=f"{capability.value}")
        raise AccessDenied(f"permission denied: {capability.value} on rotation {rotation_id}")

    # -- what is there ------------------------------------------------------------------------
    def get(self, rotation_id: str) -> RotationInfo:
        """One rotation by its id."""
        if not is_rotation_id(rotation_id):
            raise InvalidInput(f"{rotation_id[:80]!r} is not a rotation id (rot_…)")
        return info_of(self._by_id(rotation_id, Capability.LIST, "rotation.status"))

    def status(self, *, failed_only: bool = False, limit: int = 100) -> list[RotationInfo]:
        """Unfinished rotations first, then the newest finished ones, of the secrets this
        caller may see; ``failed_only``: those waiting on a failure (failed or pending)."""
        rows = [
            r
            for r in self._storage.list_rotations(limit=max(1, min(limit, 1000)) * 4)
            if self.principal.can(ref_of(r).path, Capability.LIST)
        ]
        if failed_only:
            rows = [r for r in rows if r.state in ("failed", "pending")]
        rows.sort(key=lambda r: (r.finished_at is not None, *newest_first(r.started_at)))
        self._record("rotation.status", ROTATIONS_PATH, reason=f"{len(rows[:limit])} rotations")
        return [info_of(r) for r in rows[:limit]]

    def history(self, ref: SecretRef, *, limit: int = 100) -> list[RotationInfo]:
        """The rotations of ``ref``, newest first."""
        self._authorize(Capability.LIST, ref.path, "rotation.history")
        self._storage.get_secret(ref.project, ref.env, ref.name)
        rows = self._storage.list_rotations(
            project=ref.project, env=ref.env, name=ref.name, limit=max(1, min(limit, 1000))
        )
        self._record("rotation.history", ref.path)
        return [info_of(r) for r in rows]

    def revoke(self, ref: SecretRef, version: int) -> None:
        """No one may read ``version`` of ``ref`` any more, by any stage or its number (a
        leaked value). The current and the pending version cannot be revoked: rotate
        first, or cancel the rotation."""
        if version < 1:
            raise InvalidInput("versions are numbered from 1")
        self._authorize(Capability.ROTATE, ref.path, "version.revoke")
        stage = self._stage_of(ref, version)
        if stage == Stage.CURRENT:
            raise Conflict(
                f"version {version} of {ref} is its current version: rotate it first",
                hint_key="rotation_rotate_first",
                hint_args={"path": ref.path},
            )
        if stage == Stage.PENDING:
            raise Conflict(f"version {version} of {ref} is being rotated in: cancel that first")
        if stage == Stage.REVOKED:
            return
        with self._audited():
            self._storage.restage(
                ref.project,
                ref.env,
                ref.name,
                stages.revoke(version),
                self._now(),
                audit=lambda: self._record("version.revoke", ref.path, version, immediate=True),
                audit_node=self._audit.node,
            )
        self._changed(ref, version, "revoke")

    def counts(self, now: datetime | None = None) -> tuple[int, float]:
        """(rotations waiting on a failure, seconds the oldest due rotation has waited;
        0 when none is due) for metrics: counts, never names. Authorised as a listing
        of ``sys/rotations``; not audited (a metrics scrape polls it)."""
        self._authorize(Capability.LIST, ROTATIONS_PATH, "rotation.status")
        now = now or self._clock()
        waiting = [
            r for r in self._storage.list_rotations(open_only=True, limit=10_000)
            if r.state in ("failed", "pending")
        ]  # fmt: skip
        due = self.due(now)
        oldest = max(((now - d.due_at).total_seconds() for d in due), default=0.0)
        return len(waiting), oldest

    # -- schedule -----------------------------------------------------------------------------
    def due(self, now: datetime | None = None) -> list[DueRotation]:
        """The secrets whose scheduled rotation is due at ``now`` (those whose window
        passed unrotated marked overdue), soonest first, that this caller may rotate."""
        now = now or self._clock()
        found: list[DueRotation] = []
        for cfg in self._storage.list_rotation_configs():
            ref = SecretRef(cfg.project, cfg.env, cfg.name)
            if not self.principal.can(ref.path, Capability.ROTATE):
                continue
            slot = self._slot(cfg)
            if slot is not None and slot.due_at <= now:
                found.append(DueRotation(ref, cfg.method, slot.due_at, now >= slot.closes_at))
        found.sort(key=lambda d: d.due_at)
        return found

    def _slot(self, cfg: RotationConfigRow) -> rotation_schedule.Slot | None:
        try:
            secret = self._storage.get_secret(cfg.project, cfg.env, cfg.name)
            meta = SecretMeta.from_dict(json.loads(secret.meta_json))
        except (NotFound, ValueError, TypeError):
            return None
        if secret.deleted_at is not None or not meta.rotate_every_days:
            return None
        base = datetime.fromisoformat(secret.updated_at)
        if secret.current_version:
            with contextlib.suppress(NotFound):
                current = self._storage.read_version(cfg.project, cfg.env, cfg.name, None)
                base = datetime.fromisoformat(current.created_at)
        last = self._storage.list_rotations(
            project=cfg.project, env=cfg.env, name=cfg.name, limit=20
        )
        for r in last:
            if r.state == "succeeded" and r.finished_at:
                base = max(base, datetime.fromisoformat(r.finished_at))
                break
        nominal = base + timedelta(days=int(meta.rotate_every_days))
        window = rotation_schedule.parse_window(cfg.time_window)
        return rotation_schedule.due_slot(
            nominal, window, timedelta(seconds=cfg.start_offset), self.vault_id, path_of(cfg)
        )

    def rotate_due(
        self, *, limit: int | None = None, now: datetime | None = None
    ) -> list[DueOutcome]:
        """Start the due rotations whose window is open now, one secret after another
        (``sealbox rotate --due``, for cron); a secret with an unfinished rotation, or
        whose rotation cannot start, is skipped with the reason."""
        now = now or self._clock()
        outcomes: list[DueOutcome] = []
        started = 0
        for due in self.due(now):
            if limit is not None and started >= limit:
                break
            cfg = self._storage.get_rotation_config(due.ref.project, due.ref.env, due.ref.name)
            window = rotation_schedule.parse_window(cfg.time_window) if cfg else None
            if window is not None and not window.contains(now):
                outcomes.append(DueOutcome(due.ref, None, f"outside its window {window}"))
                continue
            try:
                info = self.start(due.ref)
            except SealboxError as exc:
                outcomes.append(DueOutcome(due.ref, None, exc.message))
                continue
            started += 1
            outcomes.append(DueOutcome(due.ref, info, ""))
        return outcomes

    # -- helpers ------------------------------------------------------------------------------
    def _rotator(self, method: str) -> Rotator:
        from sealbox.rotation.registry import rotator

        return rotator(method)

    def _lease_end(self) -> str:
        return (self._clock() + LEASE).isoformat()

    def _stage_of(self, ref: SecretRef, version: int) -> Stage | None:
        for v in self._storage.history(ref.project, ref.env, ref.name):
            if v.version == version:
                return Stage(v.stage) if v.stage else None
        raise NotFound(f"secret {ref} has no version {version}")

    def _previous_of(self, ref: SecretRef, current: int | None) -> SecretValue | None:
        """The value of the version staged previous (the one before ``current``), if
        any: None once it was archived or revoked (a revoked value is never handed out,
        not even to put it back upstream)."""
        for v in self._storage.history(ref.project, ref.env, ref.name):
            if v.stage == Stage.PREVIOUS.value and v.version != current:
                return self._value_of(ref, v.version)
        return None

    def _value_of(self, ref: SecretRef, version: int) -> SecretValue:
        return self._open(self._storage.read_version(ref.project, ref.env, ref.name, version))

    @contextlib.contextmanager
    def _audited(self) -> Iterator[None]:
        """Around a change whose event is recorded in its own transaction (as in
        :meth:`sealbox.secret_ops.SecretOps._audited`)."""
        self._audit.settle()
        # NOTE: the head signer reads the newest checkpoints once, lazily: before the
        # change's transaction, not inside it (a second transaction there fails).
        self._audit.head_for(self._now())
        yield
        self._audit.after_write()
        self._audit.after_commit(self._now())

    def _changed(self, ref: SecretRef, version: int | None, op: str) -> None:
        from sealbox.secret_ops import SecretOps

        SecretOps(self._state, self._caller)._changed(ref, version, op)

    def _notify(self, cfg: RotationConfigRow, info: RotationInfo) -> None:
        """POST the outcome to the secret's notify URL; a failure is audited, not fatal."""
        if not cfg.notify_url:
            return
        import urllib.error
        import urllib.request

        body = json.dumps(
            {
                "secret": info.ref.path,
                "rotation_id": info.id,
                "state": info.state.value,
                "error": info.error or None,
                "dry_run": info.dry_run,
                "version": info.pending_version,
            }
        ).encode()
        # NOTE: the scheme was checked (http or https) when the URL was configured.
        request = urllib.request.Request(  # noqa: S310
            cfg.notify_url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "sealbox-rotation"},
        )
        try:
            with urllib.request.urlopen(request, timeout=NOTIFY_TIMEOUT) as response:  # noqa: S310
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            status = int(exc.code)
        except (OSError, ValueError) as exc:
            with contextlib.suppress(SealboxError):
                self._record(
                    "rotation.notify",
                    info.ref.path,
                    outcome="error",
                    reason=f"{info.id} {type(exc).__name__}",
                )
            return
        outcome = "allowed" if 200 <= status < 300 else "error"
        with contextlib.suppress(SealboxError):
            self._record(
                "rotation.notify", info.ref.path, outcome=outcome, reason=f"{info.id} {status}"
            )


class _Values:
    """A step's values, through the engine (:class:`~sealbox.rotation_step.Values`)."""

    def __init__(self, ops: RotationOps) -> None:
        self._ops = ops

    def value_of(self, ref: SecretRef, version: int) -> SecretValue:
        return self._ops._value_of(ref, version)

    def previous_of(self, ref: SecretRef, from_version: int | None) -> SecretValue | None:
        return self._ops._previous_of(ref, from_version)

    def read(self, path: str) -> SecretValue:
        """Another secret's current value, read as the rotation's caller (audited)."""
        from sealbox.secret_ops import SecretOps

        return SecretOps(self._ops._state, self._ops._caller).get(SecretRef.parse(path)).value


__all__ = ["DueOutcome", "RotationOps"]
