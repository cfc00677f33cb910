"""Identities, tokens and policies: creation, login, lookup, renewal and revocation.

:class:`Accounts` is the authorised, audited administration API (reached through
``Vault.accounts``); :class:`Authenticator` issues tokens, runs login methods
(:mod:`sealbox.auth.methods`: a password, a role id + secret id …) and turns a token into
a :class:`~sealbox.auth.principal.Principal`. Only token hashes
and secret-id hashes are stored; a token's *accessor* names it in listings and logs.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from sealbox.audit.recorder import AuditRecorder
from sealbox.auth import login_settings, passwords, tokens
from sealbox.auth.methods.interface import Credentials, LoginContext
from sealbox.auth.policy import (
    POLICY_NAME_RE,
    ROOT_POLICY,
    Capability,
    Decision,
    Policy,
    decide,
    policy_from_json,
)
from sealbox.auth.principal import Principal
from sealbox.caller import Actor
from sealbox.errors import (
    AccessDenied,
    AlreadyExists,
    AuthenticationFailed,
    Conflict,
    InvalidInput,
    NotFound,
    SealboxError,
)
from sealbox.model import SCOPE_RE
from sealbox.storage.rows import IdentityRow, SecretIdRow, TokenRow

# NOTE: re-exported: the SDK returns these too, so they are defined with their codecs.
from sealbox.wire.accounts import IdentityInfo as IdentityInfo  # noqa: PLC0414
from sealbox.wire.accounts import TokenInfo as TokenInfo  # noqa: PLC0414

if TYPE_CHECKING:
    from sealbox.auth.methods.interface import LoginMethod
    from sealbox.storage.interface import AccountStore, AuditStore, PolicyStore

    class AuthStorage(AccountStore, AuditStore, Protocol):
        """The accounts' rows, and the audit trail a recorder made here writes to."""


Clock = Callable[[], datetime]

DEFAULT_TTL = timedelta(hours=1)
DEFAULT_MAX_TTL = timedelta(hours=24)
LIMIT_MAX_TTL = timedelta(days=365)
BUILTIN = {"root": ROOT_POLICY}
#: A token tree deeper than this is refused (a child of a child of … a login token).
MAX_TOKEN_DEPTH = 32


def _identity_info(row: IdentityRow) -> IdentityInfo:
    return IdentityInfo(
        row.id,
        row.name,
        row.kind,
        tuple(json.loads(row.policies)),
        row.role_id,
        row.created_at,
        row.disabled,
    )


def _token_info(row: TokenRow, identity: str) -> TokenInfo:
    return TokenInfo(
        row.accessor,
        identity,
        tuple(json.loads(row.policies)),
        row.auth_method,
        row.created_at,
        row.expires_at,
        row.max_expires_at,
        row.revoked_at is not None,
        row.display,
        row.parent,
    )


def validate_identity_name(name: str) -> str:
    if not isinstance(name, str) or not SCOPE_RE.match(name):
        raise InvalidInput("invalid identity name: use 1-63 lowercase letters, digits, - and _")
    return name


def load_policies(storage: PolicyStore, names: list[str]) -> tuple[Policy, ...]:
    """Policies by name; unknown names are skipped (a deleted policy grants nothing)."""
    found = [BUILTIN[n] for n in names if n in BUILTIN]
    stored = storage.get_policies([n for n in names if n not in BUILTIN])
    found.extend(policy_from_json(stored[n]) for n in names if n in stored)
    return tuple(found)


def human_duration(span: timedelta) -> str:
    """``1d2h3m4s`` (whole seconds, rounded down), as the duration fields are written."""
    left = max(0, int(span.total_seconds()))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size or (unit == "s" and not parts):
            parts.append(f"{left // size}{unit}")
            left %= size
    return "".join(parts)


def _bounded(
    field: str, asked: timedelta | None, default: timedelta, limit: timedelta, why: str
) -> timedelta:
    """A requested lifetime, or the default cut to the limit; above the limit is an error.

    NOTE: never silently shortened (issue 10): a caller that asked for 8700h and got 24h
    believed its token would live a year. The error names the most it may ask for.
    """
    if asked is None:
        return min(default, limit)
    if asked <= timedelta(0):
        raise InvalidInput(f"field {field!r} must be positive")
    if asked > limit:
        raise InvalidInput(
            f"field {field!r} asks for {human_duration(asked)}, more than allowed here: the"
            f" maximum is {human_duration(limit)} ({int(limit.total_seconds())} s), {why}"
        )
    return asked


def is_root_holder(names: Iterable[str]) -> bool:
    return "root" in names


class TokenLookup(NamedTuple):
    """A token's listing entry and the id of the identity it belongs to."""

    info: TokenInfo
    identity_id: str


