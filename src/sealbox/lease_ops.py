"""Dynamic database credentials under leases: roles, issue, renew, revoke, reap.

Reached as ``vault.leases``. A **role** (``project/env/role-name``) says how to make a user
on a PostgreSQL or MariaDB server (creation statements with ``{{name}}``,
``{{password}}``, ``{{expiration}}``), how to drop it, and for how long a lease may live.
Issuing makes a new user and hands back its name and password (shown once, never stored)
under a **lease**; renewing moves its expiry up to the role's max TTL; revoking drops the
user; the **reaper** revokes expired leases, and a failed revocation is retried with a
backoff whose attempt count is in the lease's row, so retries survive restarts.

Authorisation is on the path ``creds/<project>/<env>/<role>`` — its own namespace, apart
from the secrets' ``project/env/NAME``, so a policy written for reading an environment's
secrets does not also let its holder make database users. ``read`` there gets credentials
(and renews or revokes one's own leases); ``list`` shows the role and its leases;
``admin`` defines and deletes the role and renews or revokes anyone's lease. Defining a
role also needs ``read`` on its admin secret: a role is a way of using that secret, so
no one can define one over an admin login they could not read. The reaper needs
``admin`` on ``sys/leases``. The admin secret is read by the core for the role (each read
audited, naming the role), never handed to the caller.

Revoking a token revokes the leases it (or a token below it) created; so does the reaper
for leases of a token that expired or went away. Every issue, renewal and revocation is
audited with the identity that asked; no password is in an event, an error or a repr.
"""

from __future__ import annotations

import contextlib
import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sealbox.auth.policy import Capability
from sealbox.context import CoreService
from sealbox.creds import templates
from sealbox.creds.registry import backend
from sealbox.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    SealboxError,
    UpstreamError,
)
from sealbox.model import SCOPE_RE, SecretRef, SecretValue
from sealbox.storage.rows import CredRoleRow, LeaseRow
from sealbox.wire.leases import Credential, CredRole, LeaseInfo, ReapReport

if TYPE_CHECKING:
    from sealbox.upstream.endpoint import Endpoint

#: Where the reaper is authorised.
LEASES_PATH = "sys/leases"
CREDS_PREFIX = "creds/"
LIMIT_MAX_TTL = timedelta(days=365)
#: A failed revocation waits 30 s, 1 min, 2 min … up to an hour before the next attempt.
BACKOFF_FIRST = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=1)
REAP_BATCH = 100
ROLE_NAME_RE = SCOPE_RE


def parse_role_path(path: str) -> tuple[str, str, str]:
    """``project/env/role`` (a ``creds/`` prefix is accepted) as its three parts."""
    text = path[len(CREDS_PREFIX) :] if path.startswith(CREDS_PREFIX) else path
    parts = text.split("/")
    if len(parts) != 3 or not all(SCOPE_RE.match(p) for p in parts):
        raise InvalidInput(
            f"invalid credentials role {path[:200]!r}: expected project/env/role-name"
            " (lowercase letters, digits, - and _)"
        )
    return parts[0], parts[1], parts[2]


def creds_path(project: str, env: str, role: str) -> str:
    """The path policies authorise a role by."""
    return f"{CREDS_PREFIX}{project}/{env}/{role}"


def _role_of_lease(lease_id: str) -> str | None:
    """The creds path of the role a lease id names (``creds/p/e/role/<random>``), if any."""
    parts = lease_id.split("/")
    if len(parts) != 5 or parts[0] != CREDS_PREFIX.rstrip("/"):
        return None
    try:
        return creds_path(*parse_role_path("/".join(parts[1:4])))
    except InvalidInput:
        return None


def _role_info(row: CredRoleRow) -> CredRole:
    return CredRole(
        path=f"{row.project}/{row.env}/{row.name}",
        backend=row.backend,
        admin=row.admin_path,
        creation=row.creation,
        revocation=row.revocation,
        renewal=row.renewal,
        username_template=row.username_template,
        ttl=row.default_ttl,
        max_ttl=row.max_ttl,
        max_leases=row.max_leases,
        created_at=row.created_at,
        updated_at=row.updated_at,
        created_by=row.created_by,
    )


