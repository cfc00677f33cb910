"""The core API: the one place where an operation is authorised, audited, encrypted, stored.

Front ends (CLI, server, SDK) hold a :class:`Vault` built by :mod:`sealbox.factory` and
never touch storage or keys themselves. Keys are obtained lazily: listing names and
metadata works on a locked vault, reading or writing a value asks the unlocker once.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from sealbox.audit.recorder import AuditRecorder, Touched
from sealbox.auth.policy import Capability
from sealbox.auth.principal import Principal, local_owner
from sealbox.caller import Actor
from sealbox.changes import ChangeEvent
from sealbox.crypto import envelope
from sealbox.errors import (
    AccessDenied,
    IntegrityError,
    InvalidInput,
    KeyProviderError,
    NotFound,
    SealboxError,
    Sealed,
)
from sealbox.kms.interface import KeyProvider
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
from sealbox.storage.rows import SealedRow, SecretRow, VersionRow

if TYPE_CHECKING:
    from sealbox.audit.query import Access, Reader
    from sealbox.audit.verify import SpoolReport, Verification
    from sealbox.audit_commit import AuditCommit
    from sealbox.auth.service import Accounts, Authenticator, IdentityInfo
    from sealbox.changes import ChangeFeed
    from sealbox.keys import KeyOps
    from sealbox.kms.interface import Unlocker
    from sealbox.storage.interface import Storage
    from sealbox.storage.rows import CheckpointRow

Clock = Callable[[], datetime]
KeyLoader = Callable[[], KeyProvider]


def utcnow() -> datetime:
    return datetime.now(UTC)


class KnownValue(NamedTuple):
    """A managed value, for the scanner's exact-leak detector."""

    path: str
    version: int
    value: SecretValue


class ValueMatch(NamedTuple):
    """A candidate value that equals a managed secret's version (for doctor)."""

    candidate: int
    path: str
    version: int


ChangeObserver = Callable[[ChangeEvent], None]


def _event_actor(actor: Actor, principal: Principal) -> Actor:
    """The actor as events name it: with the principal's id, auth method, token accessor."""
    if actor.identity_id and actor.auth_method and actor.token_accessor:
        return actor
    return actor._replace(
        identity_id=actor.identity_id or principal.identity_id,
        auth_method=actor.auth_method or principal.auth_method,
        token_accessor=actor.token_accessor or principal.token_accessor,
    )


