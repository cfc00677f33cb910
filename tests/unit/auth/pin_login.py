"""A login method that is not sealbox's: what a package adds through an entry point.

A person's name in the path (as Vault's userpass takes it) and one shared PIN in the body.
The tests register it as ``pin`` with a stand-in entry point (:func:`register`) and expect a
working ``/v1/auth/pin/login/<person>`` with no server change.
"""

from __future__ import annotations

import hmac
import importlib.metadata as md
from typing import Any

import pytest

from sealbox.auth.methods.interface import Credentials, Field, FieldKind, LoginContext
from sealbox.auth.methods.registry import GROUP
from sealbox.auth.tokens import NewToken
from sealbox.caller import Actor
from sealbox.errors import AuthenticationFailed
from sealbox.model import SCOPE_RE

PIN = "2468"
TARGET = "tests.unit.auth.pin_login:PinLogin"


class PinLogin:
    name = "pin"
    summary = "Log in with a PIN (a test plug-in)"
    fields = (
        Field("person", pattern=SCOPE_RE),
        Field("pin", nonempty=True),
        Field("remember", FieldKind.BOOL, required=False),
    )
    path_field = "person"

    def subject(self, credentials: Credentials) -> str:
        return f"identity:{credentials.text('person')[:64]}"

    def login(self, credentials: Credentials, actor: Actor, ctx: LoginContext) -> NewToken:
        person = credentials.text("person")
        row = ctx.storage.get_identity(name=person) if SCOPE_RE.match(person) else None
        if row is None or row.kind != "person" or row.disabled:
            ctx.deny(actor, "identity/<unknown>")
            raise AuthenticationFailed("invalid person or PIN")
        if not hmac.compare_digest(credentials.text("pin").encode(), PIN.encode()):
            ctx.deny(actor, f"identity/{row.name}")
            raise AuthenticationFailed("invalid person or PIN")
        return ctx.grant(actor, row, kind="p")


class PathFieldNotAString(PinLogin):
    path_field = "remember"


class CalledToken(PinLogin):
    name = "token"


def register(monkeypatch: pytest.MonkeyPatch, *extra: tuple[str, str]) -> None:
    """Make ``entry_points`` also list ``(name, "module:attr")`` in the login group."""
    real = md.entry_points
    points = [md.EntryPoint(name, value, GROUP) for name, value in extra]

    def patched(**params: Any) -> Any:
        found = real(**params)
        if params.get("group") == GROUP:
            return md.EntryPoints([*found, *points])
        return found

    monkeypatch.setattr(md, "entry_points", patched)
