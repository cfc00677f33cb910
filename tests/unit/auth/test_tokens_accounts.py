"""Tokens, passwords, identities, AppRole logins and the authorisation of Vault calls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sealbox import factory
from sealbox.auth import passwords, tokens
from sealbox.auth.policy import parse_policy
from sealbox.auth.service import Authenticator, bootstrap_admin
from sealbox.caller import Actor
from sealbox.errors import AccessDenied, AlreadyExists, AuthenticationFailed, InvalidInput, NotFound
from sealbox.kms.master import UnlockMethod
from sealbox.model import SecretRef, SecretValue

ACTOR = Actor("test", "test")
PW = "a long enough password"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 6, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_token_format_and_checksum() -> None:
    new = tokens.mint("s")
    assert tokens.TOKEN_RE.match(new.value)
    assert tokens.well_formed(new.value)
    assert new.value not in repr(new)
    flipped = new.value[:-1] + ("A" if new.value[-1] != "A" else "B")
    assert not tokens.well_formed(flipped)
    assert not tokens.well_formed("sbx_s_short")
    assert new.hash == tokens.token_hash(new.value) and new.value not in new.hash


def test_password_hashing() -> None:
    encoded = passwords.hash_password(PW)
    assert PW not in encoded
    assert passwords.verify_password(PW, encoded)
    assert not passwords.verify_password(PW + "x", encoded)
    assert not passwords.verify_password(PW, "garbage")
    with pytest.raises(InvalidInput):
        passwords.hash_password("short")


@pytest.fixture
def vault(home: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    clock = Clock()
    factory.init_vault(home=home, method=UnlockMethod.KEYFILE, key_file=tmp_path / "k.key")
    v = factory.open_vault(home=home, clock=clock)
    v.create_project("payments")
    v.set(SecretRef("payments", "prod", "DB_URL"), SecretValue("db"))
    v.set(SecretRef("payments", "prod", "ROOT_KEY"), SecretValue("root"))
    v.set(SecretRef("payments", "dev", "DB_URL"), SecretValue("dev-db"))
    v.clock = clock  # type: ignore[attr-defined]
    return v


def test_bootstrap_once(vault) -> None:  # type: ignore[no-untyped-def]
    storage = vault._storage
    info, token = bootstrap_admin(storage, "admin", PW, vault.clock, ACTOR)
    assert info.policies == ("root",)
    principal = Authenticator(storage, vault.clock).resolve(token.value)
    assert principal.name == "admin"
    with pytest.raises(AlreadyExists):
        bootstrap_admin(storage, "admin2", PW, vault.clock, ACTOR)


def make_ci(vault):  # type: ignore[no-untyped-def]
    acc = vault.accounts
    acc.apply_policy(
        parse_policy(
            {
                "name": "ci",
                "rules": [
                    {"path": "payments/prod/*", "capabilities": ["read", "list"]},
                    {"path": "payments/prod/ROOT_*", "capabilities": ["deny"]},
                ],
            }
        )
    )
    acc.create_machine("ci", ["ci"])
    return acc


def test_approle_login_and_least_privilege(vault) -> None:  # type: ignore[no-untyped-def]
    acc = make_ci(vault)
    role_id = acc.get_identity("ci").role_id
    secret_id = acc.new_secret_id("ci", uses=1)
    auth = vault.authenticator()
    token = auth.login("approle", {"role_id": role_id, "secret_id": secret_id}, ACTOR)
    with pytest.raises(AuthenticationFailed):
        auth.login("approle", {"role_id": role_id, "secret_id": secret_id}, ACTOR)  # single use
    principal = auth.resolve(token.value)
    ci = vault.as_principal(principal, Actor("ci", "api"))
    assert ci.get(SecretRef("payments", "prod", "DB_URL")).value.reveal() == "db"
    assert set(ci.resolve("payments", "prod")) == {"DB_URL"}  # ROOT_KEY withheld
    for call in (
        lambda: ci.get(SecretRef("payments", "prod", "ROOT_KEY")),
        lambda: ci.get(SecretRef("payments", "dev", "DB_URL")),
        lambda: ci.set(SecretRef("payments", "prod", "DB_URL"), SecretValue("x")),
        lambda: ci.resolve("payments", "dev"),
        lambda: ci.accounts.list_identities(),
    ):
        with pytest.raises(AccessDenied) as info:
            call()
        assert "exist" not in str(info.value)
    with pytest.raises(NotFound):  # it may read there, so it may learn what is missing
        ci.get(SecretRef("payments", "prod", "MISSING"))
    denied = [e for e in vault.audit.tail(50) if e["outcome"] == "denied"]
    assert len(denied) >= 5


def test_secret_id_expiry(vault) -> None:  # type: ignore[no-untyped-def]
    acc = make_ci(vault)
    role_id = acc.get_identity("ci").role_id
    secret_id = acc.new_secret_id("ci", ttl=timedelta(minutes=5))
    vault.clock.now += timedelta(minutes=6)
    with pytest.raises(AuthenticationFailed):
        vault.authenticator().login("approle", {"role_id": role_id, "secret_id": secret_id}, ACTOR)


def test_token_ttl_renew_revoke(vault) -> None:  # type: ignore[no-untyped-def]
    acc = vault.accounts
    acc.create_person("alice", PW, ["root"])
    auth = vault.authenticator()
    token = auth.login(
        "password", {"name": "alice", "password": PW}, ACTOR, ttl=timedelta(minutes=30)
    )
    assert auth.resolve(token.value).name == "alice"
    vault.clock.now += timedelta(minutes=20)
    auth.renew(token.value, timedelta(hours=1))
    vault.clock.now += timedelta(minutes=50)
    assert auth.resolve(token.value).name == "alice"
    acc.revoke_token(token.accessor)
    with pytest.raises(AuthenticationFailed):
        auth.resolve(token.value)
    t2 = auth.login("password", {"name": "alice", "password": PW}, ACTOR)
    t3 = auth.login("password", {"name": "alice", "password": PW}, ACTOR)
    assert acc.revoke_identity_tokens("alice") == 2
    for t in (t2, t3):
        with pytest.raises(AuthenticationFailed):
            auth.resolve(t.value)
    listed = acc.list_tokens("alice")
    assert all(t.revoked for t in listed)
    assert all(token.value not in repr(t) for t in listed)


def test_max_ttl_caps_renewal(vault) -> None:  # type: ignore[no-untyped-def]
    acc = vault.accounts
    acc.create_person("bob", PW, ["root"])
    row = vault._storage.get_identity(name="bob")
    auth = vault.authenticator()
    token = auth.issue(row, auth_method="test", ttl=timedelta(hours=1), max_ttl=timedelta(hours=2))
    vault.clock.now += timedelta(minutes=59)
    auth.renew(token.value, timedelta(hours=10))
    vault.clock.now += timedelta(hours=1, minutes=30)
    with pytest.raises(AuthenticationFailed):
        auth.resolve(token.value)


def test_wrong_passwords_and_unknown_names_look_alike(vault) -> None:  # type: ignore[no-untyped-def]
    vault.accounts.create_person("carol", PW, [])
    auth = vault.authenticator()
    errors = []
    for name, pw in (("carol", "wrong password!!"), ("nobody", PW), ("../x", PW)):
        with pytest.raises(AuthenticationFailed) as info:
            auth.login("password", {"name": name, "password": pw}, ACTOR)
        errors.append(str(info.value))
    assert len(set(errors)) == 1


def test_token_policies_are_a_subset(vault) -> None:  # type: ignore[no-untyped-def]
    acc = make_ci(vault)
    with pytest.raises(AccessDenied):
        acc.create_token(identity="ci", policies=["root"])
    token = acc.create_token(identity="ci", policies=["ci"])
    p = vault.authenticator().resolve(token.value)
    assert [x.name for x in p.policies] == ["ci"]
    acc.set_policies("ci", [])  # removing a policy takes effect at once
    assert vault.authenticator().resolve(token.value).policies == ()


def test_explain(vault) -> None:  # type: ignore[no-untyped-def]
    acc = make_ci(vault)
    d = acc.explain("ci", "payments/prod/ROOT_KEY", "read")
    assert not d.allowed and "ROOT_*" in d.explain()
    assert acc.explain("ci", "payments/prod/DB_URL", "read").allowed
    with pytest.raises(InvalidInput):
        acc.explain("ci", "payments/prod/DB_URL", "fly")
    with pytest.raises(NotFound):
        acc.explain("nobody", "payments/prod/DB_URL", "read")


def test_builtin_root_cannot_change(vault) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput):
        vault.accounts.apply_policy(
            parse_policy({"name": "root", "rules": [{"path": "x", "capabilities": ["read"]}]})
        )
    with pytest.raises(NotFound):
        vault.accounts.create_machine("m", ["no-such-policy"])


def test_a_password_typed_as_the_name_stays_out_of_the_audit(vault) -> None:  # type: ignore[no-untyped-def]
    """A login name that matches nobody is recorded as <unknown>, never as the text."""
    auth = vault.authenticator()
    pasted = "hunter2-correct-horse"
    with pytest.raises(AuthenticationFailed):
        auth.login("password", {"name": pasted, "password": PW}, ACTOR)
    events = vault.audit.log(operations=["login"], limit=None)
    assert events and events[0]["path"] == "identity/<unknown>"
    assert events[0]["outcome"] == "denied"
    assert pasted not in repr(events)


def test_an_identities_admin_cannot_grant_policies_it_lacks(vault) -> None:  # type: ignore[no-untyped-def]
    # The attack: an admin on sys/identities only creates (or re-policies) an identity with
    # root, or with a policy it does not hold, then logs in as it.
    acc = make_ci(vault)
    acc.apply_policy(
        parse_policy(
            {
                "name": "people-admin",
                "rules": [{"path": "sys/identities", "capabilities": ["admin", "read"]}],
            }
        )
    )
    acc.create_machine("helpdesk", ["people-admin"])
    token = acc.create_token(identity="helpdesk", policies=["people-admin"])
    helpdesk = vault.as_principal(vault.authenticator().resolve(token.value), Actor("hd", "api"))
    hd = helpdesk.accounts
    for attempt in (
        lambda: hd.create_machine("evil", ["root"]),
        lambda: hd.create_machine("evil", ["ci"]),
        lambda: hd.create_person("evil", PW, ["root"]),
        lambda: hd.set_policies("ci", ["root"]),
        lambda: hd.set_policies("helpdesk", ["people-admin", "ci"]),
        lambda: hd.write_login_role("machine", "evil", {"token_policies": ["root"]}),
    ):
        with pytest.raises(AccessDenied, match="cannot grant policies you do not hold"):
            attempt()
    assert [i.name for i in acc.list_identities()].count("evil") == 0
    assert acc.get_identity("ci").policies == ("ci",)
    # What it holds it may give, and it may take policies away.
    hd.create_machine("deputy", ["people-admin"])
    hd.set_policies("ci", [])
    assert acc.get_identity("ci").policies == ()