class Vault:
    """Secrets, versions and metadata of one vault."""

    #: The audit-commit strategy (:attr:`audit_commit`), made on first use or by serve().
    _commit: AuditCommit | None = None

    def __init__(
        self,
        *,
        storage: Storage,
        vault_id: str,
        keys: KeyLoader,
        actor: Actor,
        principal: Principal | None = None,
        clock: Clock = utcnow,
        on_change: ChangeObserver | None = None,
        audit: AuditRecorder | None = None,
        unlocker: Unlocker | None = None,
    ) -> None:
        self._storage = storage
        #: Called after every committed change of a secret (the server's live updates).
        self.on_change = on_change
        self.vault_id = vault_id
        self._key_loader = keys
        self._keys: KeyProvider | None = None
        #: Opens the key provider for the key operations (:attr:`keys`); None when the
        #: caller only handed over a loader.
        self._unlocker = unlocker
        self.actor = actor
        self.principal = principal or local_owner(actor.identity)
        self._clock = clock
        self._audit = audit if audit is not None else AuditRecorder(storage)
        self._event_actor = _event_actor(actor, self.principal)

    @property
    def audit_fail_open(self) -> bool:
        """True when the unsafe development setting lets operations run unaudited."""
        return self._audit.fail_open

    def as_principal(self, principal: Principal, actor: Actor) -> Vault:
        """The same vault (storage, unlocked keys) acting for another identity."""
        # NOTE: a server makes one view per request; copying the attributes costs a third
        # of running __init__ again.
        view = Vault.__new__(Vault)
        view.__dict__.update(self.__dict__)
        view._key_loader = self._key_provider
        view.actor = actor
        view.principal = principal
        view._event_actor = _event_actor(actor, principal)
        return view

    @property
    def accounts(self) -> Accounts:
        """Identities, tokens and policies, administered as this vault's principal."""
        from sealbox.auth.service import Accounts

        return Accounts(self._storage, self.principal, self._event_actor, self._clock, self._audit)

    @property
    def keys(self) -> KeyOps:
        """Unlock sessions and the master key (unlock, lock, passphrase change), audited."""
        from sealbox.keys import KEYS_PATH, KeyOps

        if self._unlocker is None:
            raise KeyProviderError("this vault was opened without its key provider's unlocker")
        self._authorize(Capability.ADMIN, KEYS_PATH, "keys")
        return KeyOps(
            storage=self._storage,
            vault_id=self.vault_id,
            unlocker=self._unlocker,
            audit=self._audit,
            actor=self._event_actor,
            clock=self._clock,
            opened=self._use_keys,
        )

    def recover_admin(self, name: str, password: str) -> IdentityInfo:
        """Give person ``name`` the root policy and a new password (issue 10: recovering a
        lost admin). Loads the vault's keys first: only the master key's holder may."""
        self._key_provider()
        return self.accounts.recover_admin(name, password)

    def authenticator(self) -> Authenticator:
        """Turns credentials into principals (for the server's login and token checks)."""
        from sealbox.auth.service import Authenticator

        return Authenticator(self._storage, self._clock, self._audit)

    def _authorize(self, capability: Capability, path: str, operation: str) -> None:
        """Default deny. A denial says nothing about whether the target exists."""
        decision = self.principal.decide(path, capability)
        if not decision.allowed:
            with contextlib.suppress(SealboxError):
                self._record(operation, path, outcome="denied", reason=decision.reason)
            raise AccessDenied(f"permission denied: {capability.value} on {path}")

    def __repr__(self) -> str:
        return f"Vault(id={self.vault_id!r}, storage={self._storage.description!r})"

    # -- plumbing -----------------------------------------------------------------------------
    def _now(self) -> str:
        return self._clock().isoformat()

    def _key_provider(self) -> KeyProvider:
        if self._keys is None:
            self._use_keys(self._key_loader())
            assert self._keys is not None
        return self._keys

    def _use_keys(self, provider: KeyProvider) -> None:
        self._keys = provider
        self._audit.use_keys(provider, self.vault_id)

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
        self._audit.record(
            at=self._now(),
            actor=self._event_actor,
            operation=operation,
            path=path,
            version=version,
            touched=touched,
            immediate=immediate,
            **kw,
        )

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
        if self.on_change is not None:
            # NOTE: the change is committed; a failing observer must not turn it into an error.
            with contextlib.suppress(Exception):
                self.on_change(ChangeEvent(ref.project, ref.env, ref.name, version, op))

    def _record_failure(self, operation: str, path: str, exc: SealboxError) -> None:
        # The original error is what the caller must see.
        with contextlib.suppress(SealboxError):
            self._record(operation, path, outcome="error", reason=exc.code)

    def _context(self, project: str, env: str, name: str, version: int) -> bytes:
        return envelope.version_context(self.vault_id, project, env, name, version)

    def _open(self, row: VersionRow) -> SecretValue:
        ctx = self._context(row.project, row.env, row.name, row.version)
        try:
            plaintext = envelope.open_sealed(
                row.ciphertext, row.wrapped_key, self._key_provider(), ctx
            )
        except IntegrityError:
            raise IntegrityError(
                f"integrity check failed for {row.project}/{row.env}/{row.name} version "
                f"{row.version}: the stored ciphertext was altered or moved",
                hint="restore the vault from a backup, or roll back to another version",
            ) from None
        return SecretValue(plaintext)

    def close(self) -> None:
        try:
            self._audit.close()
        finally:
            self._storage.close()

    def change_feed(self) -> ChangeFeed:
        """This process's link to the change notices of every process on this vault."""
        return self._storage.change_feed()

    def serve(self, *, spool: bool = True) -> None:
        """A server process owns this vault: move storage housekeeping off the request
        path, and choose how its audit events are made durable from now on
        (:attr:`audit_commit`): spooled where the backend can, else group-committed."""
        from sealbox.audit.commit import GroupCommit, SpoolCommit

        self._storage.serve()
        found = None
        with contextlib.suppress(Sealed):  # a sealed vault: group commit, no spool keys
            if spool:
                self._key_provider()
                found = self._audit.spool()
        if found is None:
            self._commit = GroupCommit(self._audit)
            return
        self._commit = SpoolCommit(self._audit)
        for problem in found:
            # Evidence in the chain itself: someone may have edited the spool file.
            self._record("audit.recover", "sys/audit", outcome="error", reason=problem)

    @property
    def audit_commit(self) -> AuditCommit:
        """How this process's audit events become durable (``audit_commit.py``): each in
        its own transaction until :meth:`serve` chose the spool or group commit."""
        if self._commit is None:
            from sealbox.audit.commit import DirectCommit

            self._commit = DirectCommit()
        return self._commit

    def open_keys(self) -> None:
        """Obtain the key provider now rather than on first use (a server must not start sealed)."""
        self._key_provider()

    def health(self) -> dict[str, str]:
        """Storage and key-provider state, checked separately: ``ok`` or an error code."""
        state = {"storage": "ok", "keys": "ok"}
        try:
            self._storage.get_setting("vault_id")
        except SealboxError as exc:
            state["storage"] = exc.code
        try:
            self._key_provider()
        except SealboxError as exc:
            state["keys"] = exc.code
        return state

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
        self._audit.audit_keys()  # loaded now: seal_for runs inside the write transaction
        plaintext = value.reveal_bytes()

        def seal_for(version: int) -> SealedRow:
            sealed = envelope.seal(
                plaintext,
                keys,
                keys.current_key_id(),
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
    def _read_row(self, ref: SecretRef, version: int | None, *, operation: str) -> VersionRow:
        if version is not None and version < 1:
            raise InvalidInput("versions are numbered from 1")
        try:
            return self._storage.read_version(ref.project, ref.env, ref.name, version)
        except SealboxError as exc:
            self._record_failure(operation, ref.path, exc)
            raise

    def get(self, ref: SecretRef, *, version: int | None = None, reveal: bool = False) -> Secret:
        """A version's value (current by default).

        ``reveal`` records that a person was shown the value, as opposed to a program
        receiving it.
        """
        operation = "reveal" if reveal else "read"
        self._authorize(Capability.READ, ref.path, operation)
        row = self._read_row(ref, version, operation=operation)
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
        self._authorize(Capability.ADMIN, ref.path, "purge")
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

    # -- whole-vault views --------------------------------------------------------------------
    def known_values(self) -> Iterator[KnownValue]:
        """Every version of every secret, decrypted in memory (for the leak scanner)."""
        self._authorize(Capability.ADMIN, "sys/vault", "scan.values")
        self._record("scan.values", "*")
        for row in self._storage.iter_versions():
            yield KnownValue(f"{row.project}/{row.env}/{row.name}", row.version, self._open(row))

    def find_values(self, candidates: list[str]) -> list[ValueMatch]:
        """Which candidates equal a stored version (constant-time compares; for doctor)."""
        import hmac

        encoded = [c.encode() for c in candidates]
        matches = []
        for known in self.known_values():
            raw = known.value.reveal_bytes()
            for i, cand in enumerate(encoded):
                if cand and hmac.compare_digest(cand, raw):
                    matches.append(ValueMatch(i, known.path, known.version))
        return matches

    def verify(self) -> list[str]:
        """Open every version; the problems found (no values, only paths and versions)."""
        self._authorize(Capability.ADMIN, "sys/vault", "verify")
        problems = list(self._storage.check())
        checked = 0
        for row in self._storage.iter_versions():
            checked += 1
            try:
                self._open(row)
            except SealboxError as exc:
                problems.append(exc.message)
        self._record("verify", "*", reason=f"{checked} versions, {len(problems)} problems")
        return problems

    # -- audit trail (issue 4): admin on sys/audit --------------------------------------------
    def audit_tail(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest events, oldest first."""
        from sealbox.audit.query import flat_event

        self._authorize(Capability.ADMIN, "sys/audit", "audit.read")
        self._audit.settle()
        return [flat_event(r) for r in self._storage.list_audit(limit)]

    def audit_log(
        self,
        *,
        secret: SecretRef | None = None,
        identity: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        operations: Sequence[str] | None = None,
        denied: bool = False,
        source: str | None = None,
        limit: int | None = 100,
    ) -> list[dict[str, Any]]:
        """Events matching every filter given, newest first.

        ``secret`` matches events on that secret and environment-wide events (run, export)
        that handed it out.
        """
        from sealbox.audit.query import flat_event, touches
        from sealbox.storage.rows import AuditQuery

        self._authorize(Capability.ADMIN, "sys/audit", "audit.read")
        self._audit.settle()
        query = AuditQuery(
            paths=(secret.path, f"{secret.project}/{secret.env}") if secret else None,
            identity=identity,
            since=since.isoformat() if since else None,
            until=until.isoformat() if until else None,
            operations=tuple(operations) if operations else None,
            outcomes=("denied",) if denied else None,
            source=source,
            limit=None if secret else limit,
        )
        events = [flat_event(r) for r in self._storage.query_audit(query)]
        if secret is not None:
            events = [
                e for e in events if e["path"] == secret.path or touches(e, secret.path, None)
            ]
            if limit is not None:
                events = events[:limit]
        self._record("audit.read", "sys/audit")
        return events

    def who_read(
        self,
        ref: SecretRef | None = None,
        *,
        version: int | None = None,
        value_hmac: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Allowed events that handed out a secret's value (a version, or an exact value
        given by its HMAC), oldest first: identity, source, time, versions."""
        from sealbox.audit.events import VALUE_READS
        from sealbox.audit.query import flat_event, touches
        from sealbox.storage.rows import AuditQuery

        if ref is None and value_hmac is None:
            raise InvalidInput("name a secret, a value HMAC, or both")
        if version is not None and ref is None:
            raise InvalidInput(
                "a version can only be asked for with a secret path",
                hint_key="version_needs_secret",
            )
        self._authorize(Capability.ADMIN, "sys/audit", "audit.read")
        self._audit.settle()
        query = AuditQuery(
            paths=(ref.path, f"{ref.project}/{ref.env}") if ref else None,
            operations=tuple(sorted(VALUE_READS)),
            outcomes=("allowed",),
            since=since.isoformat() if since else None,
            until=until.isoformat() if until else None,
            limit=None,
            newest_first=False,
        )
        found = []
        for event in map(flat_event, self._storage.query_audit(query)):
            hits = [
                v
                for v in event["versions"]
                if (ref is None or touches({"versions": [v]}, ref.path, version))
                and (value_hmac is None or v.get("value_hmac") == value_hmac.lower())
            ]
            if hits:
                found.append({**event, "versions": hits})
        target = ref.path if ref else "a value HMAC"
        self._record("audit.read", "sys/audit", reason=f"who-read {target}")
        return found

    def audit_hash(self, value: SecretValue) -> str:
        """The HMAC audit events carry for this exact value (to search for a leaked one)."""
        self._authorize(Capability.ADMIN, "sys/audit", "audit.hash")
        self._key_provider()
        digest = self._audit.require_keys().value_hmac(value.reveal_bytes())
        self._record("audit.hash", "sys/audit")
        return digest

    def audit_verify(self, files: Sequence[str] = ()) -> Verification:
        """Walk the database chains and the JSONL files (configured ones and ``files``),
        check every stored version against its write event, and account for the server
        spools (pending, rejected, missing: the last two until accepted)."""
        from pathlib import Path

        from sealbox.audit.keys import verify_key
        from sealbox.audit.sinks.jsonl import JsonlSink
        from sealbox.audit.verify import Verification, spool_findings, verify_database, verify_file

        self._authorize(Capability.ADMIN, "sys/audit", "audit.verify")
        self._audit.settle()
        self._key_provider()
        keys = self._audit.require_keys()
        public = verify_key(self._storage)
        has_db = any(s.name == "db" for s in self._audit.sinks)
        result = verify_database(self._storage, keys, public, self.vault_id, check_versions=has_db)
        paths = [s.path for s in self._audit.sinks if isinstance(s, JsonlSink)]
        paths.extend(Path(f) for f in files if Path(f) not in paths)
        for path in paths:
            one = verify_file(path, keys, public, self.vault_id)
            result = Verification(
                result.findings + one.findings,
                result.notices + one.notices,
                result.summary + one.summary,
            )
        findings, notices = spool_findings(self._spool_report())
        result.findings.extend(findings)
        result.notices.extend(notices)
        self._record("audit.verify", "sys/audit", reason=f"{len(result.findings)} findings")
        return result

    def _spool_report(self) -> SpoolReport:
        from sealbox.audit.verify import spool_report

        return spool_report(self._storage, self._audit.audit_keys(), self._storage.spool_dir())

    def audit_spool_notices(self) -> list[str]:
        """Server audit spools that hold events no process is storing (a server stopped
        without storing them), and spools that failed their check or went missing and
        that no operator accepted yet (what `sealbox doctor` warns of)."""
        from sealbox.audit.verify import spool_findings

        if self._storage.spool_dir() is None:
            return []
        # NOTE: never unlocks (no passphrase prompt from a health check): spool records are
        # checked only when this process already holds the keys.
        findings, notices = spool_findings(self._spool_report())
        return findings + [n for n in notices if "accepted by" not in n]

    def audit_accept_rejected(self, file: str) -> str:
        """An operator reviewed a rejected (or missing) audit spool: record that, in the
        chain (``audit.accept``, naming the file and its SHA-256), so verify passes again.
        Returns the file name accepted."""
        from pathlib import Path

        from sealbox.crypto import macs

        self._authorize(Capability.ADMIN, "sys/audit", "audit.accept")
        self._key_provider()
        name = Path(file).name
        report = self._spool_report()
        if name not in report.flagged:
            raise InvalidInput(
                f"{file!r} is not a rejected or missing audit spool that verify reports",
                hint="name a file that audit verification reports as rejected or missing",
                hint_key="accept_rejected",
            )
        if name in report.accepted:
            return name
        directory = self._storage.spool_dir()
        kept = directory / name if directory is not None else None
        digest = "-"
        if kept is not None and kept.is_file():
            digest = macs.sha256(kept.read_bytes()).hex()
        self._audit.settle()
        self._record(
            "audit.accept",
            "sys/audit",
            reason=f"accepted a rejected or missing audit spool [file: {name}] sha256 {digest}",
            immediate=True,
        )
        self._audit.after_write()
        return name

    def audit_checkpoint(self) -> list[CheckpointRow]:
        """Sign every chain head now with the vault's checkpoint key."""
        self._authorize(Capability.ADMIN, "sys/audit", "audit.checkpoint")
        self._key_provider()
        self._record("audit.checkpoint", "sys/audit")
        return self._audit.checkpoint(self._now())

    def last_access(self, project: str, env: str) -> dict[str, Access]:
        """Each secret's last access (value reads and metadata views alike), by path."""
        from sealbox.audit.query import Access, flat_event
        from sealbox.storage.rows import AuditQuery

        validate_scope("project", project)
        validate_scope("environment", env)
        self._authorize(Capability.ADMIN, "sys/audit", "audit.read")
        self._audit.settle()
        names = [r.name for r in self._storage.list_secrets(project, env, include_deleted=True)]
        paths = tuple(f"{project}/{env}/{n}" for n in names)
        query = AuditQuery(paths=(*paths, f"{project}/{env}"), outcomes=("allowed",), limit=None)
        found: dict[str, Access] = {}
        for event in map(flat_event, self._storage.query_audit(query)):  # newest first
            hit = [event["path"]] if event["path"] in paths else []
            hit += [v["path"] for v in event["versions"] if v.get("path") in paths]
            for path in hit:
                if path not in found:
                    found[path] = Access(
                        path, event["time"], event["identity"], event["operation"], event["source"]
                    )
        self._record("audit.read", f"{project}/{env}", reason="last-access")
        return found

    def readers(
        self, ref: SecretRef, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[Reader]:
        """The identities that received a secret's value in a window, with how and when."""
        from sealbox.audit.query import Reader

        events = self.who_read(ref, since=since, until=until)
        by: dict[str, list[dict[str, Any]]] = {}
        for e in events:
            by.setdefault(e["identity"], []).append(e)
        return [
            Reader(
                identity=name,
                sources=tuple(sorted({e["source"] for e in evs})),
                first=evs[0]["time"],
                last=evs[-1]["time"],
                count=len(evs),
                versions=tuple(sorted({v["version"] for e in evs for v in e["versions"]})),
            )
            for name, evs in sorted(by.items())
        ]
