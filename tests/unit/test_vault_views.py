"""Views of one vault (``Vault.as_principal``): they share the vault, not the caller.

The server makes a view per request. Every view must use the vault's one storage, key
provider and audit recorder (one unlock serves them all, one chain records them all),
while each acts, is authorised and is audited as its own caller.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sealbox import factory
from sealbox.auth.policy import Capability, Policy, Rule
from sealbox.auth.principal import Principal
from sealbox.caller import Actor
from sealbox.changes import ChangeEvent
from sealbox.errors import AccessDenied
from sealbox.kms.interface import KeyRing
from sealbox.kms.master import UnlockMethod
from sealbox.model import SecretRef, SecretValue
from sealbox.vault import Vault

REF = SecretRef("payments", "dev", "DB_URL")


def _principal(name: str, *capabilities: Capability) -> Principal:
    policy = Policy(name, (Rule("payments/dev/*", frozenset(capabilities)),))
    return Principal(f"id-{name}", name, "machine", "token", (policy,), token_accessor=f"a-{name}")


@pytest.fixture
def vault_and_loads(home: Path, tmp_path: Path) -> tuple[Vault, list[str]]:
    """A vault whose key loader counts how often it is asked for the keys."""
    factory.init_vault(home=home, method=UnlockMethod.KEYFILE, key_file=tmp_path / "k.key")
    opened = factory.open_vault(home=home)
    loads: list[str] = []

    def load() -> KeyRing:
        loads.append("load")
        return opened._state.key_provider()

    vault = Vault(
        storage=opened._storage,
        vault_id=opened.vault_id,
        keys=load,
        actor=Actor("owner", "cli"),
        audit=opened._audit,
    )
    vault.create_project("payments")
    return vault, loads


def test_views_share_storage_keys_and_audit_but_not_the_caller(
    vault_and_loads: tuple[Vault, list[str]],
) -> None:
    vault, loads = vault_and_loads
    ci = vault.as_principal(
        _principal("ci", Capability.READ, Capability.WRITE), Actor("ci", "api", request_id="r-ci")
    )
    ops = vault.as_principal(_principal("ops", Capability.READ), Actor("ops", "api"))
    changes: list[ChangeEvent] = []
    vault.on_change = changes.append  # set after the views were made: they see it too

    assert loads == []  # a view costs no unlock
    assert ci.set(REF, SecretValue("v1")) == 1
    assert ops.get(REF).value.reveal() == "v1"
    assert vault.get(REF).value.reveal() == "v1"
    assert loads == ["load"]  # the first view's unlock served the other view and the vault
    assert ci._storage is ops._storage is vault._storage
    assert ci._audit is ops._audit is vault._audit
    assert [(c.path, c.version, c.op) for c in changes] == [(REF.path, 1, "write")]

    assert (ci.principal.name, ci.actor.identity) == ("ci", "ci")
    assert (ops.principal.name, ops.actor.identity) == ("ops", "ops")
    assert (vault.principal.name, vault.actor.identity) == ("owner", "owner")
    # One chain, each event under the view that did it (with its principal's ids).
    events = vault.audit.log(secret=REF, limit=None)
    assert [
        (e["identity"], e["operation"], e["identity_id"], e["token_accessor"]) for e in events
    ] == [
        ("owner", "read", "local", None),
        ("ops", "read", "id-ops", "a-ops"),
        ("ci", "write", "id-ci", "a-ci"),
    ]
    assert events[-1]["request_id"] == "r-ci"
    assert vault.audit.verify().findings == []


def test_a_views_denial_is_audited_under_its_own_actor(
    vault_and_loads: tuple[Vault, list[str]],
) -> None:
    vault, _ = vault_and_loads
    vault.set(REF, SecretValue("v1"))
    reader = vault.as_principal(
        _principal("reader", Capability.READ), Actor("reader", "api", request_id="r-1")
    )
    with pytest.raises(AccessDenied, match=r"permission denied: write on payments/dev/DB_URL"):
        reader.set(REF, SecretValue("v2"))
    with pytest.raises(AccessDenied):
        reader.audit.log()  # the audit view is authorised as the view's caller too

    denied = [
        (e["identity"], e["token_accessor"], e["request_id"], e["operation"], e["path"])
        for e in vault.audit.log(denied=True, limit=None)
    ]
    assert denied == [
        ("reader", "a-reader", "r-1", "audit.read", "sys/audit"),
        ("reader", "a-reader", "r-1", "write", REF.path),
    ]
    assert vault.get(REF).value.reveal() == "v1"  # the denied write changed nothing
