"""Vault's login roles in the core (issue 15): AppRole roles are machines, userpass users are
people; their fields, their secret ids' uses and TTL, their tokens' TTLs, and who may grant
which policies."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.unit.auth.test_token_tree import Clock

from sealbox import factory
from sealbox.auth import login_settings
from sealbox.auth.policy import parse_policy
from sealbox.caller import Actor
from sealbox.errors import AccessDenied, AuthenticationFailed, InvalidInput, NotFound
from sealbox.kms.master import UnlockMethod

ACTOR = Actor("remote:192.0.2.1", "api")
PW = "a long enough password"
CLOCK = Clock()


@pytest.fixture
def vault(home: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    factory.init_vault(home=home, method=UnlockMethod.KEYFILE, key_file=tmp_path / "k.key")
    v = factory.open_vault(home=home, clock=CLOCK)
    for name, path in (("reader", "payments/**"), ("idadmin", "sys/identities")):
        caps = ["admin"] if name == "idadmin" else ["read"]
        rules = [{"path": path, "capabilities": caps}]
        v.accounts.apply_policy(parse_policy({"name": name, "rules": rules}))
    return v


def login(vault: Any, role: str, secret_id: str) -> Any:
    role_id = vault.accounts.login_role("machine", role)[0].role_id
    return vault.authenticator().login(
        "approle", {"role_id": role_id, "secret_id": secret_id}, ACTOR
    )


# -- fields --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "seconds"), [(3600, 3600), ("3600", 3600), ("1h", 3600), ("1h30m", 5400), ("45s", 45), ("0", 0)])  # fmt: skip
def test_vault_durations(value: object, seconds: int) -> None:
    assert login_settings.parse_vault_duration("token_ttl", value) == seconds


@pytest.mark.parametrize("value", ["1 hour", "h", "-5", True, None, 10**9, "1y"])
def test_a_bad_duration_names_its_field(value: object) -> None:
    with pytest.raises(InvalidInput, match="token_ttl"):
        login_settings.parse_vault_duration("token_ttl", value)


def test_fields_parse_as_the_cli_and_hvac_send_them() -> None:
    cli = {"token_policies": "a,b,default", "secret_id_num_uses": "1", "token_ttl": "1h"}
    got = login_settings.parse_fields(cli, login_settings.ROLE_FIELDS)
    assert got.policies == ["a", "b"]  # sealbox has no default policy
    assert got.settings == {"token_ttl": 3600, "secret_id_num_uses": 1}
    hvac = {"token_policies": ["a"], "secret_id_ttl": 60, "bind_secret_id": True}
    got = login_settings.parse_fields(hvac, login_settings.ROLE_FIELDS)
    assert (got.policies, got.settings) == (["a"], {"secret_id_ttl": 60})
    assert "password" not in repr(login_settings.parse_fields({"password": "x"}, login_settings.USER_FIELDS).settings)  # fmt: skip


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"bind_secret_id": False}, "bind_secret_id"),
        ({"bind_secret_id": "false"}, "bind_secret_id"),
        ({"secret_id_bound_cidrs": ["10.0.0.0/8"], "zzz": 1}, "'secret_id_bound_cidrs' (sealbox does not bind secret ids to networks), 'zzz'"),
        ({"token_type": "batch"}, "token_type"),
        ({"period": 60}, "period"),
        ({"secret_id_num_uses": -1}, "secret_id_num_uses"),
        ({"token_policies": 5}, "token_policies"),
        ({"password": "x"}, "password"),  # a role has no password
    ],
)  # fmt: skip
def test_unsupported_fields_are_refused_by_name(body: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidInput, match=named.replace("(", r"\(").replace(")", r"\)")):
        login_settings.parse_fields(body, login_settings.ROLE_FIELDS)


def test_a_token_ttl_above_the_max_is_refused() -> None:
    assert login_settings.merged('{"token_max_ttl": 60}', {"token_max_ttl": 0}) == {}
    with pytest.raises(InvalidInput, match="token_max_ttl"):
        login_settings.merged('{"token_max_ttl": 60}', {"token_ttl": 120})


# -- roles ---------------------------------------------------------------------------------------
def test_a_role_is_a_machine_with_its_settings(vault: Any) -> None:
    accounts = vault.accounts
    assert accounts.write_login_role(
        "machine", "app", {"token_policies": "reader", "token_ttl": "10m"}
    )
    assert not accounts.write_login_role("machine", "app", {"secret_id_num_uses": 3})
    info, settings = accounts.login_role("machine", "app")
    assert (info.kind, info.policies) == ("machine", ("reader",))
    assert settings == {"token_ttl": 600, "secret_id_num_uses": 3}  # an update keeps the rest
    assert accounts.login_role_names("machine") == ["app"]
    with pytest.raises(InvalidInput, match="is a machine"):
        accounts.write_login_role("person", "app", {"password": PW})
    with pytest.raises(NotFound):
        accounts.login_role("person", "app")
    accounts.delete_login_role("machine", "app")
    accounts.delete_login_role("machine", "app")  # gone already: no error, as in Vault
    assert accounts.login_role_names("machine") == []


def test_secret_id_uses_are_spent_and_the_id_is_gone_at_zero(vault: Any) -> None:
    vault.accounts.write_login_role("machine", "app", {"secret_id_num_uses": 2})
    value, row = vault.accounts.mint_secret_id("app")
    assert row.uses_left == 2
    login(vault, "app", value)
    assert vault.accounts.find_secret_id("app", secret_id=value).uses_left == 1
    login(vault, "app", value)
    assert vault.accounts.secret_ids("app") == []
    with pytest.raises(AuthenticationFailed):
        login(vault, "app", value)


def test_secret_id_ttl_and_token_ttls_are_the_roles(vault: Any) -> None:
    vault.accounts.write_login_role(
        "machine", "app", {"secret_id_ttl": "1m", "token_ttl": "5m", "token_max_ttl": "10m"}
    )
    value, row = vault.accounts.mint_secret_id("app")
    token = login(vault, "app", value)
    info = vault.authenticator().describe(token.value)
    assert datetime.fromisoformat(info.expires_at) == CLOCK.now + timedelta(minutes=5)
    assert datetime.fromisoformat(info.max_expires_at) == CLOCK.now + timedelta(minutes=10)
    CLOCK.now += timedelta(seconds=61)
    with pytest.raises(AuthenticationFailed):
        login(vault, "app", value)
    assert vault.accounts.find_secret_id("app", accessor=row.accessor) is None


def test_secret_ids_are_destroyed_by_value_or_accessor(vault: Any) -> None:
    vault.accounts.write_login_role("machine", "app", {})
    first, _ = vault.accounts.mint_secret_id("app")
    _, second = vault.accounts.mint_secret_id("app")
    vault.accounts.destroy_secret_id("app", secret_id=first)
    vault.accounts.destroy_secret_id("app", accessor=second.accessor)
    vault.accounts.destroy_secret_id("app", accessor="nothing")  # none: no error
    assert vault.accounts.secret_ids("app") == []
    with pytest.raises(AuthenticationFailed):
        login(vault, "app", first)


def test_a_custom_role_id_logs_in_and_must_be_unique(vault: Any) -> None:
    for name in ("a", "b"):
        vault.accounts.write_login_role("machine", name, {})
    vault.accounts.set_role_id("a", "mine")
    value, _ = vault.accounts.mint_secret_id("a")
    creds = {"role_id": "mine", "secret_id": value}
    assert vault.authenticator().resolve(vault.authenticator().login("approle", creds, ACTOR).value).name == "a"  # fmt: skip
    with pytest.raises(Exception, match="taken"):
        vault.accounts.set_role_id("b", "mine")


def test_a_user_is_a_person_who_logs_in_with_userpass(vault: Any) -> None:
    accounts = vault.accounts
    with pytest.raises(InvalidInput, match="password"):
        accounts.write_login_role("person", "alice", {"token_policies": "reader"})
    accounts.write_login_role("person", "alice", {"password": PW, "policies": ["reader"], "token_ttl": 120})  # fmt: skip
    auth = vault.authenticator()
    token = auth.login("userpass", {"username": "alice", "password": PW}, ACTOR)
    assert auth.resolve(token.value).kind == "person"
    assert datetime.fromisoformat(auth.describe(token.value).expires_at) == CLOCK.now + timedelta(seconds=120)  # fmt: skip
    with pytest.raises(AuthenticationFailed, match="invalid username or password"):
        auth.login("userpass", {"username": "alice", "password": "wrong"}, ACTOR)
    accounts.set_password("alice", "another long password")
    auth.login("userpass", {"username": "alice", "password": "another long password"}, ACTOR)
    # The password method logs the same person in.
    auth.login("password", {"name": "alice", "password": "another long password"}, ACTOR)


def test_a_caller_grants_only_policies_it_holds_unless_root(vault: Any) -> None:
    vault.accounts.write_login_role("machine", "ops", {"token_policies": "idadmin"})
    ops = vault.authenticator().issue(vault._storage.get_identity(name="ops"), auth_method="token")
    principal = vault.authenticator().resolve(ops.value)
    accounts = vault.as_principal(principal, Actor("ops", "api")).accounts
    with pytest.raises(AccessDenied, match="reader"):
        accounts.write_login_role("machine", "app", {"token_policies": "reader"})
    with pytest.raises(AccessDenied, match="root"):
        accounts.write_login_role("person", "u", {"password": PW, "token_policies": ["root"]})
    accounts.write_login_role("machine", "app", {"token_policies": ["idadmin"]})
    accounts.write_login_role("machine", "app", {"token_ttl": 60})  # no policies: no grant
    # The root holder grants anything.
    vault.accounts.write_login_role("machine", "app", {"token_policies": "reader"})
