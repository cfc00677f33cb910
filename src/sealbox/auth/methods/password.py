"""``password``: a person's name and password (Argon2id), served at ``/v1/auth/login`` too."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sealbox.auth import passwords
from sealbox.auth.methods.interface import Credentials, Field, LoginContext
from sealbox.caller import Actor
from sealbox.errors import AuthenticationFailed
from sealbox.model import SCOPE_RE

if TYPE_CHECKING:
    from sealbox.auth.tokens import NewToken

#: The audit path of a login that named no existing person.
UNKNOWN_IDENTITY = "identity/<unknown>"


class PasswordLogin:
    """Log a person in by name and password; their tokens are personal (``sbx_p_``)."""

    name = "password"
    summary = "Log in with a name and password"
    fields = (
        Field("name", pattern=SCOPE_RE),
        Field("password", nonempty=True),
    )
    path_field = None

    def subject(self, credentials: Credentials) -> str:
        return f"identity:{credentials.text('name')[:64]}"

    def login(self, credentials: Credentials, actor: Actor, ctx: LoginContext) -> NewToken:
        return person_login(
            credentials.text("name"), credentials.text("password"), actor, ctx,
            "invalid name or password",
        )  # fmt: skip


class UserpassLogin:
    """Vault's ``userpass``: a person's name (in the path) and password, the same checks
    and login limits as ``password`` (:func:`person_login`, subject ``identity:<name>``)."""

    name = "userpass"
    summary = "Log in with a username and password (Vault's userpass)"
    fields = (
        Field("username", pattern=SCOPE_RE),
        Field("password", nonempty=True),
    )
    path_field = "username"

    def subject(self, credentials: Credentials) -> str:
        return f"identity:{credentials.text('username')[:64]}"

    def login(self, credentials: Credentials, actor: Actor, ctx: LoginContext) -> NewToken:
        return person_login(
            credentials.text("username"), credentials.text("password"), actor, ctx,
            "invalid username or password",
        )  # fmt: skip


def person_login(
    name: str, password: str, actor: Actor, ctx: LoginContext, refusal: str
) -> NewToken:
    """A person's token for the right password; ``refusal`` (one message whatever was
    wrong) otherwise, at the same cost whether or not the name exists."""
    row = ctx.storage.get_identity(name=name) if SCOPE_RE.match(name) else None
    if row is None or row.kind != "person" or not row.password_hash:
        passwords.dummy_verify(password)  # same cost whether or not the name exists
        # NOTE: not the text given: a name that matches nobody is often a password
        # pasted into the wrong field, and audit events never hold values in clear.
        ctx.deny(actor, UNKNOWN_IDENTITY)
        raise AuthenticationFailed(refusal)
    if not passwords.verify_password(password, row.password_hash) or row.disabled:
        ctx.deny(actor, f"identity/{name}")
        raise AuthenticationFailed(refusal)
    return ctx.grant(actor, row, kind="p")
