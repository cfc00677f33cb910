"""The secret verbs of the core API: projects, environments, secrets, versions, metadata.

Reached through the facade (:class:`sealbox.vault.Vault` delegates each verb here) or as
``vault.secrets``. Every operation is authorised and leaves an audit event; a write's
event is stored in the write's own transaction (fail closed).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sealbox.auth.policy import Capability
from sealbox.changes import ChangeEvent
from sealbox.context import CoreService
from sealbox.crypto import envelope
from sealbox.errors import InvalidInput, NotFound, SealboxError
from sealbox.model import (
    DEFAULT_ENVIRONMENTS,
    MAX_VALUE_BYTES,
    META_FIELDS,
    Classification,
    Secret,
    SecretInfo,
    SecretMeta,
    SecretRef,
    SecretValue,
    Stage,
    VersionInfo,
    validate_name,
    validate_scope,
)
from sealbox.stages import new_current
from sealbox.storage.rows import SealedRow, SecretRow, VersionRow


def _read_stage(stage: Stage | str | None) -> Stage | None:
    if stage is None:
        return None
    readable = (Stage.CURRENT, Stage.PENDING, Stage.PREVIOUS)
    try:
        wanted = Stage(stage)
    except ValueError:
        wanted = None
    if wanted not in readable:
        raise InvalidInput(
            f"a version is read by stage {', '.join(s.value for s in readable)}"
            f" (not {str(stage)[:20]!r})"
        )
    return wanted


class SecretOps(CoreService):
    """Secrets, versions and metadata of one vault, for one caller."""

    __slots__ = ()

    # -- projects and environments ------------------------------------------------------------
    def create_project(
        self, project: str, *, environments: tuple[str, ...] = DEFAULT_ENVIRONMENTS
    ) -> None:
        validate_scope("project", project)
        for env in environments:
            validate_scope("environment", env)
        self._authorize(Capability.ADMIN, f"{project}/*/*", "project.create")
        now = self._now()
        self._storage.create_project(project, now)
        for env in environments:
            self._storage.create_env(project, env, now)
        self._record("project.create", project)

    def list_projects(self) -> list[str]:
        """Projects this identity can see anything of."""
        return [
            p
            for p in self._storage.list_projects()
            if self.principal.can("sys/projects", Capability.LIST)
            or self.principal.can(f"{p}/*/*", Capability.LIST)
        ]

    def create_env(self, project: str, env: str) -> None:
        validate_scope("project", project)
        validate_scope("environment", env)
        self._authorize(Capability.ADMIN, f"{project}/{env}/*", "env.create")
        self._storage.create_env(project, env, self._now())
        self._record("env.create", f"{project}/{env}")

    def list_envs(self, project: str) -> list[str]:
        validate_scope("project", project)
        self._authorize(Capability.LIST, f"{project}/*/*", "env.list")
        return self._storage.list_envs(project)

    # -- writing ------------------------------------------------------------------------------
    def _write(
        self,
        ref: SecretRef,
        value: SecretValue,
        *,
        if_version: int | None,
        rollback_of: int | None,
        operation: str,
    ) -> int:
        if len(value) > MAX_VALUE_BYTES:
            raise InvalidInput(f"the value for {ref} is larger than {MAX_VALUE_BYTES} bytes")
        if if_version is not None and if_version < 0:
            raise InvalidInput(
                "the expected version (if_version) must be 0 (not yet created) or a version number",
                hint_key="if_version",
            )
        self._authorize(Capability.WRITE, ref.path, operation)
        keys = self._key_provider()
        sealer = self._state.per_version_keys().for_write(
            self._storage, ref.project, ref.env, ref.name
        )
        self._audit.audit_keys()  # loaded now: seal_for runs inside the write transaction
        plaintext = value.reveal_bytes()

        def seal_for(version: int) -> SealedRow:
            sealed = envelope.seal(
                plaintext,
                keys if sealer is None else sealer.wrapper,
                keys.current_key_id() if sealer is None else sealer.kek_id,
                self._context(ref.project, ref.env, ref.name, version),
            )
            # Fail closed for writes: the event goes into the write's own transaction, so
            # a version whose event no sink accepts is never committed.
            self._record(
                operation,
                ref.path,
                version,
                touched=((ref.path, version, plaintext),),
                immediate=True,
            )
            return SealedRow(sealed.ciphertext, sealed.wrapped_key, sealed.kek_id)

        self._audit.settle()  # the chain reaches the database in order
        try:
            version = self._storage.write_version(
                ref.project,
                ref.env,
                ref.name,
                seal_for,
                now=self._now(),
                actor=self.actor.identity,
                plan=new_current(),
                expected_version=if_version,
                rollback_of=rollback_of,
                audit_node=self._audit.node,
                audit_head=self._audit.head_for(self._now()),
            )
        except SealboxError as exc:
            self._record_failure(operation, ref.path, exc)
            raise
        self._audit.after_write()
        self._audit.after_commit(self._now())
        self._changed(ref, version, operation)
        return version

    def set(self, ref: SecretRef, value: SecretValue, *, if_version: int | None = None) -> int:
        """Write a new version; returns its number. ``if_version`` makes it compare-and-set."""
        return self._write(ref, value, if_version=if_version, rollback_of=None, operation="write")

    def rollback(self, ref: SecretRef, version: int, *, if_version: int | None = None) -> int:
        """A new version with the content of an old one."""
        self._authorize(Capability.WRITE, ref.path, "rollback")
        old = self._read_row(ref, version, operation="rollback")
        value = self._open(old)
        return self._write(
            ref, value, if_version=if_version, rollback_of=version, operation="rollback"
        )

    # -- reading ------------------------------------------------------------------------------
    def _read_row(
        self,
        ref: SecretRef,
        version: int | None,
        *,
        operation: str,
        stage: Stage | None = None,
    ) -> VersionRow:
        if version is not None and version < 1:
            raise InvalidInput("versions are numbered from 1")
        try:
            if stage is None or stage == Stage.CURRENT:
                row = self._storage.read_version(ref.project, ref.env, ref.name, version)
            else:
                row = self._storage.read_stage(ref.project, ref.env, ref.name, stage.value)
                if stage == Stage.PREVIOUS:
                    self._within_grace(ref, row)
            if row.stage == Stage.REVOKED:
                # NOTE: a revoked version (a leaked value) is read by no one, not even by
                # its number: rollback cannot bring it back either.
                raise NotFound(
                    f"version {row.version} of {ref} is revoked: it can no longer be read",
                    hint="read the current version",
                )
        except SealboxError as exc:
            self._record_failure(operation, ref.path, exc)
            raise
        return row

    def _within_grace(self, ref: SecretRef, row: VersionRow) -> None:
        """The previous version is read by its stage only during the secret's grace window."""
        from datetime import timedelta

        from sealbox.stages import DEFAULT_GRACE_SECONDS

        cfg = self._storage.get_rotation_config(ref.project, ref.env, ref.name)
        grace = timedelta(seconds=cfg.grace_seconds if cfg else DEFAULT_GRACE_SECONDS)
        since = datetime.fromisoformat(row.staged_at or row.created_at)
        if grace <= timedelta(0) or self._clock() >= since + grace:
            raise NotFound(
                f"the previous version of {ref} (version {row.version}) is past its grace"
                f" window ({int(grace.total_seconds())} s after it was replaced)",
                hint="read the current version",
            )

    def get(
        self,
        ref: SecretRef,
        *,
        version: int | None = None,
        reveal: bool = False,
        stage: Stage | str | None = None,
    ) -> Secret:
        """A version's value (current by default; or by ``stage``: ``pending`` — being
        rotated in — or ``previous``, during the secret's grace window).

        ``reveal`` records that a person was shown the value, as opposed to a program
        receiving it.
        """
        wanted = _read_stage(stage)
        if wanted is not None and version is not None:
            raise InvalidInput("ask for a version or a stage, not both")
        operation = "reveal" if reveal else "read"
        self._authorize(Capability.READ, ref.path, operation)
        row = self._read_row(ref, version, operation=operation, stage=wanted)
        try:
            value = self._open(row)
        except SealboxError as exc:
            self._record_failure(operation, ref.path, exc)
            raise
        touched = ((ref.path, row.version, value.reveal_bytes()),)
        self._record(operation, ref.path, row.version, touched=touched)
        return Secret(ref, row.version, value, datetime.fromisoformat(row.created_at))

    def resolve(
        self, project: str, env: str, *, only: list[str] | None = None, purpose: str = "run"
    ) -> dict[str, SecretValue]:
        """Every current secret of an environment, for injection into a process."""
        validate_scope("project", project)
        validate_scope("environment", env)
        if only is not None:
            for name in only:
                validate_name(name)
                self._authorize(Capability.READ, f"{project}/{env}/{name}", purpose)
        rows = self._storage.read_current(project, env, only)
        if only is not None:
            missing = sorted(set(only) - {r.name for r in rows})
            if missing:
                raise NotFound(f"no secret named {', '.join(missing)} in {project}/{env}")
        # An identity receives exactly the secrets it may read.
        rows = [r for r in rows if self.principal.can(f"{project}/{env}/{r.name}", Capability.READ)]
        if (
            only is None
            and not rows
            and not self.principal.can(f"{project}/{env}/*", Capability.LIST)
        ):
            # Nothing readable here: refuse rather than hand out an empty environment.
            self._authorize(Capability.READ, f"{project}/{env}/*", purpose)
        values = {row.name: self._open(row) for row in rows}
        self._record(
            purpose,
            f"{project}/{env}",
            reason=f"{len(values)} secrets",
            touched=[
                (f"{project}/{env}/{row.name}", row.version, values[row.name].reveal_bytes())
                for row in rows
            ],
        )
        return values

    def _info(self, row: SecretRow) -> SecretInfo:
        try:
            meta = SecretMeta.from_dict(json.loads(row.meta_json))
        except (ValueError, TypeError):
            meta = SecretMeta()
        return SecretInfo(
            ref=SecretRef(row.project, row.env, row.name),
            current_version=row.current_version,
            created_at=datetime.fromisoformat(row.created_at),
            updated_at=datetime.fromisoformat(row.updated_at),
            deleted_at=datetime.fromisoformat(row.deleted_at) if row.deleted_at else None,
            meta=meta,
        )

    def list_secrets(
        self, project: str, env: str, *, include_deleted: bool = False
    ) -> list[SecretInfo]:
        """Names and metadata of an environment's secrets; never values."""
        validate_scope("project", project)
        validate_scope("environment", env)
        self._authorize(Capability.LIST, f"{project}/{env}/*", "list")
        rows = self._storage.list_secrets(project, env, include_deleted=include_deleted)
        self._record("list", f"{project}/{env}")
        return [self._info(r) for r in rows]

    def versions(self, project: str, env: str) -> dict[str, int]:
        """Current version of every live secret of an environment (``run --watch`` polls it).

        Authorised like :meth:`list_secrets`; not audited on success, because a watcher
        calls it every second and it reveals no more than a listing.
        """
        validate_scope("project", project)
        validate_scope("environment", env)
        self._authorize(Capability.LIST, f"{project}/{env}/*", "list")
        return {r.name: r.current_version for r in self._storage.list_secrets(project, env)}

    def info(self, ref: SecretRef) -> SecretInfo:
        self._authorize(Capability.LIST, ref.path, "metadata.read")
        row = self._storage.get_secret(ref.project, ref.env, ref.name)
        self._record("metadata.read", ref.path)
        return self._info(row)

    def history(self, ref: SecretRef) -> list[VersionInfo]:
        self._authorize(Capability.LIST, ref.path, "history")
        rows = self._storage.history(ref.project, ref.env, ref.name)
        self._record("history", ref.path)
        return [
            VersionInfo(
                version=r.version,
                stage=Stage(r.stage) if r.stage else None,
                created_at=datetime.fromisoformat(r.created_at),
                created_by=r.created_by,
                kek_id=r.kek_id,
                rollback_of=r.rollback_of,
            )
            for r in rows
        ]

    # -- metadata -----------------------------------------------------------------------------
    def update_meta(self, ref: SecretRef, **changes: Any) -> SecretMeta:
        """Change inventory fields; ``None`` clears a field."""
        unknown = set(changes) - META_FIELDS
        if unknown:
            raise InvalidInput(f"unknown metadata field(s): {', '.join(sorted(unknown))}")
        if "classification" in changes and changes["classification"] is not None:
            try:
                changes["classification"] = Classification(changes["classification"])
            except ValueError:
                raise InvalidInput(
                    "classification must be one of: " + ", ".join(c.value for c in Classification)
                ) from None
        self._authorize(Capability.WRITE, ref.path, "metadata.write")
        current = self._info(self._storage.get_secret(ref.project, ref.env, ref.name)).meta
        updated = current._replace(**changes)
        reason = ",".join(sorted(changes))
        with self._audited():
            self._storage.set_secret_meta(
                ref.project,
                ref.env,
                ref.name,
                json.dumps(updated.to_dict()),
                self._now(),
                audit=lambda: self._record_in_tx("metadata.write", ref.path, reason=reason),
                audit_node=self._audit.node,
            )
        return updated

    def _record_in_tx(self, operation: str, path: str, reason: str = "") -> None:
        """Record inside the change's own transaction (fail closed, like writes)."""
        self._record(operation, path, immediate=True, reason=reason)

    @contextlib.contextmanager
    def _audited(self) -> Iterator[None]:
        """Around a change whose event is recorded in its own transaction: the spooled
        chain is stored first and continues after it (as for :meth:`_write`)."""
        self._audit.settle()
        yield
        self._audit.after_write()
        self._audit.after_commit(self._now())

    # -- deleting -----------------------------------------------------------------------------
    def delete(self, ref: SecretRef) -> None:
        """Soft delete: hidden from reads and runs until undeleted; versions kept."""
        self._authorize(Capability.DELETE, ref.path, "delete")
        with self._audited():
            self._storage.soft_delete(
                ref.project,
                ref.env,
                ref.name,
                self._now(),
                audit=lambda: self._record_in_tx("delete", ref.path),
                audit_node=self._audit.node,
            )
        self._changed(ref, None, "delete")

    def undelete(self, ref: SecretRef) -> None:
        self._authorize(Capability.DELETE, ref.path, "undelete")
        with self._audited():
            self._storage.undelete(
                ref.project,
                ref.env,
                ref.name,
                self._now(),
                audit=lambda: self._record_in_tx("undelete", ref.path),
                audit_node=self._audit.node,
            )
        self._changed(ref, None, "undelete")

    def purge(self, ref: SecretRef) -> int:
        """Destroy a secret and every version. Irreversible."""
        return self._purge(ref, Capability.ADMIN)

    def _purge(self, ref: SecretRef, capability: Capability) -> int:
        # NOTE: KV's metadata DELETE purges with Vault's delete capability (documents.py).
        self._authorize(capability, ref.path, "purge")
        with self._audited():
            count = self._storage.purge(
                ref.project,
                ref.env,
                ref.name,
                audit=lambda n: self._record_in_tx(
                    "purge", ref.path, reason=f"{n} versions destroyed"
                ),
                audit_node=self._audit.node,
            )
        self._changed(ref, None, "purge")
        return count

    # -- change notices -----------------------------------------------------------------------
    def _changed(self, ref: SecretRef, version: int | None, op: str) -> None:
        # NOTE: the change is committed; announcing it is best effort and never an error
        # (a process that misses a notice catches up from its next snapshot).
        from sealbox.changes import encode_change

        try:
            feed = self._storage.change_feed()
            feed.publish(encode_change(ref.project, ref.env, ref.name, version, op, feed.origin))
        except Exception as exc:
            import logging

            logging.getLogger("sealbox.changes").warning(
                "change notice not published: %s", type(exc).__name__
            )
        on_change = self._state.on_change
        if on_change is not None:
            # NOTE: the change is committed; a failing observer must not turn it into an error.
            with contextlib.suppress(Exception):
                on_change(ChangeEvent(ref.project, ref.env, ref.name, version, op))
