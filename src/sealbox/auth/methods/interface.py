"""What a login method is: its name, the fields it takes, its throttle subject, its login.

A method declares its fields (:class:`Field`) so that a front end checks a request
against them before the method runs: the server types a JSON body with them and the
OpenAPI document describes them, with no code of its own per method. The method then gets
the checked :class:`Credentials`, the caller's :class:`~sealbox.caller.Actor` and a
:class:`LoginContext` (the Authenticator's storage, clock and audit), and answers with a
token from :meth:`LoginContext.grant`, or raises ``AuthenticationFailed`` after
:meth:`LoginContext.deny`. Every method's events then have one shape: operation
``login``, ``allowed`` on ``identity/<name>`` with the token's accessor as reason, or
``denied`` with reason ``bad credentials``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from sealbox.caller import Actor

if TYPE_CHECKING:
    from sealbox.audit.recorder import AuditRecorder
    from sealbox.auth.service import Authenticator
    from sealbox.auth.tokens import NewToken
    from sealbox.storage.interface import AccountStore
    from sealbox.storage.rows import IdentityRow

#: A method's name: the ``<name>`` of ``/v1/auth/<name>/login`` (Vault's mount path) and
#: the ``auth_method`` its tokens record.
METHOD_NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}\Z")
#: Names a method cannot take: ``/v1/auth/token/…`` is the calling token's own routes.
RESERVED_NAMES = frozenset({"token"})
#: The audit reason of every refused login (never the credentials, never which one was wrong).
BAD_CREDENTIALS = "bad credentials"


class FieldKind(Enum):
    """The JSON type of a credential field."""

    STR = "string"
    STR_LIST = "list of strings"
    INT = "integer"
    BOOL = "boolean"


@dataclass(frozen=True)
class Field:
    """One credential a method takes.

    ``pattern`` is documentation for clients (the OpenAPI schema): a value outside it
    still reaches the method, which refuses it as bad credentials, so that a malformed
    name costs and answers the same as an unknown one.
    """

    name: str
    kind: FieldKind = FieldKind.STR
    required: bool = True
    pattern: re.Pattern[str] | None = None
    #: Not the empty string (documented as ``minLength: 1``; the method refuses it).
    nonempty: bool = False


class Credentials:
    """A login request's checked fields. Its repr names the fields, never a value: a
    name field often holds a password pasted into the wrong box."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)

    def text(self, key: str) -> str:
        """A string field (required, or ``""`` when absent)."""
        value = self._values.get(key, "")
        return value if isinstance(value, str) else ""

    def opt_text(self, key: str) -> str | None:
        value = self._values.get(key)
        return value if isinstance(value, str) else None

    def get(self, key: str) -> Any:
        """A field of another kind as the front end checked it (None when absent)."""
        return self._values.get(key)

    def __repr__(self) -> str:
        return f"Credentials({', '.join(sorted(self._values))}: ***)"


class LoginContext:
    """What a method may use of the Authenticator that runs it."""

    def __init__(
        self,
        authenticator: Authenticator,
        storage: AccountStore,
        clock: Callable[[], datetime],
        audit: AuditRecorder,
        method: str,
        ttl: timedelta | None = None,
    ) -> None:
        self._authenticator = authenticator
        self.storage = storage
        self.clock = clock
        self._audit = audit
        self._method = method
        self._ttl = ttl

    def now(self) -> datetime:
        return self.clock()

    def deny(self, actor: Actor, path: str) -> None:
        """Audit a refused login on ``path`` (``identity/<name>``, or a placeholder when
        the credentials name nobody: never the text given)."""
        self._record(actor, path, "denied", BAD_CREDENTIALS)

    def grant(self, actor: Actor, identity: IdentityRow, *, kind: str = "s") -> NewToken:
        """Issue the identity a login token (its own policies and login settings'
        ``token_ttl`` / ``token_max_ttl``; a root of the token tree) and audit the login as
        made by it."""
        from sealbox.auth import login_settings

        settings = login_settings.load(identity.settings)
        token = self._authenticator.issue(
            identity,
            auth_method=self._method,
            ttl=self._ttl or login_settings.seconds(settings, "token_ttl"),
            max_ttl=login_settings.seconds(settings, "token_max_ttl"),
            kind=kind,
        )
        who = actor._replace(
            identity=identity.name,
            identity_id=identity.id,
            auth_method=self._method,
            token_accessor=token.accessor,
        )
        self._record(who, f"identity/{identity.name}", "allowed", token.accessor)
        return token

    def _record(self, actor: Actor, path: str, outcome: str, reason: str) -> None:
        self._audit.record(
            at=self.now().isoformat(),
            actor=actor,
            operation="login",
            path=path,
            outcome=outcome,
            reason=reason,
        )


class LoginMethod(Protocol):
    """A way to log in. Implementations are stateless or keep only caches (a key set):
    one instance serves a whole process, concurrently."""

    @property
    def name(self) -> str:
        """Where it is served (``/v1/auth/<name>/login``) and what its tokens record."""
        ...

    @property
    def summary(self) -> str:
        """One line for the API document ("Log in with a role id and secret id")."""
        ...

    @property
    def fields(self) -> tuple[Field, ...]:
        """Every credential it takes; a request with another field is refused (400)."""
        ...

    @property
    def path_field(self) -> str | None:
        """The string field that the path segment after ``login/`` carries
        (``/v1/auth/userpass/login/<username>``), or None: the method takes no segment."""
        ...

    def subject(self, credentials: Credentials) -> str:
        """The account being tried, which login limits back off (``identity:<name>``,
        ``role:<role_id>``). Methods that log in the same accounts share a subject."""
        ...

    def login(self, credentials: Credentials, actor: Actor, ctx: LoginContext) -> NewToken:
        """A token for the credentials' identity, or ``AuthenticationFailed`` (one
        message whatever was wrong) after :meth:`LoginContext.deny`."""
        ...