def _lease_info(row: LeaseRow) -> LeaseInfo:
    return LeaseInfo(
        id=row.id,
        role=f"{row.project}/{row.env}/{row.role}",
        username=row.username,
        identity=row.identity,
        token_accessor=row.token_accessor,
        issued_at=row.issued_at,
        expires_at=row.expires_at,
        max_expires_at=row.max_expires_at,
        revoked_at=row.revoked_at,
        revoke_attempts=row.revoke_attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
    )


def _span(seconds: float) -> str:
    from sealbox.auth.service import human_duration

    return human_duration(timedelta(seconds=int(seconds)))


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed revocation (1, 2, …)."""
    doubled: timedelta = BACKOFF_FIRST * (2 ** max(0, min(attempts - 1, 20)))
    return min(doubled, BACKOFF_MAX)


class LeaseOps(CoreService):
    """Credentials roles and their leases, for one caller."""

    __slots__ = ()

    def now(self) -> datetime:
        """This service's clock (the server answers TTLs left against it)."""
        return self._clock()

    # -- roles ------------------------------------------------------------------------------
    def define_role(
        self,
        path: str,
        *,
        backend_name: str | None,
        admin: str,
        creation: str,
        revocation: str = "",
        renewal: str = "",
        username_template: str | None = None,
        ttl: timedelta = timedelta(hours=1),
        max_ttl: timedelta = timedelta(hours=24),
        max_leases: int | None = None,
        replace: bool = False,
    ) -> CredRole:
        """Create (or, with ``replace``, redefine) a role; every mistake is refused now,
        not when the first credential is asked for. ``backend_name`` None: the admin
        URL's scheme says (``postgresql://`` or ``mysql://``)."""
        project, env, name = parse_role_path(path)
        where = creds_path(project, env, name)
        self._authorize(Capability.ADMIN, where, "creds.role.write")
        admin_ref = SecretRef.parse(admin)
        # A role is a way of using its admin login: only someone who may read that login
        # may define one over it.
        self._authorize(Capability.READ, admin_ref.path, "creds.role.write")
        if backend_name is not None:
            backend(backend_name)  # an unknown one is refused before anything else
        templates.check_statements(
            creation,
            what="creation",
            allowed=templates.CREATION_VARS,
            required=("name", "password"),
        )
        if revocation.strip():
            templates.check_statements(
                revocation, what="revocation", allowed=templates.REVOCATION_VARS
            )
        if renewal.strip():
            templates.check_statements(renewal, what="renewal", allowed=templates.RENEWAL_VARS)
        template = templates.check_template(username_template or templates.DEFAULT_TEMPLATE)
        if ttl <= timedelta(0) or max_ttl <= timedelta(0):
            raise InvalidInput("a role's TTL and max TTL must be positive")
        if ttl > max_ttl:
            raise InvalidInput(
                f"the role's TTL ({_span(ttl.total_seconds())}) is longer than its max TTL"
                f" ({_span(max_ttl.total_seconds())})"
            )
        if max_ttl > LIMIT_MAX_TTL:
            raise InvalidInput("a role's max TTL is at most 365 days")
        if max_leases is not None and max_leases < 1:
            raise InvalidInput("a role's lease quota (max leases) must be at least 1")
        # Only now, with everything else valid: inferring the backend reads the admin secret.
        chosen = backend(backend_name or self._backend_of(admin_ref, f"{project}/{env}/{name}"))
        if replace:
            self._keep_live_users_revocable(project, env, name, chosen.name, admin_ref.path)
        now = self._now()
        row = CredRoleRow(
            project,
            env,
            name,
            chosen.name,
            admin_ref.path,
            creation.strip(),
            revocation.strip(),
            renewal.strip(),
            template,
            int(ttl.total_seconds()),
            int(max_ttl.total_seconds()),
            max_leases,
            now,
            now,
            self.principal.name,
        )
        self._storage.put_cred_role(row, replace=replace)
        self._record(
            "creds.role.write",
            where,
            reason=f"{chosen.name} admin {admin_ref.path}" + (" replaced" if replace else ""),
        )
        stored = self._storage.get_cred_role(project, env, name)
        return _role_info(stored if stored is not None else row)

    def _backend_of(self, admin: SecretRef, role_path: str) -> str:
        """The backend an admin URL secret's scheme names (the secret read, audited)."""
        try:
            row = self._storage.read_version(admin.project, admin.env, admin.name, None)
        except NotFound:
            raise NotFound(f"the admin secret {admin.path} does not exist") from None
        value = self._open(row)
        self._record(
            "read",
            admin.path,
            row.version,
            touched=((admin.path, row.version, value.reveal_bytes()),),
            reason=f"credentials role {role_path} (its backend)",
        )
        scheme = value.reveal().strip().partition("://")[0].lower()
        if scheme in ("postgresql", "postgres"):
            return "postgres"
        if scheme in ("mysql", "mariadb"):
            return "mysql"
        raise InvalidInput(
            f"the admin secret {admin.path} is not a postgresql:// or mysql:// URL: name the"
            " backend"
        )

    def _keep_live_users_revocable(
        self, project: str, env: str, name: str, backend_name: str, admin: str
    ) -> None:
        """A role with live leases keeps its database: their users are dropped through it."""
        old = self._storage.get_cred_role(project, env, name)
        if old is None or (old.backend, old.admin_path) == (backend_name, admin):
            return
        if self._storage.list_leases(project=project, env=env, role=name):
            raise Conflict(
                f"credentials role {project}/{env}/{name} has live leases: its backend and"
                " admin secret cannot change until they are revoked (their users are"
                " dropped through them)",
                hint="revoke the role's leases first",
                hint_key="revoke_role_leases",
                hint_args={"role": f"{project}/{env}/{name}"},
            )

    def _role_row(self, project: str, env: str, name: str) -> CredRoleRow:
        row = self._storage.get_cred_role(project, env, name)
        if row is None:
            raise NotFound(f"no credentials role {project}/{env}/{name}")
        return row

    def get_role(self, path: str) -> CredRole:
        project, env, name = parse_role_path(path)
        self._authorize(Capability.LIST, creds_path(project, env, name), "creds.role.read")
        return _role_info(self._role_row(project, env, name))

    def list_roles(self, project: str | None = None, env: str | None = None) -> list[CredRole]:
        """The roles this identity may see (``list`` on their path)."""
        rows = self._storage.list_cred_roles(project, env)
        return [
            _role_info(r)
            for r in rows
            if self.principal.can(creds_path(r.project, r.env, r.name), Capability.LIST)
        ]

    def delete_role(self, path: str) -> None:
        """Forget a role; refused while it has unrevoked leases (their users exist)."""
        project, env, name = parse_role_path(path)
        where = creds_path(project, env, name)
        self._authorize(Capability.ADMIN, where, "creds.role.delete")
        self._storage.delete_cred_role(project, env, name)
        self._record("creds.role.delete", where)

    # -- issuing ----------------------------------------------------------------------------
    def issue(self, path: str, *, ttl: timedelta | None = None) -> Credential:
        """A new user on the role's database, under a new lease."""
        project, env, name = parse_role_path(path)
        where = creds_path(project, env, name)
        self._authorize(Capability.READ, where, "lease.issue")
        role = self._role_row(project, env, name)
        if ttl is not None and ttl <= timedelta(0):
            raise InvalidInput("a lease's TTL must be positive")
        wanted = ttl if ttl is not None else timedelta(seconds=role.default_ttl)
        if wanted > timedelta(seconds=role.max_ttl):
            raise InvalidInput(
                f"a TTL of {_span(wanted.total_seconds())} is longer than role"
                f" {project}/{env}/{name} allows ({_span(role.max_ttl)})"
            )
        now = self._clock()
        max_expires = now + timedelta(seconds=role.max_ttl)
        accessor = self.principal.token_accessor
        if accessor is not None:
            # A lease never outlives the token that asked for it (as in Vault).
            token = self._storage.get_token(accessor=accessor)
            if token is not None:
                max_expires = min(max_expires, datetime.fromisoformat(token.max_expires_at))
        expires = min(now + wanted, max_expires)
        chosen = backend(role.backend)
        user = templates.username(
            role.username_template,
            {"role": name, "identity": self.principal.name, "project": project, "env": env},
            max_len=chosen.max_name,
        )
        password = SecretValue(templates.password())
        lease = LeaseRow(
            id=f"{where}/{secrets.token_urlsafe(18)}",
            project=project,
            env=env,
            role=name,
            username=user,
            identity_id=self.principal.identity_id,
            identity=self.principal.name,
            token_accessor=accessor,
            issued_at=now.isoformat(),
            expires_at=expires.isoformat(),
            max_expires_at=max_expires.isoformat(),
        )
        admin = self._admin(role)
        # NOTE: the lease row first, the user second: a crash between the two leaves a
        # lease whose user is missing (its revocation finds it gone), never a user no
        # lease knows of. The quota is checked in the same insert.
        try:
            self._storage.add_lease(lease, max_leases=role.max_leases)
        except SealboxError as exc:
            self._record_failure("lease.issue", where, exc)
            raise
        values = {
            "name": user,
            "password": password.reveal(),
            "expiration": templates.expiration(expires),
        }
        statements = [
            templates.render(s, values) for s in templates.split_statements(role.creation)
        ]
        try:
            chosen.create(admin, statements, password)
            self._record(
                "lease.issue",
                where,
                reason=f"{lease.id} user {user} ttl {_span(wanted.total_seconds())}",
            )
        except SealboxError as exc:
            # Undo what may exist of it (MySQL runs statement by statement), then forget.
            with contextlib.suppress(SealboxError):
                chosen.drop_user(admin, user)
            self._storage.lease_revoked(lease.id, self._now(), note=f"not issued: {exc.code}")
            self._record_failure("lease.issue", where, exc)
            raise
        url = admin.login(user, password).url() if admin.database else None
        return Credential(_lease_info(lease), user, password, url)

    def _admin(self, role: CredRoleRow) -> Endpoint:
        """The role's admin login, read for the role (audited, naming it)."""
        ref = SecretRef.parse(role.admin_path)
        role_path = f"{role.project}/{role.env}/{role.name}"
        try:
            row = self._storage.read_version(ref.project, ref.env, ref.name, None)
        except NotFound:
            raise NotFound(
                f"the admin secret {ref.path} of credentials role {role_path} does not exist"
            ) from None
        value = self._open(row)
        self._record(
            "read",
            ref.path,
            row.version,
            touched=((ref.path, row.version, value.reveal_bytes()),),
            reason=f"credentials role {role_path}",
        )
        return backend(role.backend).endpoint(value, what=f"the admin secret {ref.path}")

    # -- leases -----------------------------------------------------------------------------
    def _lease_row(self, lease_id: str, operation: str = "lease.read") -> LeaseRow:
        row = self._storage.get_lease(lease_id) if isinstance(lease_id, str) else None
        if row is None:
            # Whether a lease exists is told only to who may use or see its role's leases.
            where = _role_of_lease(str(lease_id))
            if where is None or not (
                self.principal.can(where, Capability.READ)
                or self.principal.can(where, Capability.LIST)
            ):
                self._authorize(Capability.LIST, where or f"{CREDS_PREFIX}*/*/*", operation)
            raise NotFound(f"no lease {str(lease_id)[:200]!r}")
        return row

    def _authorize_lease(self, row: LeaseRow, operation: str, *, force: bool = False) -> None:
        """One's own lease with ``read`` on its role; anyone's with ``admin``."""
        where = creds_path(row.project, row.env, row.role)
        own = row.identity_id == self.principal.identity_id
        if own and not force and self.principal.can(where, Capability.READ):
            return
        self._authorize(Capability.ADMIN, where, operation)

    def get_lease(self, lease_id: str) -> LeaseInfo:
        row = self._lease_row(lease_id, "lease.read")
        where = creds_path(row.project, row.env, row.role)
        if row.identity_id != self.principal.identity_id:
            self._authorize(Capability.LIST, where, "lease.read")
        return _lease_info(row)

    def list_leases(
        self, role: str | None = None, *, include_revoked: bool = False
    ) -> list[LeaseInfo]:
        """Leases this identity may see: its own, and those of roles it may ``list``."""
        project = env = name = None
        if role is not None:
            project, env, name = parse_role_path(role)
        rows = self._storage.list_leases(
            project=project, env=env, role=name, include_revoked=include_revoked
        )
        return [
            _lease_info(r)
            for r in rows
            if r.identity_id == self.principal.identity_id
            or self.principal.can(creds_path(r.project, r.env, r.role), Capability.LIST)
        ]

    def renew(self, lease_id: str, *, increment: timedelta | None = None) -> LeaseInfo:
        """Move a live lease's expiry to now + ``increment`` (the role's TTL by default);
        refused past the lease's max TTL, and for an expired lease."""
        row = self._lease_row(lease_id, "lease.renew")
        where = creds_path(row.project, row.env, row.role)
        self._authorize_lease(row, "lease.renew")
        if row.revoked_at is not None:
            raise NotFound(f"lease {row.id} was revoked at {row.revoked_at}")
        now = self._clock()
        if datetime.fromisoformat(row.expires_at) <= now:
            raise Conflict(
                f"lease {row.id} expired at {row.expires_at}: it cannot be renewed",
                hint="ask for new credentials",
                hint_key="new_credentials",
                hint_args={"role": f"{row.project}/{row.env}/{row.role}"},
            )
        role = self._role_row(row.project, row.env, row.role)
        if increment is not None and increment <= timedelta(0):
            raise InvalidInput("a renewal's increment must be positive")
        step = increment if increment is not None else timedelta(seconds=role.default_ttl)
        ceiling = datetime.fromisoformat(row.max_expires_at)
        left = (ceiling - now).total_seconds()
        if datetime.fromisoformat(row.expires_at) >= ceiling or left < 1:
            raise Conflict(
                f"lease {row.id} has reached its max TTL (it ends at {row.max_expires_at})",
                hint="ask for new credentials",
                hint_key="new_credentials",
                hint_args={"role": f"{row.project}/{row.env}/{row.role}"},
            )
        new_expiry = now + step
        if new_expiry > ceiling:
            raise InvalidInput(
                f"renewing lease {row.id} by {_span(step.total_seconds())} would pass its max TTL"
                f" (it ends at {row.max_expires_at}; {_span(left)} is left)",
                hint="renew by less, or ask for new credentials",
                hint_key="renew_less",
                hint_args={"left": _span(left)},
            )
        chosen = backend(role.backend)
        renewal = role.renewal or chosen.default_renewal
        if renewal:
            values = {"name": row.username, "expiration": templates.expiration(new_expiry)}
            statements = [templates.render(s, values) for s in templates.split_statements(renewal)]
            try:
                chosen.run(self._admin(role), statements)
            except SealboxError as exc:
                self._record_failure("lease.renew", where, exc)
                raise
        self._storage.set_lease_expiry(row.id, new_expiry.isoformat())
        self._record("lease.renew", where, reason=f"{row.id} until {new_expiry.isoformat()}")
        return _lease_info(self._lease_row(row.id))

    def revoke(self, lease_id: str, *, force: bool = False) -> LeaseInfo:
        """Drop the lease's user now. If the database cannot be reached or refuses, the
        lease is left due, for the reaper to retry, and UpstreamError says so; ``force``
        (admin on the role) forgets the lease whatever the database says."""
        row = self._lease_row(lease_id, "lease.revoke")
        self._authorize_lease(row, "lease.revoke", force=force)
        if row.revoked_at is not None:
            return _lease_info(row)  # revoking twice is not an error (as in Vault)
        error = self._attempt(row, "revoked on request", force=force)
        if error is not None:
            raise UpstreamError(
                f"lease {row.id} could not be revoked: {error}; it stays due and is retried"
                " by the reaper",
                hint="if its user is already gone, or its database gone for good, forget the"
                " lease with force",
                hint_key="lease_force",
                hint_args={"lease": row.id},
            )
        return _lease_info(self._lease_row(row.id))

    def revoke_prefix(self, prefix: str, *, force: bool = False) -> list[LeaseInfo]:
        """Revoke every live lease of a role (``project/env/role``) or whose id starts with
        ``prefix``; needs admin on each role. Returns the leases still not revoked."""
        by_id = prefix.startswith(CREDS_PREFIX) and prefix.count("/") >= 4
        role_path = "/".join(prefix.split("/")[:4]) if by_id else prefix.rstrip("/")
        project, env, name = parse_role_path(role_path)
        self._authorize(Capability.ADMIN, creds_path(project, env, name), "lease.revoke")
        if by_id:
            rows = self._storage.list_leases(prefix=prefix)
        else:
            rows = self._storage.list_leases(project=project, env=env, role=name)
        left: list[LeaseInfo] = []
        for row in rows:
            if self._attempt(row, "revoked by prefix", force=force) is not None:
                left.append(_lease_info(self._lease_row(row.id)))
        return left

    def reap(self, now: datetime | None = None, *, limit: int = REAP_BATCH) -> ReapReport:
        """Revoke the leases due at ``now``: expired, or whose token is revoked, expired
        or gone. A failure waits (backoff) and is retried by a later pass."""
        self._authorize(Capability.ADMIN, LEASES_PATH, "lease.reap")
        at = now if now is not None else self._clock()
        self._expire_dead_token_leases(at)
        due = self._storage.due_leases(at.isoformat(), limit=limit)
        revoked: list[str] = []
        failed: list[tuple[str, str]] = []
        for row in due:
            error = self._attempt(row, "expired", now=at)
            if error is None:
                revoked.append(row.id)
            else:
                failed.append((row.id, error))
        return ReapReport(tuple(revoked), tuple(failed), more=len(due) >= limit)

    def revoke_token_leases(self) -> int:
        """Revoke the live leases whose token was revoked or is gone (called after a token
        revocation, as its consequence: no further authorisation). Failures are left due
        for the reaper. Returns how many were revoked."""
        now = self._clock()
        dead = self._expire_dead_token_leases(now)
        done = 0
        for row in dead:
            if self._attempt(row, "its token was revoked", now=now) is None:
                done += 1
        return done

    def _expire_dead_token_leases(self, now: datetime) -> list[LeaseRow]:
        """Make leases of revoked, expired or vanished tokens due now; returns them."""
        dead: list[LeaseRow] = []
        tokens: dict[str, bool] = {}
        for row in self._storage.list_leases():
            accessor = row.token_accessor
            if accessor is None:
                continue
            if accessor not in tokens:
                token = self._storage.get_token(accessor=accessor)
                tokens[accessor] = (
                    token is None
                    or token.revoked_at is not None
                    or datetime.fromisoformat(token.expires_at) <= now
                )
            if tokens[accessor]:
                if datetime.fromisoformat(row.expires_at) > now:
                    with contextlib.suppress(NotFound):
                        self._storage.set_lease_expiry(row.id, now.isoformat())
                dead.append(row._replace(expires_at=now.isoformat()))
        return dead

    def _attempt(
        self, row: LeaseRow, why: str, *, force: bool = False, now: datetime | None = None
    ) -> str | None:
        """Try to drop the lease's user; None when the lease is revoked, else why not
        (the failure counted in the row, the next attempt pushed back)."""
        where = creds_path(row.project, row.env, row.role)
        at = now if now is not None else self._clock()
        try:
            note = self._drop(row)
        except SealboxError as exc:
            error = exc.message
            if force:
                if self._storage.lease_revoked(row.id, at.isoformat(), note=f"forced: {error}"):
                    self._record(
                        "lease.revoke", where, reason=f"{row.id} user {row.username} forced"
                    )
                return None
            attempts = row.revoke_attempts + 1
            self._storage.lease_revoke_failed(row.id, error, (at + backoff(attempts)).isoformat())
            if datetime.fromisoformat(row.expires_at) > at:
                # Asked to go now: due for the reaper from now on.
                with contextlib.suppress(NotFound):
                    self._storage.set_lease_expiry(row.id, at.isoformat())
            with contextlib.suppress(SealboxError):
                self._record(
                    "lease.revoke",
                    where,
                    outcome="error",
                    reason=f"{row.id} attempt {attempts}: {exc.code}",
                )
            return error
        if self._storage.lease_revoked(row.id, at.isoformat(), note=note):
            self._record(
                "lease.revoke", where, reason=f"{row.id} user {row.username} {why}; {note}"
            )
        return None

    def _drop(self, row: LeaseRow) -> str:
        """Revoke upstream: the role's revocation statements, or the backend's default."""
        role = self._storage.get_cred_role(row.project, row.env, row.role)
        if role is None:
            raise NotFound(f"the credentials role of lease {row.id} no longer exists")
        chosen = backend(role.backend)
        admin = self._admin(role)
        if not role.revocation:
            return "dropped" if chosen.drop_user(admin, row.username) else "user already gone"
        statements = [
            templates.render(s, {"name": row.username})
            for s in templates.split_statements(role.revocation)
        ]
        try:
            chosen.run(admin, statements)
        except UpstreamError:
            # Statements that fail on a user that is no longer there have nothing left to do.
            if not chosen.user_exists(admin, row.username):
                return "user already gone"
            raise
        return "revocation statements ran"

    def counts(self) -> dict[str, tuple[int, str | None]]:
        """Live leases per role path, with the oldest one's issue time (for metrics)."""
        return {
            "/".join(key): value
            for key, value in self._storage.count_live_leases().items()
            if self.principal.can(creds_path(*key), Capability.LIST)
        }
