"""The core API: the one door through which an operation is authorised, audited, stored.

Front ends (CLI, server, SDK) hold a :class:`Vault` built by :mod:`sealbox.factory` and
never touch storage or keys themselves. The Vault is a small facade: the secret verbs
delegate to :class:`~sealbox.secret_ops.SecretOps` (also ``vault.secrets``), and the other
concerns are services reached as properties — ``vault.audit`` (queries, verification),
``vault.inventory`` (scanner and doctor views), ``vault.accounts`` (identities, tokens,
policies), ``vault.keys`` (unlock, lock, passphrase). Every service of a view shares the
vault's :class:`~sealbox.context.VaultState` (storage, keys, audit recorder) and acts for
the view's :class:`~sealbox.context.CallerContext` (principal, actor, clock).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from sealbox.audit.recorder import AuditRecorder
from sealbox.auth.policy import Capability
from sealbox.auth.principal import Principal, local_owner
from sealbox.caller import Actor
from sealbox.context import (
    CallerContext,
    ChangeObserver,
    Clock,
    CoreService,
    KeyLoader,
    VaultState,
    utcnow,
)
from sealbox.errors import KeyProviderError, SealboxError, Sealed
from sealbox.model import (
    DEFAULT_ENVIRONMENTS,
    Secret,
    SecretInfo,
    SecretMeta,
    SecretRef,
    SecretValue,
    Stage,
    VersionInfo,
)
from sealbox.secret_ops import SecretOps

if TYPE_CHECKING:
    from sealbox.audit_commit import AuditCommit
    from sealbox.audit_view import AuditView
    from sealbox.auth.service import Accounts, Authenticator, IdentityInfo
    from sealbox.changes import ChangeFeed
    from sealbox.documents import Documents
    from sealbox.incident import Incident
    from sealbox.inventory import Inventory
    from sealbox.keys import KeyOps
    from sealbox.kms.interface import Unlocker
    from sealbox.kms_ops import KmsOps
    from sealbox.kms_per_version import PerVersionOps
    from sealbox.kms_rotate import KmsRotation
    from sealbox.lease_ops import LeaseOps
    from sealbox.locks import Locks
    from sealbox.model import KmsStatus
    from sealbox.rotation_ops import RotationOps
    from sealbox.storage.interface import Storage
    from sealbox.unseal import UnsealOps

__all__ = ["Clock", "Vault", "utcnow"]


class Vault(CoreService):
    """Secrets, versions and metadata of one vault, and the door to its other services."""

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
        state = VaultState(
            storage=storage,
            vault_id=vault_id,
            load_keys=keys,
            audit=audit if audit is not None else AuditRecorder(storage),
            unlocker=unlocker,
            on_change=on_change,
        )
        caller = CallerContext.of(principal or local_owner(actor.identity), actor, clock)
        super().__init__(state, caller)
        self._secrets = SecretOps(state, caller)

    def as_principal(self, principal: Principal, actor: Actor) -> Vault:
        """The same vault (storage, keys, audit recorder: shared) acting for another identity."""
        # NOTE: a server makes one view per request: a new context and the secrets
        # service over the shared state, nothing copied.
        state = self._state
        caller = CallerContext.of(principal, actor, self._caller.clock)
        view: Vault = object.__new__(Vault)
        view._state = state
        view._caller = caller
        view._secrets = SecretOps(state, caller)
        return view

    @property
    def on_change(self) -> ChangeObserver | None:
        """Called after every committed change of a secret (the server's live updates);
        shared by every view of this vault."""
        return self._state.on_change

    @on_change.setter
    def on_change(self, observer: ChangeObserver | None) -> None:
        self._state.on_change = observer

    @property
    def audit_fail_open(self) -> bool:
        """True when the unsafe development setting lets operations run unaudited."""
        return self._audit.fail_open

    # -- the services -------------------------------------------------------------------------
    @property
    def secrets(self) -> SecretOps:
        """Projects, environments, secrets, versions and metadata (the verbs below)."""
        return self._secrets

    @property
    def documents(self) -> Documents:
        """The folders as Vault KV v2 documents: versions, settings, custom metadata."""
        from sealbox.documents import Documents

        return Documents(self._state, self._caller)

    @property
    def rotations(self) -> RotationOps:
        """Rotations: settings, start, resume, cancel, status, history, the schedule."""
        from sealbox.rotation_ops import RotationOps

        return RotationOps(self._state, self._caller)

    @property
    def audit(self) -> AuditView:
        """The audit trail's queries and verification (admin on sys/audit)."""
        from sealbox.audit_view import AuditView

        return AuditView(self._state, self._caller)

    @property
    def inventory(self) -> Inventory:
        """Every version opened in memory, for the leak scanner and doctor."""
        from sealbox.inventory import Inventory

        return Inventory(self._state, self._caller)

    @property
    def accounts(self) -> Accounts:
        """Identities, tokens and policies, administered as this vault's principal."""
        from sealbox.auth.service import Accounts

        return Accounts(
            self._storage,
            self.principal,
            self._event_actor,
            self._clock,
            self._audit,
            on_tokens_revoked=self._revoke_token_leases,
        )

    def _revoke_token_leases(self) -> None:
        # Leases die with the token that asked for them (Vault's rule).
        self.leases.revoke_token_leases()

    @property
    def leases(self) -> LeaseOps:
        """Dynamic database credentials: roles, and leases on the users they make."""
        from sealbox.lease_ops import LeaseOps

        return LeaseOps(self._state, self._caller)

    @property
    def incident(self) -> Incident:
        """The incident view of a secret: who received it, whom to redeploy."""
        from sealbox.incident import Incident

        return Incident(self._state, self._caller)

    @property
    def locks(self) -> Locks:
        """Scheduler locks: which node runs a periodic job (admin on sys/scheduler)."""
        from sealbox.locks import Locks

        return Locks(self._state, self._caller)

    @property
    def kms(self) -> KmsOps:
        """Key providers: list, status, add, remove (KEK rotation: ``kms_rotate``)."""
        from sealbox.kms_ops import KmsOps

        return KmsOps(self._state, self._caller)

    def kms_status(self, *, probe: bool = True) -> KmsStatus:
        """``kms.status`` under the SDK's name (``Client.kms_status``), for front ends that
        serve both."""
        return self.kms.status(probe=probe)

    @property
    def kms_rotation(self) -> KmsRotation:
        """KEK rotation (new KEK, re-wrap of data keys, retire) and provider migration."""
        from sealbox.kms_rotate import KmsRotation

        return KmsRotation(self._state, self._caller)

    @property
    def unseal(self) -> UnsealOps:
        """Unseal shares, seal, and the seal's status of this process (``sealbox.unseal``)."""
        from sealbox.unseal import UnsealOps

        return UnsealOps(self._state, self._caller)

    @property
    def sealed(self) -> bool:
        """True until this process holds the vault's KEKs (cheap: the server asks it on
        every request)."""
        return not self._state.unsealed

    @property
    def storage_type(self) -> str:
        """``postgresql`` or ``sqlite`` (Vault's ``storage_type`` field)."""
        return "postgresql" if self._storage.description.startswith("PostgreSQL") else "sqlite"

    @property
    def keys(self) -> KeyOps:
        """Unlock sessions and the master key (unlock, lock, passphrase change), audited."""
        from sealbox.keys import KEYS_PATH, KeyOps

        unlocker = self._state.unlocker
        if unlocker is None:
            raise KeyProviderError("this vault was opened without its key provider's unlocker")
        self._authorize(Capability.ADMIN, KEYS_PATH, "keys")
        return KeyOps(
            storage=self._storage,
            vault_id=self.vault_id,
            unlocker=unlocker,
            audit=self._audit,
            actor=self._event_actor,
            clock=self._clock,
            opened=self._state.use_keys,
            on_lock=self._state.drop_data_keys,
        )

    @property
    def kms_per_version(self) -> PerVersionOps:
        """Per-version KMS wrapping of the most sensitive secrets: configure, status,
        re-wrap (admin on sys/keys; :mod:`sealbox.kms_per_version`)."""
        from sealbox.kms_per_version import PerVersionOps

        return PerVersionOps(self._state, self._caller)

    def recover_admin(self, name: str, password: str) -> IdentityInfo:
        """Give person ``name`` the root policy and a new password (issue 10: recovering a
        lost admin). Loads the vault's keys first: only the master key's holder may."""
        self._key_provider()
        return self.accounts.recover_admin(name, password)

    def authenticator(self) -> Authenticator:
        """Turns credentials into principals (for the server's login and token checks)."""
        from sealbox.auth.service import Authenticator

        return Authenticator(self._storage, self._clock, self._audit)

    def __repr__(self) -> str:
        return f"Vault(id={self.vault_id!r}, storage={self._storage.description!r})"

    # -- plumbing -----------------------------------------------------------------------------
    def close(self) -> None:
        try:
            self._audit.close()
        finally:
            try:
                self._storage.close()
            finally:
                # The provider that opened the KEKs (an HSM session and login, an HTTP pool).
                if self._state.unlocker is not None:
                    self._state.unlocker.close()

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
            self._state.commit = GroupCommit(self._audit)
            return
        self._state.commit = SpoolCommit(self._audit)
        for problem in found:
            # Evidence in the chain itself: someone may have edited the spool file.
            self._record("audit.recover", "sys/audit", outcome="error", reason=problem)

    @property
    def audit_commit(self) -> AuditCommit:
        """How this process's audit events become durable (``audit_commit.py``): each in
        its own transaction until :meth:`serve` chose the spool or group commit."""
        if self._state.commit is None:
            from sealbox.audit.commit import DirectCommit

            self._state.commit = DirectCommit()
        return self._state.commit

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

    # -- the secret verbs (DESIGN.md's core API): one door, the secrets service behind it -------
    def create_project(
        self, project: str, *, environments: tuple[str, ...] = DEFAULT_ENVIRONMENTS
    ) -> None:
        self._secrets.create_project(project, environments=environments)

    def list_projects(self) -> list[str]:
        return self._secrets.list_projects()

    def create_env(self, project: str, env: str) -> None:
        self._secrets.create_env(project, env)

    def list_envs(self, project: str) -> list[str]:
        return self._secrets.list_envs(project)

    def set(self, ref: SecretRef, value: SecretValue, *, if_version: int | None = None) -> int:
        return self._secrets.set(ref, value, if_version=if_version)

    def rollback(self, ref: SecretRef, version: int, *, if_version: int | None = None) -> int:
        return self._secrets.rollback(ref, version, if_version=if_version)

    def get(
        self,
        ref: SecretRef,
        *,
        version: int | None = None,
        reveal: bool = False,
        stage: Stage | str | None = None,
    ) -> Secret:
        return self._secrets.get(ref, version=version, reveal=reveal, stage=stage)

    def resolve(
        self, project: str, env: str, *, only: list[str] | None = None, purpose: str = "run"
    ) -> dict[str, SecretValue]:
        return self._secrets.resolve(project, env, only=only, purpose=purpose)

    def list_secrets(
        self, project: str, env: str, *, include_deleted: bool = False
    ) -> list[SecretInfo]:
        return self._secrets.list_secrets(project, env, include_deleted=include_deleted)

    def versions(self, project: str, env: str) -> dict[str, int]:
        return self._secrets.versions(project, env)

    def info(self, ref: SecretRef) -> SecretInfo:
        return self._secrets.info(ref)

    def history(self, ref: SecretRef) -> list[VersionInfo]:
        return self._secrets.history(ref)

    def update_meta(self, ref: SecretRef, **changes: Any) -> SecretMeta:
        return self._secrets.update_meta(ref, **changes)

    def delete(self, ref: SecretRef) -> None:
        self._secrets.delete(ref)

    def undelete(self, ref: SecretRef) -> None:
        self._secrets.undelete(ref)

    def purge(self, ref: SecretRef) -> int:
        return self._secrets.purge(ref)
