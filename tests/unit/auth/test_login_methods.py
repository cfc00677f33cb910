"""Login methods: the registry (built-ins, entry points, refusals) and each built-in method."""

from __future__ import annotations

import importlib.metadata as md
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from tests.unit.auth.pin_login import TARGET, PinLogin, register

from sealbox import factory
from sealbox.auth import passwords
from sealbox.auth.methods import registry
from sealbox.auth.methods.approle import AppRoleLogin
from sealbox.auth.methods.interface import Credentials
from sealbox.auth.methods.password import PasswordLogin
from sealbox.caller import Actor
from sealbox.errors import AuthenticationFailed, InvalidInput, NotFound
from sealbox.kms.master import UnlockMethod

ACTOR = Actor("remote:192.0.2.1", "api")
PW = "a long enough password"


@pytest.fixture
def vault(home: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    factory.init_vault(home=home, method=UnlockMethod.KEYFILE, key_file=tmp_path / "k.key")
    v = factory.open_vault(home=home, clock=lambda: datetime(2026, 6, 1, tzinfo=UTC))
    v.accounts.create_person("alice", PW, [])
    return v


def _events(vault: Any) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = vault.audit.log(operations=["login"], limit=None)
    return events


# -- the registry --------------------------------------------------------------------------------
def test_the_built_in_methods_are_declared_as_entry_points() -> None:
    """pyproject.toml declares them as the registry knows them (a package can see them)."""
    declared = {ep.name: ep.value for ep in md.entry_points(group=registry.GROUP)}
    assert declared == registry.BUILTIN


def test_built_in_methods_are_found_without_entry_point_discovery(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_discovery(**params: Any) -> Any:
        raise AssertionError("entry points scanned")

    monkeypatch.setattr(md, "entry_points", no_discovery)
    assert isinstance(registry.login_method("password"), PasswordLogin)
    assert isinstance(registry.login_method("approle"), AppRoleLogin)


def test_an_unknown_method_is_not_found() -> None:
    with pytest.raises(NotFound, match="no login method 'jwt'"):
        registry.login_method("jwt")


def test_a_plug_in_is_found_through_its_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch, ("pin", TARGET))
    assert isinstance(registry.login_method("pin"), PinLogin)
    assert list(registry.available()) == ["password", "approle", "userpass", "pin"]


@pytest.mark.parametrize(
    ("name", "target", "error"),
    [
        ("pin", "tests.unit.auth.no_such_module:PinLogin", "'pin' cannot be loaded"),
        ("password", TARGET, "'password' is registered twice"),
        ("pins", TARGET, "it calls itself 'pin'"),
        ("token", "tests.unit.auth.pin_login:CalledToken", "and not 'token'"),
        ("pin", "tests.unit.auth.pin_login:PathFieldNotAString", "path_field 'remember'"),
    ],
)
def test_a_plug_in_that_breaks_the_rules_stops_discovery(
    monkeypatch: pytest.MonkeyPatch, name: str, target: str, error: str
) -> None:
    register(monkeypatch, (name, target))
    with pytest.raises(InvalidInput, match=error) as info:
        registry.available()
    assert info.value.hint


def test_credentials_never_print_a_value() -> None:
    creds = Credentials({"name": "hunter2-pasted", "password": PW})
    assert "hunter2" not in repr(creds) and PW not in repr(creds)
    assert repr(creds) == "Credentials(name, password: ***)"
    assert creds.text("name") == "hunter2-pasted"
    assert Credentials({"name": 7}).text("name") == ""  # never a value of another type


# -- password ------------------------------------------------------------------------------------
def test_password_login_issues_a_personal_token_and_audits_it(vault: Any) -> None:
    auth = vault.authenticator()
    token = auth.login(PasswordLogin(), {"name": "alice", "password": PW}, ACTOR)
    assert token.value.startswith("sbx_p_")
    principal = auth.resolve(token.value)
    assert principal.name == "alice"
    assert auth.describe(token.value).auth_method == "password"
    [event] = _events(vault)
    assert (event["path"], event["outcome"], event["reason"]) == (
        "identity/alice",
        "allowed",
        token.accessor,
    )


def test_password_wrong_credentials_are_one_error_audited_as_denied(vault: Any) -> None:
    auth = vault.authenticator()
    messages = []
    for name, password in (("alice", "not the password"), ("nobody", PW), ("", "")):
        with pytest.raises(AuthenticationFailed) as info:
            auth.login("password", {"name": name, "password": password}, ACTOR)
        messages.append(str(info.value))
    assert set(messages) == {"invalid name or password"}
    paths = [(e["path"], e["outcome"], e["reason"]) for e in _events(vault)]
    assert sorted(paths) == sorted(
        [
            ("identity/alice", "denied", "bad credentials"),
            ("identity/<unknown>", "denied", "bad credentials"),
            ("identity/<unknown>", "denied", "bad credentials"),
        ]
    )


def test_an_unknown_or_disabled_name_costs_one_argon2_check(
    vault: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a wrong password does: timing does not say whether a name exists."""
    passwords.dummy_verify("x")  # the dummy hash is made once per process
    derived: list[int] = []
    real = passwords._derive

    def counted(*args: Any) -> bytes:
        derived.append(1)
        return real(*args)

    monkeypatch.setattr(passwords, "_derive", counted)
    auth = vault.authenticator()
    row = vault._storage.get_identity(name="alice")
    for name in ("nobody", "alice"):
        derived.clear()
        with pytest.raises(AuthenticationFailed):
            auth.login("password", {"name": name, "password": "wrong password"}, ACTOR)
        assert len(derived) == 1, name
    vault._storage.update_identity(row.id, disabled=True)
    derived.clear()
    with pytest.raises(AuthenticationFailed):
        auth.login("password", {"name": "alice", "password": PW}, ACTOR)
    assert len(derived) == 1


def test_password_is_throttled_per_identity() -> None:
    method = PasswordLogin()
    assert method.subject(Credentials({"name": "alice", "password": PW})) == "identity:alice"
    assert method.subject(Credentials({"name": "x" * 100})) == "identity:" + "x" * 64


# -- approle -------------------------------------------------------------------------------------
def test_approle_login_spends_the_secret_id_and_audits_it(vault: Any) -> None:
    info = vault.accounts.create_machine("robot", [])
    secret_id = vault.accounts.new_secret_id("robot", uses=1)
    auth = vault.authenticator()
    creds = {"role_id": info.role_id, "secret_id": secret_id}
    token = auth.login(AppRoleLogin(), creds, ACTOR)
    assert token.value.startswith("sbx_s_")
    assert auth.resolve(token.value).name == "robot"
    assert auth.describe(token.value).auth_method == "approle"
    with pytest.raises(AuthenticationFailed, match="invalid role or secret ID"):
        auth.login("approle", creds, ACTOR)
    outcomes = [(e["path"], e["outcome"]) for e in _events(vault)]
    assert sorted(outcomes) == [("approle", "denied"), ("identity/robot", "allowed")]


def test_approle_refuses_a_person_a_wrong_secret_and_an_empty_role(vault: Any) -> None:
    info = vault.accounts.create_machine("robot", [])
    secret_id = vault.accounts.new_secret_id("robot")
    auth = vault.authenticator()
    for role_id, secret in ((info.role_id, "wrong"), ("", secret_id), ("nope", secret_id)):
        with pytest.raises(AuthenticationFailed, match="invalid role or secret ID"):
            auth.login("approle", {"role_id": role_id, "secret_id": secret}, ACTOR)
    assert AppRoleLogin().subject(Credentials({"role_id": "r1"})) == "role:r1"