@dataclass(frozen=True)
class Renewal:
    """A renewed token's new expiry, and why it is sooner than asked, if it is."""

    expires_at: str
    warnings: tuple[str, ...] = ()


class Authenticator:
    """Credentials in, principal (or a token) out. Unauthenticated callers use this."""

    def __init__(
        self, storage: AuthStorage, clock: Clock, audit: AuditRecorder | None = None
    ) -> None:
        self._storage: AccountStore = storage
        self._clock = clock
        self._audit = audit or AuditRecorder(storage)

    def _now(self) -> datetime:
        return self._clock()

    def now(self) -> datetime:
        """This vault's time (the lifetimes in answers are counted from it)."""
        return self._clock()

    def _record(
        self, actor: Actor, operation: str, path: str, outcome: str, reason: str = ""
    ) -> None:
        self._audit.record(
            at=self._now().isoformat(),
            actor=actor,
            operation=operation,
            path=path,
            outcome=outcome,
            reason=reason,
        )

    def issue(
        self,
        identity: IdentityRow,
        *,
        auth_method: str,
        ttl: timedelta | None = None,
        max_ttl: timedelta | None = None,
        policies: list[str] | None = None,
        display: str = "",
        kind: str = "s",
        parent: TokenRow | None = None,
    ) -> tokens.NewToken:
        """Mint a token for an identity (its own policies, or a subset of them).

        With a ``parent`` the token joins the tree below it: it expires no later than the
        parent does now, its max TTL ends no later than the parent's, and it is revoked
        with it. A lifetime above those bounds (or 365 days) is refused, never shortened.
        """
        own = json.loads(identity.policies)
        chosen = own if policies is None else policies
        extra = set(chosen) - set(own)
        if extra:
            raise AccessDenied(
                "a token cannot carry policies its identity does not have: "
                + ", ".join(sorted(extra))
            )
        now = self._now()
        max_limit, max_why = LIMIT_MAX_TTL, "the longest a token may live"
        ttl_why = "its max_ttl" if max_ttl is not None else "the default max_ttl (ask for more)"
        if parent is not None:
            parent_max = datetime.fromisoformat(parent.max_expires_at) - now
            if parent_max < max_limit:
                max_limit, max_why = parent_max, "what is left of the parent token's max TTL"
        max_ttl_v = _bounded("max_ttl", max_ttl, DEFAULT_MAX_TTL, max_limit, max_why)
        ttl_limit = max_ttl_v
        if parent is not None:
            parent_left = datetime.fromisoformat(parent.expires_at) - now
            if parent_left <= timedelta(0):
                raise AuthenticationFailed("invalid or expired token")
            if parent_left < ttl_limit:
                ttl_limit, ttl_why = parent_left, "what is left of the parent token's life"
        ttl_v = _bounded("ttl", ttl, DEFAULT_TTL, ttl_limit, ttl_why)
        new = tokens.mint(kind)
        self._storage.put_token(
            TokenRow(
                accessor=new.accessor,
                hash=new.hash,
                identity_id=identity.id,
                policies=json.dumps(chosen),
                auth_method=auth_method,
                created_at=now.isoformat(),
                expires_at=(now + ttl_v).isoformat(),
                max_expires_at=(now + max_ttl_v).isoformat(),
                revoked_at=None,
                display=display or identity.name,
                parent=parent.accessor if parent is not None else None,
            )
        )
        return new

    def login(
        self,
        method: LoginMethod | str,
        credentials: Credentials | Mapping[str, Any],
        actor: Actor,
        ttl: timedelta | None = None,
    ) -> tokens.NewToken:
        """Log in with a login method (by name: :mod:`sealbox.auth.methods.registry`);
        its tokens are roots of the token tree with the identity's policies."""
        if isinstance(method, str):
            from sealbox.auth.methods.registry import login_method

            method = login_method(method)
        if not isinstance(credentials, Credentials):
            credentials = Credentials(credentials)
        ctx = LoginContext(self, self._storage, self._clock, self._audit, method.name, ttl)
        return method.login(credentials, actor, ctx)

    def resolve(self, token_value: str) -> Principal:
        """The principal behind a token; every failure is the same error.

        A child token is alive only while every ancestor is (not revoked, not expired, its
        identity enabled), and holds only policies each non-root ancestor holds: revoking
        or narrowing a parent takes effect on the whole subtree at the next resolution.
        """
        failure = AuthenticationFailed("invalid or expired token")
        if not tokens.well_formed(token_value):
            raise failure
        row = self._storage.get_token(hash=tokens.token_hash(token_value))
        now = self._now().isoformat()
        if row is None or row.revoked_at is not None or row.expires_at <= now:
            raise failure
        identity = self._storage.get_identity(id=row.identity_id)
        if identity is None or identity.disabled:
            raise failure
        names = _effective(row, identity)
        ancestors = self._ancestors(row, now)
        for parent, parent_identity in ancestors:
            bound = _effective(parent, parent_identity)
            if not is_root_holder(bound):
                names = [n for n in names if n in bound]
        return Principal(
            identity.id,
            identity.name,
            identity.kind,
            "token",
            load_policies(self._storage, names),
            token_accessor=row.accessor,
            token_parents=tuple(parent.accessor for parent, _ in ancestors),
        )

    def _ancestors(self, row: TokenRow, now: str) -> list[tuple[TokenRow, IdentityRow]]:
        """A token's live ancestors, parent first; any dead one fails the whole chain."""
        chain: list[tuple[TokenRow, IdentityRow]] = []
        accessor = row.parent
        while accessor is not None:
            parent = self._storage.get_token(accessor=accessor)
            if (
                parent is None
                or parent.revoked_at is not None
                or parent.expires_at <= now
                or len(chain) >= MAX_TOKEN_DEPTH
            ):
                raise AuthenticationFailed("invalid or expired token")
            owner = self._storage.get_identity(id=parent.identity_id)
            if owner is None or owner.disabled:
                raise AuthenticationFailed("invalid or expired token")
            chain.append((parent, owner))
            accessor = parent.parent
        return chain

    def describe(self, token_value: str) -> TokenInfo:
        """A live token's own listing entry (its accessor, never the token), for token/self."""
        principal = self.resolve(token_value)
        assert principal.token_accessor is not None
        row = self._storage.get_token(accessor=principal.token_accessor)
        if row is None:
            raise AuthenticationFailed("invalid or expired token")
        return _token_info(row, principal.name)

    def renew(
        self, token_value: str, increment: timedelta | None = None, actor: Actor | None = None
    ) -> Renewal:
        """Extend a token by ``increment`` from now, up to its max TTL (fixed when it was
        made) and its ancestors' expiry. Past those it is capped, with a warning saying so,
        as Vault does (its clients expect a renewal to succeed and read the warnings)."""
        principal = self.resolve(token_value)
        assert principal.token_accessor is not None
        row = self._storage.get_token(accessor=principal.token_accessor)
        assert row is not None
        now = self._now()
        asked = DEFAULT_TTL if increment is None else increment
        if asked <= timedelta(0):
            raise InvalidInput("field 'increment' must be positive")
        cap, why = datetime.fromisoformat(row.max_expires_at), "its max TTL, fixed at creation"
        for parent, _ in self._ancestors(row, now.isoformat()):
            if datetime.fromisoformat(parent.expires_at) < cap:
                cap, why = datetime.fromisoformat(parent.expires_at), "its parent token's expiry"
        warnings: tuple[str, ...] = ()
        expires_at = now + asked
        if expires_at > cap:
            expires_at = cap
            warnings = (
                f"TTL of {human_duration(asked)!r} exceeded the effective max TTL of"
                f" {human_duration(cap - now)!r} ({why}); TTL value is capped accordingly",
            )
        expires = expires_at.isoformat()
        self._storage.renew_token(row.accessor, expires)
        who = (actor or Actor(principal.name, "api"))._replace(
            identity=principal.name,
            identity_id=principal.identity_id,
            auth_method=principal.auth_method,
            token_accessor=row.accessor,
        )
        reason = expires + (" (capped)" if warnings else "")
        self._record(who, "token.renew", f"token/{row.accessor}", "allowed", reason)
        return Renewal(expires, warnings)


