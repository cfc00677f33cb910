"""No change removes the last root holder or the last admin without force (issue 10),
and the master key's holder can always recover an admin."""

from __future__ import annotations

from pathlib import Path

import pytest

from sealbox import factory
from sealbox.auth.policy import Capability, parse_policy
from sealbox.caller import Actor
from sealbox.errors import AccessDenied, Conflict, InvalidInput, KeyProviderError, Sealed
from sealbox.kms.master import UnlockMethod
from sealbox.vault import Vault

PW = "a long enough password"
ADMIN_RULES = [
    {"path": "sys/**", "capabilities": ["admin", "read", "list"]},
]


@pytest.fixture
def vault(home: Path, tmp_path: Path) -> Vault:
    factory.init_vault(home=home, method=UnlockMethod.KEYFILE, key_file=tmp_path / "k.key")
    v = factory.open_vault(home=home)
    v.accounts.create_machine("boss", ["root"])
    v.accounts.create_machine("worker", [])
    return v


def test_the_last_root_holder_keeps_root_without_force(vault: Vault) -> None:
    acc = vault.accounts
    for change in (
        lambda: acc.set_policies("boss", []),
        lambda: acc.delete_identity("boss"),
    ):
        with pytest.raises(Conflict) as info:
            change()
        assert "no identity holding root" in str(info.value)
        assert "recover-admin" in (info.value.hint or "")
    assert acc.get_identity("boss").policies == ("root",)
    with pytest.raises(InvalidInput):  # the core checks types too (the CLI and SDK use it)
        acc.set_policies("boss", None)  # type: ignore[arg-type]
    # A second root holder makes either one removable.
    acc.set_policies("worker", ["root"])
    acc.set_policies("boss", [])
    with pytest.raises(Conflict):
        acc.delete_identity("worker")
    acc.delete_identity("worker", force=True)
    forced = vault.audit.log(operations=["identity.delete"], limit=None)
    assert forced[0]["reason"].startswith("forced: leaves no identity holding root and no admin")


def test_the_last_admin_policy_cannot_be_deleted_or_narrowed(vault: Vault) -> None:
    acc = vault.accounts
    acc.apply_policy(parse_policy({"name": "admins", "rules": ADMIN_RULES}))
    acc.set_policies("worker", ["admins"])
    acc.set_policies("boss", [], force=True)  # root gone, an admin left: still allowed?
    with pytest.raises(Conflict) as info:
        acc.delete_policy("admins")
    assert "no admin" in str(info.value)
    narrowed = parse_policy(
        {"name": "admins", "rules": [{"path": "sys/policies", "capabilities": ["admin"]}]}
    )
    with pytest.raises(Conflict):
        acc.apply_policy(narrowed)
    acc.apply_policy(narrowed, force=True)
    acc.delete_policy("admins")  # nobody is an admin any more: nothing left to protect
    with pytest.raises(InvalidInput):
        acc.delete_policy("root")  # built in: never deleted


def test_root_removal_is_refused_even_with_another_admin(vault: Vault) -> None:
    acc = vault.accounts
    acc.apply_policy(parse_policy({"name": "admins", "rules": ADMIN_RULES}))
    acc.set_policies("worker", ["admins"])
    with pytest.raises(Conflict) as info:
        acc.set_policies("boss", [])
    assert "no identity holding root" in str(info.value) and "no admin" not in str(info.value)


def test_recover_admin_needs_the_master_key(vault: Vault, home: Path, tmp_path: Path) -> None:
    vault.accounts.set_policies("boss", [], force=True)
    info = vault.recover_admin("rescuer", PW)
    assert info.policies == ("root",)
    principal = vault.authenticator().resolve(
        vault.authenticator()
        .login("password", {"name": "rescuer", "password": PW}, Actor("t", "t"))
        .value
    )
    assert principal.can("sys/identities", Capability.ADMIN)
    # An existing person gets root added, a new password, and is enabled.
    vault.accounts.create_person("alice", PW, [])
    assert vault.recover_admin("alice", PW + "!").policies == ("root",)
    assert vault.audit.log(operations=["identity.recover"], limit=None)
    # Through a token (the server), never: only the embedded owner with the keys.
    remote = vault.as_principal(principal, Actor("rescuer", "api"))
    with pytest.raises(AccessDenied):
        remote.accounts.recover_admin("mallory", PW)
    # Without the master key the vault does not open, and nothing changes.
    (tmp_path / "k.key").unlink()
    with pytest.raises((Sealed, KeyProviderError)):
        factory.recover_admin(name="mallory", password=PW, home=home)
    assert [i.name for i in vault.accounts.list_identities()] == [
        "alice",
        "boss",
        "rescuer",
        "worker",
    ]
