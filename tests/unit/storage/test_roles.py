"""The role protocols: Storage is exactly their union, each method in one role, and every
backend implements every role (a method a backend lacks fails here, not in production)."""

from __future__ import annotations

import inspect

import pytest

from sealbox.storage import interface
from sealbox.storage.postgres import PostgresStorage
from sealbox.storage.sqlite import SqliteStorage

ROLES = [
    interface.Lifecycle,
    interface.SettingsStore,
    interface.KeyStore,
    interface.RewrapStore,
    interface.SessionStore,
    interface.ChangeStore,
    interface.ScopeStore,
    interface.SecretStore,
    interface.IdentityStore,
    interface.TokenStore,
    interface.PolicyStore,
    interface.AuditWriter,
    interface.AuditReader,
    interface.LockStore,
    interface.RotationStore,
    interface.CredRoleStore,
    interface.LeaseStore,
    interface.DocumentStore,
]


def _own(cls: type) -> set[str]:
    return {n for n, v in vars(cls).items() if not n.startswith("_") and callable(v)}


def _all(cls: type) -> set[str]:
    return {n for c in cls.__mro__ if c is not object for n in _own(c)}


def test_storage_is_the_union_of_disjoint_small_roles() -> None:
    seen: set[str] = set()
    for role in ROLES:
        methods = _own(role)
        assert methods, role
        assert len(methods) <= 12, f"{role.__name__} has {len(methods)} methods: split it"
        assert not methods & seen, f"{role.__name__} repeats {methods & seen}"
        seen |= methods
    assert _own(interface.Storage) == set()  # the union adds nothing of its own
    assert _all(interface.Storage) == seen
    assert _all(interface.AccountStore) == _all(interface.IdentityStore) | _all(
        interface.TokenStore
    ) | _all(interface.PolicyStore)


@pytest.mark.parametrize("backend", [SqliteStorage, PostgresStorage])
@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.__name__)
def test_every_backend_implements_every_role(backend: type, role: type) -> None:
    for name in _own(role):
        implementation = getattr(backend, name, None)
        assert callable(implementation), f"{backend.__name__} lacks {name}"
        wanted = set(inspect.signature(getattr(role, name)).parameters)
        assert wanted <= set(inspect.signature(implementation).parameters), name