def _effective(row: TokenRow, identity: IdentityRow) -> list[str]:
    """A token's policies, limited to what its identity still has: removing a policy from
    an identity takes effect on its live tokens immediately."""
    held = json.loads(identity.policies)
    return [n for n in json.loads(row.policies) if n in held]


class Accounts:
    """Administration of identities, tokens and policies, authorised and audited."""

    def __init__(
        self,
        storage: AuthStorage,
        principal: Principal,
        actor: Actor,
        clock: Clock,
        audit: AuditRecorder | None = None,
        on_tokens_revoked: Callable[[], None] | None = None,
    ) -> None:
        self._storage: AccountStore = storage
        #: Called after tokens were revoked (or deleted with their identity): the vault
        #: revokes the leases they created (lease_ops.py).
        self._on_tokens_revoked = on_tokens_revoked
        self.principal = principal
        self._actor = actor
        self._clock = clock
        self._audit = audit if audit is not None else AuditRecorder(storage)
        self.authenticator = Authenticator(storage, clock, self._audit)

    def _now(self) -> str:
        return self._clock().isoformat()

    def _record(
        self, operation: str, path: str, outcome: str = "allowed", reason: str = ""
    ) -> None:
        self._audit.record(
            at=self._now(),
            actor=self._actor,
            operation=operation,
            path=path,
            outcome=outcome,
            reason=reason,
        )

    def _authorize(
        self, area: str, operation: str, capability: Capability = Capability.ADMIN
    ) -> None:
        path = f"sys/{area}"
        decision = self.principal.decide(path, capability)
        if not decision.allowed:
            with contextlib.suppress(SealboxError):
                self._record(operation, path, "denied", decision.reason)
            raise AccessDenied(f"permission denied: {capability.value} on {path}")

    # -- policies -------------------------------------------------------------------------
    def apply_policy(self, policy: Policy, *, force: bool = False) -> None:
        self._authorize("policies", "policy.write")
        if policy.name in BUILTIN:
            raise InvalidInput(f"policy {policy.name!r} is built in and cannot be changed")
        note = self._keep_an_admin(
            f"replacing policy {policy.name!r}", force, policies={policy.name: policy}
        )
        self._storage.put_policy(policy.name, policy.to_json(), self._now())
        self._record("policy.write", f"sys/policies/{policy.name}", reason=note)

    def get_policy(self, name: str) -> Policy:
        self._authorize("policies", "policy.read", Capability.READ)
        if name in BUILTIN:
            return BUILTIN[name]
        found = self._storage.get_policies([name])
        if name not in found:
            raise NotFound(f"policy {name!r} does not exist")
        return policy_from_json(found[name])

    def list_policies(self) -> list[Policy]:
        self._authorize("policies", "policy.list", Capability.LIST)
        return [ROOT_POLICY, *(policy_from_json(doc) for _, doc in self._storage.list_policies())]

    def delete_policy(self, name: str, *, force: bool = False) -> None:
        self._authorize("policies", "policy.delete")
        if name in BUILTIN:
            raise InvalidInput(f"policy {name!r} is built in and cannot be deleted")
        note = self._keep_an_admin(f"deleting policy {name!r}", force, policies={name: None})
        self._storage.delete_policy(name)
        self._record("policy.delete", f"sys/policies/{name}", reason=note)

    # -- the last admin --------------------------------------------------------------------
    def _keep_an_admin(
        self,
        change: str,
        force: bool,
        *,
        identities: dict[str, list[str] | None] | None = None,
        policies: dict[str, Policy | None] | None = None,
    ) -> str:
        """Refuse a change that would leave no enabled identity holding ``root``, or none
        that can administer identities and policies, unless forced; returns the audit note.

        ``identities`` maps identity ids to their new policy names (None: removed);
        ``policies`` maps policy names to their new document (None: deleted).
        """
        rows = self._storage.list_identities()
        documents: dict[str, Policy | None] = {
            name: policy_from_json(doc) for name, doc in self._storage.list_policies()
        }
        documents.update(BUILTIN)
        before = _census(rows, documents)
        after = _census(rows, {**documents, **(policies or {})}, identities or {})
        pairs = zip(("root", "admin"), before, after, strict=True)
        lost = [what for what, had, has in pairs if had and not has]
        if not lost:
            return ""
        what = " and ".join(_LOST[w] for w in lost)
        if not force:
            # NOTE: not a race-free guard: two concurrent changes that each remove one of
            # two admins both pass. Recovery (below) covers what slips through.
            raise Conflict(
                f"{change} would leave {what}",
                hint="pass force=true if you mean it; an admin is recovered with the master key"
                " (recover-admin, on the vault's host)",
                hint_key="force_admin_loss",
            )
        return f"forced: leaves {what}"

    def explain(self, identity: str, path: str, capability: str) -> Decision:
        """The decision for an identity on a path, and the rule that made it."""
        self._authorize("policies", "policy.explain", Capability.READ)
        try:
            cap = Capability(capability)
        except ValueError:
            raise InvalidInput(
                f"unknown capability {capability!r}: use {', '.join(c.value for c in Capability)}"
            ) from None
        row = self._require_identity(identity)
        return decide(load_policies(self._storage, json.loads(row.policies)), path, cap)

    # -- identities ----------------------------------------------------------------------------
    def _require_identity(self, name: str) -> IdentityRow:
        row = self._storage.get_identity(name=validate_identity_name(name))
        if row is None:
            raise NotFound(f"identity {name!r} does not exist")
        return row

    def _check_policy_names(self, names: list[str]) -> list[str]:
        for n in names:
            if not POLICY_NAME_RE.match(n):
                raise InvalidInput(f"invalid policy name {n[:64]!r}")
        missing = [n for n in names if n not in BUILTIN and not self._storage.get_policies([n])]
        if missing:
            raise NotFound(f"no such policy: {', '.join(missing)}", hint="apply it first")
        return names

    def _grantable(self, names: list[str]) -> list[str]:
        """``names`` if they exist and the caller may give them: only policies it holds
        itself, unless it holds ``root``. Without this an identities admin could mint an
        identity stronger than itself (``root`` included) and log in as it."""
        self._check_policy_names(names)
        held = [p.name for p in self.principal.policies]
        beyond = sorted(set(names) - set(held))
        if beyond and not is_root_holder(held):
            raise AccessDenied(
                "permission denied: cannot grant policies you do not hold: " + ", ".join(beyond)
            )
        return names

    def create_person(self, name: str, password: str, policies: list[str]) -> IdentityInfo:
        self._authorize("identities", "identity.create")
        row = person_row(name, password, self._grantable(policies), self._now())
        self._storage.create_identity(row)
        self._record("identity.create", f"identity/{name}", reason="person")
        return _identity_info(row)

    def create_machine(self, name: str, policies: list[str]) -> IdentityInfo:
        self._authorize("identities", "identity.create")
        row = machine_row(name, self._grantable(policies), self._now())
        self._storage.create_identity(row)
        self._record("identity.create", f"identity/{name}", reason="machine")
        return _identity_info(row)

    def new_secret_id(
        self, name: str, *, uses: int | None = None, ttl: timedelta | None = None
    ) -> str:
        """A secret id for a machine identity, shown once (single-use when uses=1)."""
        return self.mint_secret_id(name, uses=uses, ttl=ttl)[0]

    def mint_secret_id(
        self, name: str, *, uses: int | None = None, ttl: timedelta | None = None
    ) -> tuple[str, SecretIdRow]:
        """A secret id and its row; uses and TTL default to the machine's login settings
        (``secret_id_num_uses``, ``secret_id_ttl``; none: unlimited, no expiry)."""
        self._authorize("identities", "secret_id.create")
        row = self._require_identity(name)
        if row.kind != "machine":
            raise InvalidInput(f"identity {name!r} is not a machine")
        if uses is not None and uses < 1:
            raise InvalidInput("uses must be at least 1")
        settings = login_settings.load(row.settings)
        uses = uses if uses is not None else settings.get("secret_id_num_uses") or None
        ttl = ttl if ttl is not None else login_settings.seconds(settings, "secret_id_ttl")
        value = tokens.mint("s").value
        now = self._clock()
        secret = SecretIdRow(
            accessor=os.urandom(8).hex(),
            identity_id=row.id,
            hash=tokens.token_hash(value),
            uses_left=uses,
            expires_at=(now + ttl).isoformat() if ttl else None,
            created_at=now.isoformat(),
        )
        self._storage.add_secret_id(secret)
        self._record("secret_id.create", f"identity/{name}")
        return value, secret

    # -- Vault's login roles: AppRole roles (machines), userpass users (people) -----------
    def write_login_role(self, kind: str, name: str, body: Mapping[str, Any]) -> bool:
        """Create or update a machine (AppRole role) or a person (userpass user) from
        Vault's fields (:mod:`sealbox.auth.login_settings`); True if it was created.

        The caller may give only policies it holds itself (unless it holds ``root``): an
        identities admin cannot mint a role stronger than itself.
        """
        self._authorize("identities", "identity.write")
        validate_identity_name(name)
        fields = login_settings.parse_fields(
            body, login_settings.ROLE_FIELDS if kind == "machine" else login_settings.USER_FIELDS
        )
        if fields.policies is not None:
            self._grantable(fields.policies)
        row = self._storage.get_identity(name=name)
        if row is not None and row.kind != kind:
            raise InvalidInput(f"identity {name!r} is a {row.kind}, not a {kind}")
        settings = login_settings.merged(row.settings if row else "{}", fields.settings)
        if row is None:
            if kind == "person" and not fields.password:
                raise InvalidInput("missing field 'password' for a new user")
            if kind == "person":
                assert fields.password is not None
                new = person_row(name, fields.password, fields.policies or [], self._now())
            else:
                new = machine_row(name, fields.policies or [], self._now())
            self._storage.create_identity(new._replace(settings=json.dumps(settings)))
            self._record("identity.create", f"identity/{name}", reason=kind)
            return True
        note = ""
        if fields.policies is not None:
            note = self._keep_an_admin(
                f"setting the policies of {name!r}", False, identities={row.id: fields.policies}
            )
        self._storage.update_identity(
            row.id,
            policies=json.dumps(fields.policies) if fields.policies is not None else None,
            password_hash=passwords.hash_password(fields.password) if fields.password else None,
            settings=json.dumps(settings),
        )
        self._record("identity.write", f"identity/{name}", reason=note or "login settings")
        return False

    def login_role(self, kind: str, name: str) -> tuple[IdentityInfo, dict[str, int]]:
        """A machine's or person's identity and its login settings."""
        self._authorize("identities", "identity.read", Capability.READ)
        row = self._require_kind(kind, name)
        return _identity_info(row), login_settings.load(row.settings)

    def login_role_names(self, kind: str) -> list[str]:
        self._authorize("identities", "identity.list", Capability.LIST)
        rows = self._storage.list_identities()
        return [r.name for r in rows if r.kind == kind and (kind == "machine" or r.password_hash)]

    def delete_login_role(self, kind: str, name: str) -> None:
        """Delete a role or user; one that does not exist is no error (Vault's DELETE)."""
        self._authorize("identities", "identity.delete")
        with contextlib.suppress(NotFound):
            self._require_kind(kind, name)
            self.delete_identity(name)

    def set_role_id(self, name: str, role_id: str) -> None:
        self._authorize("identities", "identity.write")
        if not isinstance(role_id, str) or not 1 <= len(role_id) <= 128:
            raise InvalidInput("field 'role_id' must be a string of 1 to 128 characters")
        row = self._require_kind("machine", name)
        self._storage.update_identity(row.id, role_id=role_id)
        self._record("identity.write", f"identity/{name}", reason="role id")

    def set_password(self, name: str, password: str) -> None:
        self._authorize("identities", "identity.write")
        if not isinstance(password, str) or not password:
            raise InvalidInput("field 'password' must be a non-empty string")
        row = self._require_kind("person", name)
        self._storage.update_identity(row.id, password_hash=passwords.hash_password(password))
        self._record("identity.write", f"identity/{name}", reason="password")

    def secret_ids(self, name: str) -> list[SecretIdRow]:
        """A machine's live secret ids (hashes and accessors, never values)."""
        self._authorize("identities", "identity.list", Capability.LIST)
        now = self._now()
        rows = self._storage.list_secret_ids(self._require_kind("machine", name).id)
        return [r for r in rows if r.expires_at is None or r.expires_at > now]

    def find_secret_id(
        self, name: str, *, secret_id: str | None = None, accessor: str | None = None
    ) -> SecretIdRow | None:
        """One live secret id of a machine, by its value or its accessor."""
        wanted = tokens.token_hash(secret_id) if secret_id is not None else None
        for r in self.secret_ids(name):
            if (wanted is not None and r.hash == wanted) or r.accessor == accessor:
                return r
        return None

    def destroy_secret_id(
        self, name: str, *, secret_id: str | None = None, accessor: str | None = None
    ) -> None:
        """Remove one secret id (none found is no error, as Vault answers 204)."""
        self._authorize("identities", "secret_id.delete")
        row = self.find_secret_id(name, secret_id=secret_id, accessor=accessor)
        if row is not None:
            self._storage.delete_secret_id(row.identity_id, row.accessor)
            self._record("secret_id.delete", f"identity/{name}", reason=row.accessor)

    def _require_kind(self, kind: str, name: str) -> IdentityRow:
        row = self._storage.get_identity(name=validate_identity_name(name))
        if row is None or row.kind != kind or (kind == "person" and not row.password_hash):
            what = "role" if kind == "machine" else "user"
            raise NotFound(f"{what} {name!r} does not exist")
        return row

    def list_identities(self) -> list[IdentityInfo]:
        self._authorize("identities", "identity.list", Capability.LIST)
        return [_identity_info(r) for r in self._storage.list_identities()]

    def get_identity(self, name: str) -> IdentityInfo:
        self._authorize("identities", "identity.read", Capability.READ)
        return _identity_info(self._require_identity(name))

    def set_policies(self, name: str, policies: list[str], *, force: bool = False) -> None:
        self._authorize("identities", "identity.write")
        if not isinstance(policies, list) or not all(isinstance(n, str) for n in policies):
            raise InvalidInput("policies must be a list of policy names")
        row = self._require_identity(name)
        self._grantable(policies)
        note = self._keep_an_admin(
            f"setting the policies of {name!r}", force, identities={row.id: policies}
        )
        self._storage.update_identity(row.id, policies=json.dumps(policies))
        reason = "policies" + (f"; {note}" if note else "")
        self._record("identity.write", f"identity/{name}", reason=reason)

    def delete_identity(self, name: str, *, force: bool = False) -> None:
        self._authorize("identities", "identity.delete")
        row = self._require_identity(name)
        if row.id == self.principal.identity_id:
            raise InvalidInput("an identity cannot delete itself")
        note = self._keep_an_admin(f"deleting {name!r}", force, identities={row.id: None})
        self._storage.delete_identity(row.id, now=self._now())
        self._record("identity.delete", f"identity/{name}", reason=note)
        self._tokens_revoked()

    def _tokens_revoked(self) -> None:
        # The revocation stands whatever happens to the leases: a lease this cannot
        # revoke now is left due, for the reaper.
        if self._on_tokens_revoked is not None:
            with contextlib.suppress(SealboxError):
                self._on_tokens_revoked()

    def recover_admin(self, name: str, password: str) -> IdentityInfo:
        """Give a person the ``root`` policy, a new password and enable it (creating it if
        need be): the way back from a lost admin. Only for the master key's holder, the
        embedded vault's owner; :meth:`sealbox.vault.Vault.recover_admin` loads the keys
        first, so a storage connection alone is not enough."""
        if self.principal.auth_method != "local":
            with contextlib.suppress(SealboxError):
                self._record("identity.recover", f"identity/{name}", "denied", "not local")
            raise AccessDenied("recovering an admin needs the vault's master key (embedded)")
        row = self._storage.get_identity(name=validate_identity_name(name))
        if row is None:
            new = person_row(name, password, ["root"], self._now())
            self._storage.create_identity(new)
            self._record("identity.recover", f"identity/{name}", reason="created with root")
            return _identity_info(new)
        if row.kind != "person":
            raise InvalidInput(f"identity {name!r} is a machine; recover a person (a new name)")
        held = json.loads(row.policies)
        self._storage.update_identity(
            row.id,
            policies=json.dumps(held if "root" in held else [*held, "root"]),
            password_hash=passwords.hash_password(password),
            disabled=False,
        )
        self._record("identity.recover", f"identity/{name}", reason="root, new password")
        return _identity_info(self._require_identity(name))

    # -- tokens ----------------------------------------------------------------------------------
    def create_token(
        self,
        *,
        identity: str | None = None,
        ttl: timedelta | None = None,
        max_ttl: timedelta | None = None,
        policies: list[str] | None = None,
        display: str = "",
        orphan: bool = False,
    ) -> tokens.NewToken:
        """A token for another identity (admin) or for oneself with a subset of policies.

        Made with a token, it is that token's child (Vault's token tree): it never outlives
        it, never holds a policy it lacks (unless the parent holds ``root``), and is revoked
        with it. ``orphan`` makes a root of a new tree instead, and needs admin on
        ``sys/tokens`` (Vault's ``no_parent``, which needs sudo).
        """
        if orphan:
            self._authorize("tokens", "token.create")
        parent = None
        if self.principal.token_accessor is not None and not orphan:
            parent = self._storage.get_token(accessor=self.principal.token_accessor)
            if parent is None:
                raise AuthenticationFailed("invalid or expired token")
        held = [p.name for p in self.principal.policies]
        if identity is None or identity == self.principal.name:
            row = self._storage.get_identity(id=self.principal.identity_id)
            if row is None:
                raise InvalidInput(
                    "the local owner has no identity",
                    hint="name the identity the token is for",
                    hint_key="name_identity",
                )
            # A token's own new token (child or orphan) inherits the token's policies, not
            # all its identity's.
            mine = policies is None and self.principal.token_accessor is not None
            chosen = held if mine else policies
        else:
            self._authorize("tokens", "token.create")
            row = self._require_identity(identity)
            chosen = policies
        wanted = json.loads(row.policies) if chosen is None else chosen
        beyond = sorted(set(wanted) - set(held))
        if beyond and not is_root_holder(held):
            raise AccessDenied(
                "a token cannot carry policies its creator does not hold: " + ", ".join(beyond)
            )
        new = self.authenticator.issue(
            row,
            auth_method="token",
            ttl=ttl,
            max_ttl=max_ttl,
            policies=chosen,
            display=display,
            parent=parent,
        )
        reason = new.accessor + (" orphan" if orphan else "")
        self._record("token.create", f"identity/{row.name}", reason=reason)
        return new

    def list_tokens(self, identity: str | None = None) -> list[TokenInfo]:
        self._authorize("tokens", "token.list", Capability.LIST)
        names = {r.id: r.name for r in self._storage.list_identities()}
        ident = self._require_identity(identity).id if identity else None
        return [
            _token_info(r, names.get(r.identity_id, "?")) for r in self._storage.list_tokens(ident)
        ]

    def revoke_token(self, accessor: str) -> None:
        """Revoke a token and every token below it (the count goes to the audit event).

        A token may revoke itself and its descendants without admin on ``sys/tokens``.
        """
        if not self._is_own(accessor):
            self._authorize("tokens", "token.revoke")
        count = self._storage.revoke_tokens(accessor=accessor, now=self._now())
        if not count:
            raise NotFound("no live token with that accessor")
        self._record("token.revoke", f"token/{accessor}", reason=f"{count} tokens")
        self._tokens_revoked()

    def lookup_token(self, *, token: str | None = None, accessor: str | None = None) -> TokenLookup:
        """A live token's listing entry, found by its value or its accessor (Vault's
        ``auth/token/lookup`` and ``lookup-accessor``).

        One's own token and its descendants need nothing more; any other needs ``read``
        on ``sys/tokens`` (what listing tokens needs, less). The check comes first, so a
        caller without it learns nothing about whether the token exists.
        """
        if (token is None) == (accessor is None):
            raise InvalidInput("give a token or an accessor")
        row = self._live_token(token, accessor)
        if row is None or not self._is_own(row.accessor):
            self._authorize("tokens", "token.lookup", Capability.READ)
        if row is None:
            raise InvalidInput("bad token" if token is not None else "invalid accessor")
        owner = self._storage.get_identity(id=row.identity_id)
        name = owner.name if owner is not None else "?"
        return TokenLookup(_token_info(row, name), row.identity_id)

    def revoke_token_value(self, token: str) -> str:
        """Revoke a token named by its value (and its subtree); answers its accessor."""
        row = self._live_token(token, None)
        if row is None:
            self._authorize("tokens", "token.revoke")  # only then: it does not exist
            raise InvalidInput("bad token")
        self.revoke_token(row.accessor)
        return row.accessor

    def _live_token(self, token: str | None, accessor: str | None) -> TokenRow | None:
        if token is not None:
            if not tokens.well_formed(token):
                return None
            row = self._storage.get_token(hash=tokens.token_hash(token))
        else:
            row = self._storage.get_token(accessor=accessor)
        if row is None or row.revoked_at is not None or row.expires_at <= self._now():
            return None
        return row

    def _is_own(self, accessor: str) -> bool:
        """The caller's own token, or one of its descendants."""
        mine = self.principal.token_accessor
        if mine is None:
            return False
        row = self._storage.get_token(accessor=accessor)
        for _ in range(MAX_TOKEN_DEPTH + 1):
            if row is None:
                return False
            if row.accessor == mine:
                return True
            row = self._storage.get_token(accessor=row.parent) if row.parent else None
        return False

    def revoke_identity_tokens(self, name: str) -> int:
        self._authorize("tokens", "token.revoke")
        row = self._require_identity(name)
        count = self._storage.revoke_tokens(identity_id=row.id, now=self._now())
        self._record("token.revoke", f"identity/{name}", reason=f"{count} tokens")
        self._tokens_revoked()
        return count


