"""The lease service's checks that need no database server: role definitions refused for
every mistake (nothing stored), paths, backoff, and the token hook on an embedded vault."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from sealbox import factory
from sealbox.errors import InvalidInput, NotFound
from sealbox.lease_ops import BACKOFF_MAX, backoff, creds_path, parse_role_path
from sealbox.model import SecretRef, SecretValue

CREATION = "CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}'"


def test_role_paths() -> None:
    assert parse_role_path("payments/prod/db-readonly") == ("payments", "prod", "db-readonly")
    assert parse_role_path("creds/payments/prod/db_ro") == ("payments", "prod", "db_ro")
    assert creds_path("payments", "prod", "db") == "creds/payments/prod/db"
    for bad in ("payments/prod", "payments/prod/DB", "a/b/c/d", "../prod/x", "payments/prod/"):
        with pytest.raises(InvalidInput, match="project/env/role-name"):
            parse_role_path(bad)


def test_backoff_doubles_up_to_an_hour() -> None:
    assert [backoff(n).total_seconds() for n in (1, 2, 3)] == [30, 60, 120]
    assert backoff(10) == BACKOFF_MAX and backoff(10_000) == BACKOFF_MAX


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"backend_name": "oracle"}, "unknown credentials backend"),
        ({"admin": "not-a-path"}, "expected project/env/NAME"),
        ({"creation": 'CREATE ROLE "{{name}}"'}, "must use {{password}}"),
        ({"revocation": "DROP ROLE {{who}}"}, "{{who}}"),
        ({"renewal": "ALTER ROLE x PASSWORD '{{password}}'"}, "{{password}}"),
        ({"username_template": "fixed-name"}, "{{random}}"),
        ({"ttl": timedelta(hours=30)}, "longer than its max TTL"),
        ({"max_ttl": timedelta(days=400), "ttl": timedelta(hours=1)}, "365 days"),
        ({"ttl": timedelta(0)}, "positive"),
        ({"max_leases": 0}, "at least 1"),
    ],
)
def test_a_bad_role_is_refused_and_nothing_is_stored(
    keyfile_vault: Path, changes: dict[str, object], message: str
) -> None:
    vault = factory.open_vault(home=keyfile_vault, env={})
    try:
        vault.set(SecretRef("payments", "prod", "PG_ADMIN_URL"), SecretValue("postgresql://a@h/d"))
        args: dict[str, object] = {
            "backend_name": "postgres",
            "admin": "payments/prod/PG_ADMIN_URL",
            "creation": CREATION,
            **changes,
        }
        with pytest.raises(InvalidInput) as info:
            vault.leases.define_role("payments/prod/db", **args)  # type: ignore[arg-type]
        assert message in info.value.message
        assert vault.leases.list_roles() == []
    finally:
        vault.close()


def test_a_role_in_a_missing_environment_is_refused(keyfile_vault: Path) -> None:
    vault = factory.open_vault(home=keyfile_vault, env={})
    try:
        with pytest.raises(NotFound, match="environment payments/qa does not exist"):
            vault.leases.define_role(
                "payments/qa/db",
                backend_name="postgres",
                admin="payments/prod/PG_ADMIN_URL",
                creation=CREATION,
            )
    finally:
        vault.close()


def test_a_missing_admin_secret_is_named_at_issue(keyfile_vault: Path) -> None:
    vault = factory.open_vault(home=keyfile_vault, env={})
    try:
        vault.leases.define_role(
            "payments/prod/db",
            backend_name="postgres",
            admin="payments/prod/PG_ADMIN_URL",
            creation=CREATION,
        )
        with pytest.raises(NotFound, match="admin secret payments/prod/PG_ADMIN_URL"):
            vault.leases.issue("payments/prod/db")
        assert vault.leases.list_leases(include_revoked=True) == []
        with pytest.raises(NotFound, match="no lease"):
            vault.leases.revoke("creds/payments/prod/db/nope")
    finally:
        vault.close()


def test_the_backend_comes_from_the_admin_urls_scheme(keyfile_vault: Path) -> None:
    vault = factory.open_vault(home=keyfile_vault, env={})
    try:
        for name, url, want in (
            ("PG", "postgres://a@h/d", "postgres"),
            ("MY", "mariadb://a@h/d", "mysql"),
        ):
            vault.set(SecretRef("payments", "prod", name), SecretValue(url))
            role = vault.leases.define_role(
                f"payments/prod/{name.lower()}",
                backend_name=None,
                admin=f"payments/prod/{name}",
                creation=CREATION,
            )
            assert role.backend == want
        vault.set(SecretRef("payments", "prod", "WEIRD"), SecretValue("redis://h"))
        with pytest.raises(InvalidInput, match="name the backend") as info:
            vault.leases.define_role(
                "payments/prod/weird", backend_name=None, admin="payments/prod/WEIRD",
                creation=CREATION,
            )  # fmt: skip
        assert "redis://h" not in info.value.message
        reads = vault.audit.log(secret=SecretRef("payments", "prod", "PG"), operations=["read"])
        assert reads and "its backend" in reads[0]["reason"]
    finally:
        vault.close()
