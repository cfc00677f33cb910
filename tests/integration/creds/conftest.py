"""Fixtures for dynamic credentials against real databases: one scram PostgreSQL cluster
per module, a MariaDB database per test, an embedded vault whose clock a test moves, and
a role on each."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tests.upstream_servers import Cluster, mariadb_database, scram_cluster

from sealbox import factory
from sealbox.model import SecretRef, SecretValue
from sealbox.vault import Vault

PG_CREATION = (
    "CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"
    ' GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}";'
)
MY_CREATION = (
    "CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}';"
    " GRANT SELECT ON `{db}`.* TO '{{name}}'@'%'"
)


class Clock:
    """A clock a test moves; it starts at the real time (PostgreSQL's VALID UNTIL is real)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, span: timedelta) -> None:
        self.now += span


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with scram_cluster() as c:
        yield c


@pytest.fixture
def mariadb() -> Iterator[str]:
    with mariadb_database() as name:
        yield name


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def vault(keyfile_vault: Path, clock: Clock) -> Iterator[Vault]:
    v = factory.open_vault(home=keyfile_vault, env={}, clock=clock)
    yield v
    v.close()


def reopen(home: Path, clock: Clock) -> Vault:
    """Another Vault object on the same vault (a restarted process)."""
    return factory.open_vault(home=home, env={}, clock=clock)


@pytest.fixture
def pg_role(vault: Vault, cluster: Cluster) -> str:
    """``payments/prod/db-readonly`` on the scram cluster, its admin URL a secret."""
    vault.set(SecretRef("payments", "prod", "PG_ADMIN_URL"), SecretValue(cluster.url()))
    vault.leases.define_role(
        "payments/prod/db-readonly",
        backend_name="postgres",
        admin="payments/prod/PG_ADMIN_URL",
        creation=PG_CREATION,
        ttl=timedelta(hours=1),
        max_ttl=timedelta(hours=24),
    )
    return "payments/prod/db-readonly"


@pytest.fixture
def my_role(vault: Vault, mariadb: str) -> str:
    vault.set(
        SecretRef("payments", "prod", "MY_ADMIN_URL"),
        SecretValue(f"mysql://root:@127.0.0.1:3306/{mariadb}"),
    )
    vault.leases.define_role(
        "payments/prod/my-readonly",
        backend_name="mysql",
        admin="payments/prod/MY_ADMIN_URL",
        creation=MY_CREATION.replace("{db}", mariadb),
        ttl=timedelta(hours=1),
        max_ttl=timedelta(hours=2),
    )
    return "payments/prod/my-readonly"