_LOST = {
    "root": "no identity holding root",
    "admin": "no admin (an identity that may administer sys/identities and sys/policies)",
}


def _census(
    rows: list[IdentityRow],
    documents: dict[str, Policy | None],
    changed: dict[str, list[str] | None] | None = None,
) -> tuple[bool, bool]:
    """(some enabled identity holds root, some may administer identities and policies),
    with policies by name (None: deleted) and identities' changed policy names by id
    (None: deleted). See :meth:`Accounts._keep_an_admin`."""
    changed = changed or {}
    root = admin = False
    for row in rows:
        names = changed.get(row.id, json.loads(row.policies))
        if row.disabled or names is None:
            continue
        held = tuple(p for n in names if (p := documents.get(n)) is not None)
        root = root or is_root_holder(p.name for p in held)
        admin = admin or all(
            decide(held, area, Capability.ADMIN).allowed
            for area in ("sys/identities", "sys/policies")
        )
    return root, admin


def person_row(name: str, password: str, policies: list[str], now: str) -> IdentityRow:
    """A new person identity: a valid name and an Argon2id hash of the password."""
    validate_identity_name(name)
    return IdentityRow(
        id=os.urandom(8).hex(),
        name=name,
        kind="person",
        password_hash=passwords.hash_password(password),
        role_id=None,
        policies=json.dumps(policies),
        created_at=now,
        disabled=False,
    )


def machine_row(name: str, policies: list[str], now: str) -> IdentityRow:
    """A new machine identity: a valid name and a random role id."""
    validate_identity_name(name)
    return IdentityRow(
        id=os.urandom(8).hex(),
        name=name,
        kind="machine",
        password_hash=None,
        role_id=os.urandom(16).hex(),
        policies=json.dumps(policies),
        created_at=now,
        disabled=False,
    )


def bootstrap_admin(
    storage: AuthStorage, name: str, password: str, clock: Clock, actor: Actor
) -> tuple[IdentityInfo, tokens.NewToken]:
    """The first admin identity (root policy) and its token. Refused once any identity exists."""
    if storage.list_identities():
        raise AlreadyExists("the server is already initialised: identities exist")
    row = person_row(name, password, ["root"], clock().isoformat())
    storage.create_identity(row)
    audit = AuditRecorder(storage)
    token = Authenticator(storage, clock, audit).issue(
        row, auth_method="bootstrap", ttl=timedelta(hours=24), max_ttl=timedelta(days=30), kind="p"
    )
    audit.record(
        at=clock().isoformat(), actor=actor, operation="bootstrap", path=f"identity/{name}"
    )
    return _identity_info(row), token
