"""Identities, tokens and policies: creation, login, lookup, renewal and revocation.

:class:`Accounts` is the authorised, audited administration API (reached through
``Vault.accounts``); :class:`Authenticator` turns credentials (a password, a role id +
secret id, a token) into a :class:`~sealbox.auth.principal.Principal`. Only token hashes
and secret-id hashes are stored; a token's *accessor* names it in listings and logs.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sealbox.audit.recorder import Actor, AuditRecorder
from sealbox.auth import passwords, tokens
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
from sealbox.errors import (
    AccessDenied,
    AlreadyExists,
    AuthenticationFailed,
    InvalidInput,
    NotFound,
    SealboxError,
)
from sealbox.model import SCOPE_RE
from sealbox.storage.interface import IdentityRow, SecretIdRow, Storage, TokenRow

Clock = Callable[[], datetime]

DEFAULT_TTL = timedelta(hours=1)
DEFAULT_MAX_TTL = timedelta(hours=24)
LIMIT_MAX_TTL = timedelta(days=365)
BUILTIN = {"root": ROOT_POLICY}


@dataclass(frozen=True)
class TokenInfo:
    """A token as listings show it: never the token, only its accessor."""

    accessor: str
    identity: str
    policies: tuple[str, ...]
    auth_method: str
    created_at: str
    expires_at: str
    max_expires_at: str
    revoked: bool
    display: str


@dataclass(frozen=True)
class IdentityInfo:
    id: str
    name: str
    kind: str
    policies: tuple[str, ...]
    role_id: str | None
    created_at: str
    disabled: bool


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
    )


def validate_identity_name(name: str) -> str:
    if not isinstance(name, str) or not SCOPE_RE.match(name):
        raise InvalidInput("invalid identity name: use 1-63 lowercase letters, digits, - and _")
    return name


def load_policies(storage: Storage, names: list[str]) -> tuple[Policy, ...]:
    """Policies by name; unknown names are skipped (a deleted policy grants nothing)."""
    found = [BUILTIN[n] for n in names if n in BUILTIN]
    stored = storage.get_policies([n for n in names if n not in BUILTIN])
    found.extend(policy_from_json(stored[n]) for n in names if n in stored)
    return tuple(found)


def _ttl(value: timedelta | None, default: timedelta) -> timedelta:
    ttl = default if value is None else value
    if ttl <= timedelta(0) or ttl > LIMIT_MAX_TTL:
        raise InvalidInput("a token TTL lies between 1 second and 365 days")
    return ttl


class Authenticator:
    """Credentials in, principal (or a token) out. Unauthenticated callers use this."""

    def __init__(self, storage: Storage, clock: Clock, audit: AuditRecorder | None = None) -> None:
        self._storage = storage
        self._clock = clock
        self._audit = audit or AuditRecorder(storage)

    def _now(self) -> datetime:
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
    ) -> tokens.NewToken:
        """Mint a token for an identity (its own policies, or a subset of them)."""
        own = json.loads(identity.policies)
        chosen = own if policies is None else policies
        extra = set(chosen) - set(own)
        if extra:
            raise AccessDenied(
                "a token cannot carry policies its identity does not have: "
                + ", ".join(sorted(extra))
            )
        now = self._now()
        max_ttl_v = _ttl(max_ttl, DEFAULT_MAX_TTL)
        ttl_v = min(_ttl(ttl, DEFAULT_TTL), max_ttl_v)
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
            )
        )
        return new

    def login_password(
        self, name: str, password: str, actor: Actor, ttl: timedelta | None = None
    ) -> tokens.NewToken:
        row = self._storage.get_identity(name=name) if SCOPE_RE.match(name or "") else None
        if row is None or row.kind != "person" or not row.password_hash:
            passwords.dummy_verify(password)  # same cost whether or not the name exists
            # NOTE: not the text given: a name that matches nobody is often a password
            # pasted into the wrong field, and audit events never hold values in clear.
            self._record(actor, "login", UNKNOWN_IDENTITY, "denied", "bad credentials")
            raise AuthenticationFailed("invalid name or password")
        if not passwords.verify_password(password, row.password_hash) or row.disabled:
            self._record(actor, "login", f"identity/{name}", "denied", "bad credentials")
            raise AuthenticationFailed("invalid name or password")
        token = self.issue(row, auth_method="password", ttl=ttl, kind="p")
        who = actor._replace(
            identity=row.name,
            identity_id=row.id,
            auth_method="password",
            token_accessor=token.accessor,
        )
        self._record(who, "login", f"identity/{name}", "allowed", token.accessor)
        return token

    def login_approle(
        self, role_id: str, secret_id: str, actor: Actor, ttl: timedelta | None = None
    ) -> tokens.NewToken:
        row = self._storage.get_identity(role_id=role_id) if role_id else None
        ok = (
            row is not None
            and row.kind == "machine"
            and not row.disabled
            and self._storage.consume_secret_id(
                row.id, tokens.token_hash(secret_id), self._now().isoformat()
            )
        )
        if not ok or row is None:
            self._record(actor, "login", "approle", "denied", "bad credentials")
            raise AuthenticationFailed("invalid role id or secret id")
        token = self.issue(row, auth_method="approle", ttl=ttl)
        self._record(
            actor._replace(
                identity=row.name,
                identity_id=row.id,
                auth_method="approle",
                token_accessor=token.accessor,
            ),
            "login",
            f"identity/{row.name}",
            "allowed",
            token.accessor,
        )
        return token

    def resolve(self, token_value: str) -> Principal:
        """The principal behind a token; every failure is the same error."""
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
        # A token carries the policies it was issued with, limited to what its identity
        # still has: removing a policy from an identity takes effect immediately.
        names = [n for n in json.loads(row.policies) if n in json.loads(identity.policies)]
        return Principal(
            identity.id,
            identity.name,
            identity.kind,
            "token",
            load_policies(self._storage, names),
            token_accessor=row.accessor,
        )

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
    ) -> str:
        """Extend a token (up to its max TTL); returns the new expiry."""
        principal = self.resolve(token_value)
        assert principal.token_accessor is not None
        row = self._storage.get_token(accessor=principal.token_accessor)
        assert row is not None
        now = self._now()
        wanted = now + _ttl(increment, DEFAULT_TTL)
        expires = min(wanted, datetime.fromisoformat(row.max_expires_at)).isoformat()
        self._storage.renew_token(row.accessor, expires)
        who = (actor or Actor(principal.name, "api"))._replace(
            identity=principal.name,
            identity_id=principal.identity_id,
            auth_method=principal.auth_method,
            token_accessor=row.accessor,
        )
        self._record(who, "token.renew", f"token/{row.accessor}", "allowed", expires)
        return expires


class Accounts:
    """Administration of identities, tokens and policies, authorised and audited."""

    def __init__(
        self,
        storage: Storage,
        principal: Principal,
        actor: Actor,
        clock: Clock,
        audit: AuditRecorder | None = None,
    ) -> None:
        self._storage = storage
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
    def apply_policy(self, policy: Policy) -> None:
        self._authorize("policies", "policy.write")
        if policy.name in BUILTIN:
            raise InvalidInput(f"policy {policy.name!r} is built in and cannot be changed")
        self._storage.put_policy(policy.name, policy.to_json(), self._now())
        self._record("policy.write", f"sys/policies/{policy.name}")

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

    def delete_policy(self, name: str) -> None:
        self._authorize("policies", "policy.delete")
        if name in BUILTIN:
            raise InvalidInput(f"policy {name!r} is built in and cannot be deleted")
        self._storage.delete_policy(name)
        self._record("policy.delete", f"sys/policies/{name}")

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

    def create_person(self, name: str, password: str, policies: list[str]) -> IdentityInfo:
        self._authorize("identities", "identity.create")
        row = person_row(name, password, self._check_policy_names(policies), self._now())
        self._storage.create_identity(row)
        self._record("identity.create", f"identity/{name}", reason="person")
        return _identity_info(row)

    def create_machine(self, name: str, policies: list[str]) -> IdentityInfo:
        self._authorize("identities", "identity.create")
        validate_identity_name(name)
        row = IdentityRow(
            id=os.urandom(8).hex(),
            name=name,
            kind="machine",
            password_hash=None,
            role_id=os.urandom(16).hex(),
            policies=json.dumps(self._check_policy_names(policies)),
            created_at=self._now(),
            disabled=False,
        )
        self._storage.create_identity(row)
        self._record("identity.create", f"identity/{name}", reason="machine")
        return _identity_info(row)

    def new_secret_id(
        self, name: str, *, uses: int | None = None, ttl: timedelta | None = None
    ) -> str:
        """A secret id for a machine identity, shown once (single-use when uses=1)."""
        self._authorize("identities", "secret_id.create")
        row = self._require_identity(name)
        if row.kind != "machine":
            raise InvalidInput(f"identity {name!r} is not a machine")
        if uses is not None and uses < 1:
            raise InvalidInput("uses must be at least 1")
        value = tokens.mint("s").value
        now = self._clock()
        self._storage.add_secret_id(
            SecretIdRow(
                accessor=os.urandom(8).hex(),
                identity_id=row.id,
                hash=tokens.token_hash(value),
                uses_left=uses,
                expires_at=(now + ttl).isoformat() if ttl else None,
                created_at=now.isoformat(),
            )
        )
        self._record("secret_id.create", f"identity/{name}")
        return value

    def list_identities(self) -> list[IdentityInfo]:
        self._authorize("identities", "identity.list", Capability.LIST)
        return [_identity_info(r) for r in self._storage.list_identities()]

    def get_identity(self, name: str) -> IdentityInfo:
        self._authorize("identities", "identity.read", Capability.READ)
        return _identity_info(self._require_identity(name))

    def set_policies(self, name: str, policies: list[str]) -> None:
        self._authorize("identities", "identity.write")
        row = self._require_identity(name)
        self._storage.update_identity(
            row.id, policies=json.dumps(self._check_policy_names(policies))
        )
        self._record("identity.write", f"identity/{name}", reason="policies")

    def delete_identity(self, name: str) -> None:
        self._authorize("identities", "identity.delete")
        row = self._require_identity(name)
        if row.id == self.principal.identity_id:
            raise InvalidInput("an identity cannot delete itself")
        self._storage.delete_identity(row.id)
        self._record("identity.delete", f"identity/{name}")

    # -- tokens ----------------------------------------------------------------------------------
    def create_token(
        self,
        *,
        identity: str | None = None,
        ttl: timedelta | None = None,
        max_ttl: timedelta | None = None,
        policies: list[str] | None = None,
        display: str = "",
    ) -> tokens.NewToken:
        """A token for another identity (admin) or for oneself with a subset of policies."""
        if identity is None or identity == self.principal.name:
            row = self._storage.get_identity(id=self.principal.identity_id)
            if row is None:
                raise InvalidInput("the local owner has no identity; name one with --identity")
        else:
            self._authorize("tokens", "token.create")
            row = self._require_identity(identity)
        new = self.authenticator.issue(
            row, auth_method="token", ttl=ttl, max_ttl=max_ttl, policies=policies, display=display
        )
        self._record("token.create", f"identity/{row.name}", reason=new.accessor)
        return new

    def list_tokens(self, identity: str | None = None) -> list[TokenInfo]:
        self._authorize("tokens", "token.list", Capability.LIST)
        names = {r.id: r.name for r in self._storage.list_identities()}
        ident = self._require_identity(identity).id if identity else None
        return [
            _token_info(r, names.get(r.identity_id, "?")) for r in self._storage.list_tokens(ident)
        ]

    def revoke_token(self, accessor: str) -> None:
        own = accessor == self.principal.token_accessor
        if not own:
            self._authorize("tokens", "token.revoke")
        if not self._storage.revoke_tokens(accessor=accessor, now=self._now()):
            raise NotFound("no live token with that accessor")
        self._record("token.revoke", f"token/{accessor}")

    def revoke_identity_tokens(self, name: str) -> int:
        self._authorize("tokens", "token.revoke")
        row = self._require_identity(name)
        count = self._storage.revoke_tokens(identity_id=row.id, now=self._now())
        self._record("token.revoke", f"identity/{name}", reason=f"{count} tokens")
        return count


#: The audit path of a login that named no existing person.
UNKNOWN_IDENTITY = "identity/<unknown>"


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


def bootstrap_admin(
    storage: Storage, name: str, password: str, clock: Clock, actor: Actor
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
