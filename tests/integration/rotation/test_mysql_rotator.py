"""The mysql rotator against the machine's MariaDB: single user (the old password refused
after the rotation), alternating users (the old login keeps working until the next
rotation, the clone has exactly the original's grants), undo, idempotent set, names
needing quotes, an unreachable server, a wrong admin secret; no password in any error or
note."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
from tests.integration.rotation.harness import Rotation
from tests.upstream_servers import MARIADB, mariadb_database

from sealbox.errors import InvalidInput, NotFound, RotationFailed, UpstreamError
from sealbox.model import SecretValue
from sealbox.rotation.mysql import MysqlRotator
from sealbox.rotation.registry import rotator
from sealbox.upstream import mysql, mysql_accounts
from sealbox.upstream.endpoint import Endpoint

pytestmark = pytest.mark.integration

ADMIN = "app/prod/MYSQL_ADMIN"


class Server:
    """The test database, and the accounts a test made (dropped afterwards)."""

    def __init__(self, db: str) -> None:
        self.db = db
        self.users: list[tuple[str, str]] = []

    def run(self, statement: str, args: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
        conn = pymysql.connect(**MARIADB, autocommit=True)  # type: ignore[arg-type]
        try:
            with conn.cursor() as cur:
                cur.execute(statement, args)
                return list(cur.fetchall())
        finally:
            conn.close()

    def account(self, user: str, password: str, host: str = "%") -> str:
        self.users += [(user, host), (f"{user}_clone", host)]
        self.run("CREATE USER %s@%s IDENTIFIED BY %s", (user, host, password))
        self.run(f"GRANT SELECT ON `{self.db}`.* TO %s@%s", (user, host))
        return user

    def ep(self, user: str, password: str | SecretValue) -> Endpoint:
        pw = password if isinstance(password, SecretValue) else SecretValue(password)
        return Endpoint("mysql", "127.0.0.1", 3306, self.db, user, pw)

    def works(self, user: str, password: str | SecretValue) -> bool:
        try:
            mysql.can_login(self.ep(user, password))
        except UpstreamError as exc:
            assert "Access denied" in exc.message
            return False
        return True

    def secrets(self) -> dict[str, SecretValue]:
        return {ADMIN: SecretValue(f"mysql://root:@127.0.0.1:3306/{self.db}")}


@pytest.fixture
def server() -> Iterator[Server]:
    with mariadb_database() as db:
        s = Server(db)
        s.run(f"CREATE TABLE `{db}`.t (n int)")
        try:
            yield s
        finally:
            for user, host in s.users:
                s.run("DROP USER IF EXISTS %s@%s", (user, host))


def fresh() -> str:
    return f"sbt_{uuid.uuid4().hex[:8]}"


def url_of(value: SecretValue | None) -> Endpoint:
    assert value is not None
    return mysql.endpoint(value, what="x")


def test_the_registry_has_the_mysql_rotator() -> None:
    assert isinstance(rotator("mysql"), MysqlRotator)


def test_single_user_the_old_password_is_refused_after_the_rotation(server: Server) -> None:
    user = server.account(fresh(), "old-password-1")
    r = Rotation(
        MysqlRotator(),
        {"admin": ADMIN, "username": user},
        server.secrets(),
        current=SecretValue("old-password-1"),
    )
    r.rotate()
    assert server.works(user, r.current or "")
    assert not server.works(user, "old-password-1")
    r.rotate()
    assert not server.works(user, r.previous or "")


def test_set_twice_is_the_same_as_once_and_undo_restores(server: Server) -> None:
    user = server.account(fresh(), "old-password-2")
    r = Rotation(
        MysqlRotator(),
        {"admin": ADMIN, "username": user, "alphabet": "symbols", "length": "100"},
        server.secrets(),
        current=SecretValue("old-password-2"),
    )
    ctx = r.start(dry_run=True)
    r.rotator.set(ctx)
    r.rotator.set(ctx)
    r.rotator.test(ctx)
    assert not server.works(user, "old-password-2")
    r.rotator.undo(ctx)
    r.rotator.undo(ctx)
    assert server.works(user, "old-password-2")
    assert not server.works(user, ctx.pending)
    r.assert_clean(*ctx.notes)


def test_single_user_json_value(server: Server) -> None:
    user = server.account(fresh(), "old-password-3")
    r = Rotation(
        MysqlRotator(), {"admin": ADMIN, "username": user, "format": "json"}, server.secrets()
    )
    r.rotate()
    doc = json.loads((r.current or SecretValue("")).reveal())
    assert doc["engine"] == "mysql" and doc["username"] == user and doc["dbname"] == server.db
    assert server.works(user, doc["password"])


def test_alternating_users_keep_the_old_login_until_the_next_rotation(server: Server) -> None:
    user = server.account(fresh(), "old-password-4")
    clone = f"{user}_clone"
    server.run(f"GRANT INSERT ON `{server.db}`.t TO %s@'%%'", (user,))
    r = Rotation(
        MysqlRotator(),
        {"admin": ADMIN, "username": user, "strategy": "alternating"},
        server.secrets(),
        current=server.ep(user, "old-password-4").url(),
    )
    first = r.rotate()
    assert first.state["pending_user"] == clone
    app = url_of(r.current)
    assert app.user == clone
    assert server.works(user, "old-password-4")  # the previous login still works
    conn = mysql.connect(app)
    with conn.cursor() as cur:  # the clone has the original's grants
        cur.execute("INSERT INTO t VALUES (1)")
        cur.execute("SELECT n FROM t")
    conn.close()
    assert sorted(mysql_accounts.grants(server.ep("root", ""), clone, "%")) == sorted(
        mysql_accounts.grants(server.ep("root", ""), user, "%")
    )

    # A grant given to the original while the clone is current reaches the clone at the
    # next rotation (added: nothing is revoked from the login in use).
    server.run(f"GRANT UPDATE ON `{server.db}`.t TO %s@'%%'", (user,))
    second = r.rotate()
    assert second.state["pending_user"] == user
    assert any("1 grant(s)" in n for n in second.notes)
    assert not server.works(user, "old-password-4")
    assert server.works(clone, app.password)
    conn = mysql.connect(app)
    with conn.cursor() as cur:
        cur.execute("UPDATE t SET n = 2")
    conn.close()

    third = r.rotate()
    assert third.state["pending_user"] == clone
    assert not server.works(clone, app.password)
    assert server.works(clone, url_of(r.current).password)
    assert server.works(user, url_of(r.previous).password)


def test_alternating_the_clone_is_rebuilt_with_exactly_the_originals_grants(
    server: Server,
) -> None:
    user = server.account(fresh(), "old-password-5")
    clone = f"{user}_clone"
    r = Rotation(
        MysqlRotator(),
        {"admin": ADMIN, "username": user, "strategy": "alternating", "format": "json"},
        server.secrets(),
    )
    r.rotate()
    r.rotate()
    server.run(f"GRANT DELETE ON `{server.db}`.t TO %s@'%%'", (clone,))  # drift by hand
    ctx = r.start()
    assert ctx.state["pending_user"] == clone
    r.rotator.set(ctx)
    r.rotator.test(ctx)
    grants = mysql_accounts.grants(server.ep("root", ""), clone, "%")
    assert not any("DELETE" in g for g in grants)
    # A grant the clone lacks (given to the original after set) fails the test.
    server.run(f"GRANT INSERT ON `{server.db}`.t TO %s@'%%'", (user,))
    with r.raises(RotationFailed, match="differs from it"):
        r.rotator.test(ctx)


def test_alternating_undo_leaves_the_current_login_alone(server: Server) -> None:
    user = server.account(fresh(), "old-password-6")
    r = Rotation(
        MysqlRotator(),
        {"admin": ADMIN, "username": user, "strategy": "alternating"},
        server.secrets(),
        current=server.ep(user, "old-password-6").url(),
    )
    ctx = r.start(dry_run=True)
    r.rotator.undo(ctx)  # before set: there is no clone yet, nothing to do
    r.rotator.set(ctx)
    r.rotator.test(ctx)
    r.rotator.undo(ctx)
    assert not server.works(f"{user}_clone", url_of(ctx.pending).password)
    assert server.works(user, "old-password-6")
    r.assert_clean(*ctx.notes)


def test_names_that_need_quoting_and_an_account_host(server: Server) -> None:
    user = f"sb`t'x\\ {uuid.uuid4().hex[:6]}"
    server.account(user, "old-password-7", host="127.0.0.1")
    options = {"admin": ADMIN, "username": user, "account_host": "127.0.0.1"}
    single = Rotation(
        MysqlRotator(), options, server.secrets(), current=SecretValue("old-password-7")
    )
    single.rotate()
    assert not server.works(user, "old-password-7")
    alternating = Rotation(
        MysqlRotator(),
        {**options, "strategy": "alternating", "clone": f"{user}_clone"},
        server.secrets(),
        current=server.ep(user, single.current or "").url(),
    )
    alternating.rotate()
    alternating.rotate()
    assert server.works(f"{user}_clone", url_of(alternating.previous).password)
    assert server.works(user, url_of(alternating.current).password)


def test_test_fails_when_the_pending_password_does_not_work(server: Server) -> None:
    user = server.account(fresh(), "old-password-8")
    r = Rotation(
        MysqlRotator(),
        {"admin": ADMIN, "username": user},
        server.secrets(),
        current=SecretValue("old-password-8"),
    )
    ctx = r.start()
    with r.raises(RotationFailed, match="does not log in: .*Access denied"):
        r.rotator.test(ctx)


def test_a_missing_account_is_an_upstream_error(server: Server) -> None:
    r = Rotation(
        MysqlRotator(),
        {"admin": ADMIN, "username": "sbt_nobody"},
        server.secrets(),
        current=SecretValue("whatever-pw"),
    )
    with r.raises(UpstreamError, match="has no account `sbt_nobody`@`%`") as info:
        r.rotator.set(r.start())
    assert "account_host" in (info.value.hint or "")


def test_an_unreachable_server_at_set_is_an_upstream_error(server: Server) -> None:
    user = server.account(fresh(), "old-password-9")
    r = Rotation(
        MysqlRotator(),
        {"admin": ADMIN, "username": user, "timeout": "2"},
        {ADMIN: SecretValue("mysql://root:admin-pw-x@127.0.0.1:1/db")},
        current=SecretValue("old-password-9"),
    )
    ctx = r.start()
    with r.raises(UpstreamError, match="cannot log in to MySQL"):
        r.rotator.set(ctx)
    assert server.works(user, "old-password-9")
    r.secrets.update(server.secrets())
    r.rotator.set(ctx)
    r.rotator.test(ctx)


@pytest.mark.parametrize(
    ("admin_value", "kind", "match"),
    [
        (None, NotFound, "admin secret app/prod/MYSQL_ADMIN of app/prod/DB's mysql rotator"),
        ("postgresql://u:pw-x1@127.0.0.1/db", InvalidInput, "must be a URL starting mysql://"),
        ("mysql://root:wrong-admin-pw@127.0.0.1:3306/", UpstreamError, "Access denied"),
    ],
)
def test_a_missing_or_wrong_admin_secret(
    server: Server, admin_value: str | None, kind: type[Exception], match: str
) -> None:
    user = server.account(fresh(), "old-password-10")
    values = {} if admin_value is None else {ADMIN: SecretValue(admin_value)}
    r = Rotation(
        MysqlRotator(),
        {"admin": ADMIN, "username": user},
        values,
        current=SecretValue("old-password-10"),
    )
    with r.raises(kind, match=match):  # type: ignore[arg-type]
        r.rotator.set(r.start())
    assert server.works(user, "old-password-10")


def test_an_account_locked_by_another_session_times_out_instead_of_hanging(
    server: Server,
) -> None:
    user = server.account(fresh(), "old-password-11")
    r = Rotation(
        MysqlRotator(),
        {"admin": ADMIN, "username": user, "timeout": "1"},
        server.secrets(),
        current=SecretValue("old-password-11"),
    )
    ctx = r.start()
    holder = pymysql.connect(**MARIADB, autocommit=True)  # type: ignore[arg-type]
    try:
        with holder.cursor() as cur:
            cur.execute("LOCK TABLES mysql.global_priv WRITE")
        with r.raises(UpstreamError, match="Lock wait timeout exceeded"):
            r.rotator.set(ctx)
        with holder.cursor() as cur:
            cur.execute("UNLOCK TABLES")
    finally:
        holder.close()
    assert server.works(user, "old-password-11")
    r.rotator.set(ctx)
    r.rotator.test(ctx)


def test_a_rotating_admin_is_its_own_admin(server: Server) -> None:
    admin = server.account(fresh(), "old-admin-pw")
    server.run("GRANT CREATE USER ON *.* TO %s@'%%'", (admin,))
    server.run("GRANT SELECT ON mysql.* TO %s@'%%'", (admin,))
    path = "app/prod/MYSQL_ADMIN_URL"
    r = Rotation(
        MysqlRotator(),
        {"admin": path, "username": admin, "format": "url"},
        {},
        ref=path,
        current=server.ep(admin, "old-admin-pw").url(),
    )
    ctx = r.start(dry_run=True)
    r.rotator.set(ctx)
    r.rotator.set(ctx)  # a retry logs in with the pending password
    r.rotator.test(ctx)
    r.rotator.undo(ctx)
    assert server.works(admin, "old-admin-pw")
    r.rotate()
    assert not server.works(admin, "old-admin-pw")
    assert server.works(admin, url_of(r.current).password)
