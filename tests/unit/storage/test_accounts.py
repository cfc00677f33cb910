"""AccountStore contract: identities, tokens (a tree), policies."""

from __future__ import annotations

import pytest
from tests.unit.storage.contract import NOW

from sealbox.errors import AlreadyExists, NotFound
from sealbox.storage.interface import Storage
from sealbox.storage.rows import IdentityRow, SecretIdRow, TokenRow


def identity(store: Storage, name: str) -> str:
    store.create_identity(IdentityRow(f"id-{name}", name, "person", None, None, "[]", NOW, False))
    return f"id-{name}"


def token(store: Storage, accessor: str, identity_id: str, parent: str | None = None) -> None:
    store.put_token(
        TokenRow(
            accessor,
            f"hash-{accessor}",
            identity_id,
            "[]",
            "token",
            NOW,
            "2026-01-02T00:00:00+00:00",
            "2026-01-03T00:00:00+00:00",
            None,
            accessor,
            parent,
        )
    )


def _revoked(store: Storage) -> dict[str, bool]:
    return {t.accessor: t.revoked_at is not None for t in store.list_tokens()}


def test_identities_and_secret_ids(store: Storage) -> None:
    alice = identity(store, "alice")
    with pytest.raises(AlreadyExists):
        identity(store, "alice")
    store.update_identity(alice, policies='["dev"]', disabled=True)
    row = store.get_identity(name="alice")
    assert row is not None and (row.policies, row.disabled) == ('["dev"]', True)
    assert [i.name for i in store.list_identities()] == ["alice"]
    store.add_secret_id(SecretIdRow("sid", alice, "h", 2, None, NOW))
    assert store.consume_secret_id(alice, "h", NOW)
    assert store.consume_secret_id(alice, "h", NOW)
    assert not store.consume_secret_id(alice, "h", NOW)  # two uses, then gone
    store.delete_identity(alice, now=NOW)
    assert store.get_identity(id=alice) is None
    with pytest.raises(NotFound):
        store.update_identity(alice, disabled=False)


def test_login_settings_role_ids_and_secret_id_administration(store: Storage) -> None:
    """Schema 13 (issue 15): an identity's login settings; a custom role id (unique);
    secret ids listed (oldest first) and deleted one by one."""
    robot, other = identity(store, "robot"), identity(store, "other")
    assert store.get_identity(id=robot).settings == "{}"  # type: ignore[union-attr]
    store.update_identity(robot, role_id="mine", settings='{"token_ttl": 60}')
    row = store.get_identity(role_id="mine")
    assert row is not None and (row.id, row.settings) == (robot, '{"token_ttl": 60}')
    with pytest.raises(AlreadyExists):
        store.update_identity(other, role_id="mine")
    store.update_identity(robot, role_id="mine")  # its own role id again: fine
    store.add_secret_id(SecretIdRow("s1", robot, "h1", None, None, NOW))
    store.add_secret_id(SecretIdRow("s2", robot, "h2", 3, "2027-01-01T00:00:00+00:00", NOW))
    assert [r.accessor for r in store.list_secret_ids(robot)] == ["s1", "s2"]
    assert store.list_secret_ids(robot)[1].uses_left == 3
    assert not store.delete_secret_id(other, "s1")  # another identity's: untouched
    assert store.delete_secret_id(robot, "s1")
    assert not store.delete_secret_id(robot, "s1")
    assert not store.consume_secret_id(robot, "h1", NOW)
    assert [r.accessor for r in store.list_secret_ids(robot)] == ["s2"]


def test_policies(store: Storage) -> None:
    store.put_policy("dev", '{"a": 1}', NOW)
    store.put_policy("dev", '{"a": 2}', NOW)  # replaces
    store.put_policy("ops", "{}", NOW)
    assert store.get_policies(["dev", "nope"]) == {"dev": '{"a": 2}'}
    assert store.get_policies([]) == {}
    assert store.list_policies() == [("dev", '{"a": 2}'), ("ops", "{}")]
    store.delete_policy("ops")
    with pytest.raises(NotFound):
        store.delete_policy("ops")


def test_revoking_a_token_revokes_its_subtree(store: Storage) -> None:
    """root -> child -> grandchild, and a sibling tree that must stay alive."""
    alice, bob = identity(store, "alice"), identity(store, "bob")
    token(store, "root", alice)
    token(store, "child", bob, parent="root")
    token(store, "grandchild", alice, parent="child")
    token(store, "other", alice)
    assert store.get_token(accessor="child").parent == "root"  # type: ignore[union-attr]
    assert store.get_token(accessor="root").parent is None  # type: ignore[union-attr]
    assert store.revoke_tokens(accessor="child", now=NOW) == 2
    assert _revoked(store) == {"root": False, "child": True, "grandchild": True, "other": False}
    assert store.revoke_tokens(accessor="child", now=NOW) == 0  # nothing left alive there
    assert store.revoke_tokens(accessor="root", now=NOW) == 1
    # All of an identity's tokens, with what descends from them (bob's own is already gone).
    token(store, "b1", bob)
    token(store, "b1-child", alice, parent="b1")
    assert store.revoke_tokens(identity_id=bob, now=NOW) == 2
    assert _revoked(store)["b1-child"] and not _revoked(store)["other"]


def test_deleting_an_identity_revokes_what_its_tokens_made(store: Storage) -> None:
    alice, bob = identity(store, "alice"), identity(store, "bob")
    token(store, "a", alice)
    token(store, "b-under-a", bob, parent="a")
    token(store, "b-alone", bob)
    store.delete_identity(alice, now=NOW)
    assert store.get_token(accessor="a") is None
    assert _revoked(store) == {"b-under-a": True, "b-alone": False}
