"""The CredRoleStore and LeaseStore contract (schema 10), on every backend: roles live in
an environment, leases count against their role's quota, and revocation attempts are kept
in the row (a reaper restarted later continues them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.unit.storage.contract import NOW, reopen

from sealbox.errors import AlreadyExists, Conflict, NotFound
from sealbox.storage.interface import Storage
from sealbox.storage.rows import CredRoleRow, LeaseRow

LATER = "2026-01-01T01:00:00+00:00"
MUCH_LATER = "2026-01-02T00:00:00+00:00"


def role(name: str = "db-ro", env: str = "prod", **kw: object) -> CredRoleRow:
    row = CredRoleRow(
        "payments", env, name, "postgres", "payments/prod/PG_ADMIN_URL",
        'CREATE ROLE "{{name}}" LOGIN PASSWORD \'{{password}}\'', "", "",
        "v-{{role}}-{{random}}", 3600, 86400, None, NOW, NOW, "alice",
    )  # fmt: skip
    return row._replace(**kw)  # type: ignore[arg-type]


def lease(n: int, role_name: str = "db-ro", **kw: object) -> LeaseRow:
    row = LeaseRow(
        f"creds/payments/prod/{role_name}/id{n:03d}", "payments", "prod", role_name,
        f"v-user-{n}", "ident-1", "alice", "acc-1", NOW, LATER, MUCH_LATER,
    )  # fmt: skip
    return row._replace(**kw)  # type: ignore[arg-type]


def test_a_role_is_stored_listed_replaced_and_deleted(store: Storage) -> None:
    store.put_cred_role(role())
    store.put_cred_role(role("db-rw", max_leases=5))
    assert store.get_cred_role("payments", "prod", "db-ro") == role()
    assert store.get_cred_role("payments", "dev", "db-ro") is None
    assert [r.name for r in store.list_cred_roles("payments", "prod")] == ["db-ro", "db-rw"]
    assert store.list_cred_roles("payments", "dev") == []
    with pytest.raises(AlreadyExists):
        store.put_cred_role(role(default_ttl=60))
    # Replacing keeps who made it first and when.
    store.put_cred_role(role(default_ttl=60, created_at=LATER, created_by="bob"), replace=True)
    got = store.get_cred_role("payments", "prod", "db-ro")
    assert got is not None and got.default_ttl == 60
    assert (got.created_at, got.created_by) == (NOW, "alice")
    assert store.get_cred_role("payments", "prod", "db-rw").max_leases == 5  # type: ignore[union-attr]
    store.delete_cred_role("payments", "prod", "db-rw")
    assert store.get_cred_role("payments", "prod", "db-rw") is None
    with pytest.raises(NotFound):
        store.delete_cred_role("payments", "prod", "db-rw")


def test_a_role_needs_its_environment(store: Storage) -> None:
    with pytest.raises(NotFound, match="staging"):
        store.put_cred_role(role(env="staging"))


def test_a_role_with_live_leases_cannot_be_deleted(store: Storage) -> None:
    store.put_cred_role(role())
    store.add_lease(lease(1), max_leases=None)
    with pytest.raises(Conflict, match="1 unrevoked"):
        store.delete_cred_role("payments", "prod", "db-ro")
    assert store.lease_revoked(lease(1).id, LATER)
    store.delete_cred_role("payments", "prod", "db-ro")


def test_a_lease_needs_its_role(store: Storage) -> None:
    with pytest.raises(NotFound):
        store.add_lease(lease(1), max_leases=None)


def test_the_quota_counts_live_leases_only(store: Storage) -> None:
    store.put_cred_role(role(max_leases=2))
    store.add_lease(lease(1), max_leases=2)
    store.add_lease(lease(2), max_leases=2)
    with pytest.raises(Conflict, match="quota of 2"):
        store.add_lease(lease(3), max_leases=2)
    assert store.get_lease(lease(3).id) is None  # nothing written
    store.lease_revoked(lease(1).id, LATER)
    store.add_lease(lease(3), max_leases=2)


def test_leases_are_listed_by_role_prefix_token_and_liveness(store: Storage) -> None:
    store.put_cred_role(role())
    store.put_cred_role(role("db_rw"))
    store.add_lease(lease(1), max_leases=None)
    store.add_lease(lease(2, token_accessor="acc-2"), max_leases=None)
    store.add_lease(lease(3, "db_rw"), max_leases=None)
    assert [x.id for x in store.list_leases()] == [lease(1).id, lease(2).id, lease(3, "db_rw").id]
    assert len(store.list_leases(role="db-ro")) == 2
    # A prefix is a prefix, not a LIKE pattern: "_" matches only itself.
    assert [x.role for x in store.list_leases(prefix="creds/payments/prod/db_")] == ["db_rw"]
    assert [x.id for x in store.list_leases(token_accessors=["acc-2"])] == [lease(2).id]
    assert store.list_leases(token_accessors=[]) == []
    store.lease_revoked(lease(1).id, LATER)
    assert len(store.list_leases(role="db-ro")) == 1
    assert len(store.list_leases(role="db-ro", include_revoked=True)) == 2
    assert store.count_live_leases() == {
        ("payments", "prod", "db-ro"): (1, NOW),
        ("payments", "prod", "db_rw"): (1, NOW),
    }


def test_renewal_and_revocation_of_a_lease(store: Storage) -> None:
    store.put_cred_role(role())
    store.add_lease(lease(1), max_leases=None)
    store.set_lease_expiry(lease(1).id, MUCH_LATER)
    got = store.get_lease(lease(1).id)
    assert got is not None and got.expires_at == MUCH_LATER
    assert store.lease_revoked(lease(1).id, LATER, note="forced")
    assert not store.lease_revoked(lease(1).id, LATER)  # the second revoker loses
    done = store.get_lease(lease(1).id)
    assert done is not None and done.revoked_at == LATER and done.last_error == "forced"
    with pytest.raises(NotFound):
        store.set_lease_expiry(lease(1).id, MUCH_LATER)


def test_failed_revocations_wait_and_are_kept_across_connections(
    store: Storage, kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store.put_cred_role(role())
    store.add_lease(lease(1), max_leases=None)
    store.add_lease(lease(2, expires_at=MUCH_LATER), max_leases=None)
    assert store.due_leases(NOW) == []
    assert [x.id for x in store.due_leases(LATER)] == [lease(1).id]
    assert store.lease_revoke_failed(lease(1).id, "connection refused", MUCH_LATER) == 1
    assert store.due_leases(LATER) == []  # waits for its next attempt
    other = reopen(kind, tmp_path, request)
    try:
        again = other.get_lease(lease(1).id)
        assert again is not None
        assert (again.revoke_attempts, again.next_attempt_at, again.last_error) == (
            1,
            MUCH_LATER,
            "connection refused",
        )
        assert [x.id for x in other.due_leases(MUCH_LATER)] == [lease(1).id, lease(2).id]
        assert other.lease_revoke_failed(lease(1).id, "still refused", MUCH_LATER) == 2
    finally:
        other.close()
    assert [x.id for x in store.due_leases(MUCH_LATER, limit=1)] == [lease(1).id]


def test_concurrent_issuers_never_pass_the_quota(
    store: Storage, kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A lease flood from several processes at once: the quota holds exactly."""
    import threading

    store.put_cred_role(role(max_leases=3))
    stores = [reopen(kind, tmp_path, request) for _ in range(8)]
    outcomes: list[str] = []
    start = threading.Barrier(len(stores))

    def issue(n: int, other: Storage) -> None:
        start.wait()
        try:
            other.add_lease(lease(n), max_leases=3)
            outcomes.append("ok")
        except Conflict:
            outcomes.append("quota")

    threads = [threading.Thread(target=issue, args=(n, s)) for n, s in enumerate(stores)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        for s in stores:
            s.close()
    assert sorted(outcomes) == ["ok"] * 3 + ["quota"] * 5
    assert len(store.list_leases()) == 3
