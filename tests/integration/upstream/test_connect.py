"""The upstream connectors against real servers: a login works, a wrong password or an
unreachable server is an UpstreamError that names the login and never the password."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.upstream_servers import MARIADB, Cluster, mariadb_database, scram_cluster

from sealbox.errors import InvalidInput, UpstreamError
from sealbox.model import SecretValue
from sealbox.upstream import mysql, postgres

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with scram_cluster() as c:
        yield c


def test_postgres_login_with_the_right_password(cluster: Cluster) -> None:
    ep = postgres.endpoint(SecretValue(cluster.url()), what="PG_ADMIN")
    postgres.can_login(ep)
    assert cluster.password not in repr(ep) and cluster.password not in str(ep)


def test_postgres_wrong_password_is_refused_without_echoing_it(cluster: Cluster) -> None:
    ep = postgres.endpoint(SecretValue(cluster.url(password="wrong-pw-123")), what="X")
    with pytest.raises(UpstreamError) as info:
        postgres.can_login(ep)
    assert "password authentication failed" in str(info.value)
    assert "wrong-pw-123" not in str(info.value)
    assert "postgres@127.0.0.1" in str(info.value)


def test_postgres_unreachable_is_an_upstream_error() -> None:
    ep = postgres.endpoint(SecretValue("postgresql://u:p@127.0.0.1:1/db"), what="X")
    with pytest.raises(UpstreamError, match="cannot log in to PostgreSQL"):
        postgres.can_login(ep, timeout=2)


def test_mariadb_login_and_refusal() -> None:
    with mariadb_database() as db:
        ep = mysql.endpoint(SecretValue(f"mysql://root:@127.0.0.1:3306/{db}"), what="X")
        mysql.can_login(ep)
        bad = ep.login("nobody_here", SecretValue("pw-not-shown"))
        with pytest.raises(UpstreamError) as info:
            mysql.can_login(bad)
        assert "pw-not-shown" not in str(info.value)
        assert MARIADB["host"] in str(info.value)


@pytest.mark.parametrize(
    "url",
    ["not a url", "http://u:p@h/db", "postgresql://host-only/db", "postgresql://u:p@h:99999/db"],
)
def test_a_malformed_admin_url_is_refused_without_echoing_it(url: str) -> None:
    with pytest.raises(InvalidInput) as info:
        postgres.endpoint(SecretValue(url), what="payments/prod/PG_ADMIN")
    assert "payments/prod/PG_ADMIN" in str(info.value)
    assert url not in str(info.value)
