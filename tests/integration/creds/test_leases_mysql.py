"""Dynamic credentials on the machine's MariaDB: a lease's user logs in and can read its
database, and stops at revocation (its open session too) or after expiry and a reap;
names fit 80 characters; a half-made user is dropped."""

from __future__ import annotations

from datetime import timedelta

import pymysql
import pytest
from tests.integration.creds.conftest import Clock
from tests.upstream_servers import MARIADB

from sealbox.errors import Conflict, InvalidInput, UpstreamError
from sealbox.vault import Vault
from sealbox.wire.leases import Credential

pytestmark = pytest.mark.integration


def connect(cred: Credential, db: str) -> pymysql.connections.Connection:  # type: ignore[type-arg]
    return pymysql.connect(
        host=MARIADB["host"],
        port=int(MARIADB["port"]),
        user=cred.username,
        password=cred.password.reveal(),
        database=db,
        connect_timeout=5,
    )


def can_login(cred: Credential, db: str) -> bool:
    try:
        conn = connect(cred, db)
    except pymysql.err.OperationalError:
        return False
    conn.close()
    return True


def user_exists(name: str) -> bool:
    conn = pymysql.connect(**MARIADB)  # type: ignore[arg-type]
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM mysql.user WHERE User = %s", (name,))
            return cur.fetchone() is not None
    finally:
        conn.close()


def test_a_lease_user_logs_in_reads_and_is_dropped_with_its_session(
    vault: Vault, my_role: str, mariadb: str
) -> None:
    cred = vault.leases.issue(my_role)
    assert len(cred.username) <= 80 and user_exists(cred.username)
    conn = connect(cred, mariadb)
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
    assert cred.url is not None and cred.url.reveal().startswith("mysql://")
    vault.leases.revoke(cred.lease_id)
    assert not user_exists(cred.username) and not can_login(cred, mariadb)
    # MariaDB lets a dropped account's session run on: the revocation ended it.
    with pytest.raises(pymysql.err.OperationalError), conn.cursor() as cur:
        cur.execute("SELECT 1")
    conn.close()


def test_expiry_then_reap_drops_the_user(
    vault: Vault, my_role: str, mariadb: str, clock: Clock
) -> None:
    cred = vault.leases.issue(my_role, ttl=timedelta(minutes=10))
    assert can_login(cred, mariadb)
    clock.advance(timedelta(minutes=11))
    assert vault.leases.reap().revoked == (cred.lease_id,)
    assert not can_login(cred, mariadb)


def test_renew_stops_at_the_max_ttl(vault: Vault, my_role: str, clock: Clock) -> None:
    cred = vault.leases.issue(my_role)
    clock.advance(timedelta(minutes=30))
    with pytest.raises(InvalidInput, match="would pass its max TTL"):
        vault.leases.renew(cred.lease_id, increment=timedelta(hours=2))
    vault.leases.renew(cred.lease_id, increment=timedelta(minutes=90))  # the max: 2 h
    with pytest.raises(Conflict, match="max TTL"):
        vault.leases.renew(cred.lease_id, increment=timedelta(minutes=5))


def test_a_long_template_is_cut_to_80_keeping_the_random_part(
    vault: Vault, my_role: str, mariadb: str
) -> None:
    role = vault.leases.get_role(my_role)
    vault.leases.define_role(
        "payments/prod/my-long",
        backend_name="mysql",
        admin=role.admin,
        creation=role.creation,
        username_template="x" * 120 + "-{{role}}-{{random}}",
    )
    first = vault.leases.issue("payments/prod/my-long")
    second = vault.leases.issue("payments/prod/my-long")
    assert len(first.username) == 80 and first.username != second.username
    assert can_login(first, mariadb) and can_login(second, mariadb)


def test_a_half_made_user_is_dropped(vault: Vault, my_role: str) -> None:
    role = vault.leases.get_role(my_role)
    vault.leases.define_role(
        "payments/prod/my-broken",
        backend_name="mysql",
        admin=role.admin,
        creation="CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}';"
        " GRANT SELECT ON no_such_db_here.no_table TO '{{name}}'@'%'",
        username_template="brk-{{random}}",
    )
    with pytest.raises(UpstreamError, match="refused the creation statements") as info:
        vault.leases.issue("payments/prod/my-broken")
    [gone] = vault.leases.list_leases("payments/prod/my-broken", include_revoked=True)
    assert gone.state == "revoked" and not user_exists(gone.username)
    assert "IDENTIFIED BY" not in info.value.message or "***" in info.value.message


def test_a_syntax_error_never_quotes_a_piece_of_the_password(
    vault: Vault, my_role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sealbox.creds import templates

    known = "Kx9" + "p" * 100 + "Tail7"  # longer than the 80 characters MySQL quotes
    monkeypatch.setattr(templates, "password", lambda: known)
    role = vault.leases.get_role(my_role)
    vault.leases.define_role(
        "payments/prod/my-syntax",
        backend_name="mysql",
        admin=role.admin,
        creation="CREATE USER '{{name}}'@'%' IDENTIFIED BY BROKEN '{{password}}'",
    )
    with pytest.raises(UpstreamError, match="withheld") as info:
        vault.leases.issue("payments/prod/my-syntax")
    assert "ppppp" not in info.value.message
