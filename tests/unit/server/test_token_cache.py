"""The server's token cache and the token tree (issue 10): a revoked parent's children stop
at once through this process, and within the cache's TTL through another one."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from sealbox import factory
from sealbox.caller import Actor
from sealbox.errors import AuthenticationFailed
from sealbox.kms.master import UnlockMethod
from sealbox.server.auth import TokenCache
from sealbox.vault import Vault


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def vault(home: Path, tmp_path: Path) -> Vault:
    factory.init_vault(home=home, method=UnlockMethod.KEYFILE, key_file=tmp_path / "k.key")
    v = factory.open_vault(home=home)
    v.accounts.create_machine("ci", ["root"])
    return v


def tree(vault: Vault) -> tuple[str, str, str]:
    """(parent accessor, child token, grandchild token)."""
    row = vault._storage.get_identity(name="ci")
    assert row is not None
    auth = vault.authenticator()
    parent = auth.issue(row, auth_method="approle", ttl=timedelta(hours=1))
    as_parent = vault.as_principal(auth.resolve(parent.value), Actor("ci", "api"))
    child = as_parent.accounts.create_token()
    as_child = vault.as_principal(auth.resolve(child.value), Actor("ci", "api"))
    return parent.accessor, child.value, as_child.accounts.create_token().value


def test_revoked_elsewhere_a_cached_child_lasts_at_most_the_ttl(vault: Vault) -> None:
    clock = Clock()
    cache = TokenCache(vault, ttl=1.0, clock=clock)
    parent, child, grandchild = tree(vault)
    for t in (child, grandchild):
        cache.resolve(t)
    vault.accounts.revoke_token(parent)  # "another process": this cache is not told
    clock.now += 0.9
    cache.resolve(child)  # the documented lag: up to token_cache_ttl
    clock.now += 0.2
    for t in (child, grandchild):
        with pytest.raises(AuthenticationFailed):
            cache.resolve(t)


def test_revoked_here_a_cached_subtree_stops_at_once(vault: Vault) -> None:
    cache = TokenCache(vault, ttl=60.0, clock=Clock())
    parent, child, grandchild = tree(vault)
    other_parent, other_child, _ = tree(vault)
    for t in (child, grandchild, other_child):
        cache.resolve(t)
    vault.accounts.revoke_token(parent)
    cache.forget_accessor(parent)  # what the revoke routes do
    for t in (child, grandchild):
        with pytest.raises(AuthenticationFailed):
            cache.resolve(t)
    assert cache.resolve(other_child).principal.token_parents == (other_parent,)
