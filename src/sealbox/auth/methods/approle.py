"""``approle``: a machine's role id and a secret id (Vault's AppRole login)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sealbox.auth import tokens
from sealbox.auth.methods.interface import Credentials, Field, LoginContext
from sealbox.caller import Actor
from sealbox.errors import AuthenticationFailed

if TYPE_CHECKING:
    from sealbox.auth.tokens import NewToken


class AppRoleLogin:
    """Log a machine in; a secret id is spent by the login (its uses and TTL are its own)."""

    name = "approle"
    summary = "Log in with a role id and secret id"
    fields = (Field("role_id"), Field("secret_id"))
    path_field = None

    def subject(self, credentials: Credentials) -> str:
        return f"role:{credentials.text('role_id')[:64]}"

    def login(self, credentials: Credentials, actor: Actor, ctx: LoginContext) -> NewToken:
        role_id, secret_id = credentials.text("role_id"), credentials.text("secret_id")
        row = ctx.storage.get_identity(role_id=role_id) if role_id else None
        ok = (
            row is not None
            and row.kind == "machine"
            and not row.disabled
            and ctx.storage.consume_secret_id(
                row.id, tokens.token_hash(secret_id), ctx.now().isoformat()
            )
        )
        if not ok or row is None:
            ctx.deny(actor, "approle")
            raise AuthenticationFailed("invalid role or secret ID")
        return ctx.grant(actor, row)
