"""The postgres rotator against a throw-away scram PostgreSQL cluster: single user (the
old password refused after the rotation), alternating users (the old login keeps working
until the next rotation, the clone acts exactly as the original), undo, idempotent set,
names needing quotes, an unreachable server, a wrong admin secret; no password in any
error or note."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from tests.integration.rotation.harness import Rotation
from tests.upstream_servers import Cluster, scram_cluster

from sealbox.errors import InvalidInput, NotFound, RotationFailed, UpstreamError
from sealbox.model import SecretValue
from sealbox.rotation.postgres import PostgresRotator
from sealbox.rotation.registry import rotator
from sealbox.upstream import pg_roles, postgres
from sealbox.upstream.endpoint import Endpoint

pytestmark = pytest.mark.integration

ADMIN = "app/prod/PG_ADMIN"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with scram_cluster() as c:
        yield c


def su(cluster: Cluster, statement: sql.Composable | str, db: str = "postgres") -> None:
    with psycopg.connect(cluster.dsn(db=db), autocommit=True) as conn:
        conn.execute(statement)


def make_role(cluster: Cluster, name: str, password: str) -> None:
    su(
        cluster,
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(name), sql.Literal(password)
        ),
    )


def ep(cluster: Cluster, user: str, password: str | SecretValue) -> Endpoint:
    pw = password if isinstance(password, SecretValue) else SecretValue(password)
    return Endpoint("postgresql", cluster.host, cluster.port, "postgres", user, pw)


def works(cluster: Cluster, user: str, password: str | SecretValue) -> bool:
    try:
        postgres.can_login(ep(cluster, user, password))
    except UpstreamError as exc:
        assert "password authentication failed" in exc.message
        return False
    return True


def secrets(cluster: Cluster) -> dict[str, SecretValue]:
    return {ADMIN: SecretValue(cluster.url())}


def fresh(prefix: str = "app") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def test_the_registry_has_the_postgres_rotator() -> None:
    assert isinstance(rotator("postgres"), PostgresRotator)


def test_single_user_the_old_password_is_refused_after_the_rotation(cluster: Cluster) -> None:
    role = fresh()
    make_role(cluster, role, "old-password-1")
    r = Rotation(
        PostgresRotator(),
        {"admin": ADMIN, "username": role},
        secrets(cluster),
        current=SecretValue("old-password-1"),
    )
    ctx = r.rotate()
    assert r.current is not None and len(r.current) == 32
    assert works(cluster, role, r.current)
    assert not works(cluster, role, "old-password-1")
    assert any("logs in" in n for n in ctx.notes)
    r.rotate()
    assert not works(cluster, role, r.previous or "")
    assert works(cluster, role, r.current)


def test_set_twice_is_the_same_as_once(cluster: Cluster) -> None:
    role = fresh()
    make_role(cluster, role, "old-password-2")
    r = Rotation(
        PostgresRotator(),
        {"admin": ADMIN, "username": role, "length": "64", "alphabet": "symbols"},
        secrets(cluster),
        current=SecretValue("old-password-2"),
    )
    ctx = r.start()
    r.rotator.set(ctx)
    r.rotator.set(ctx)
    r.rotator.test(ctx)
    r.finish()
    assert works(cluster, role, r.current or "")


def test_undo_puts_the_current_password_back(cluster: Cluster) -> None:
    role = fresh()
    make_role(cluster, role, "old-password-3")
    r = Rotation(
        PostgresRotator(),
        {"admin": ADMIN, "username": role},
        secrets(cluster),
        current=SecretValue("old-password-3"),
    )
    ctx = r.start(dry_run=True)
    r.rotator.set(ctx)
    r.rotator.test(ctx)
    assert not works(cluster, role, "old-password-3")
    r.rotator.undo(ctx)
    r.rotator.undo(ctx)  # idempotent
    assert works(cluster, role, "old-password-3")
    assert not works(cluster, role, ctx.pending)
    r.assert_clean(*ctx.notes)


def test_single_user_without_a_current_value(cluster: Cluster) -> None:
    """A real rotation may take the role over; a rehearsal, which could not put the unknown
    password back, is refused before anything changes; undo says it cannot."""
    role = fresh()
    make_role(cluster, role, "unknown-to-sealbox")
    r = Rotation(PostgresRotator(), {"admin": ADMIN, "username": role}, secrets(cluster))
    ctx = r.start(dry_run=True)
    with r.raises(RotationFailed, match="no current value"):
        r.rotator.set(ctx)
    assert works(cluster, role, "unknown-to-sealbox")
    r.rotator.undo(ctx)  # the engine ends a failed rehearsal undone: nothing to take back
    assert works(cluster, role, "unknown-to-sealbox")
    real = r.start()
    r.rotator.set(real)
    with r.raises(RotationFailed, match="no current value"):
        r.rotator.undo(real)  # a cancel after set: the old password is not known
    r.rotate()
    assert works(cluster, role, r.current or "")
    assert not works(cluster, role, "unknown-to-sealbox")


@pytest.mark.parametrize("fmt", ["url", "json"])
def test_single_user_url_and_json_values(cluster: Cluster, fmt: str) -> None:
    role = fresh()
    make_role(cluster, role, "old-password-4")
    r = Rotation(
        PostgresRotator(),
        {"admin": ADMIN, "username": role, "format": fmt, "database": "postgres"},
        secrets(cluster),
    )
    r.rotate()
    value = (r.current or SecretValue("")).reveal()
    if fmt == "url":
        got = postgres.endpoint(SecretValue(value), what="x")
        assert (got.user, got.host, got.port) == (role, cluster.host, cluster.port)
        postgres.can_login(got)
    else:
        doc = json.loads(value)
        assert doc["engine"] == "postgres" and doc["username"] == role
        assert doc["port"] == cluster.port and doc["dbname"] == "postgres"
        assert works(cluster, role, doc["password"])


def test_alternating_users_keep_the_old_login_until_the_next_rotation(cluster: Cluster) -> None:
    role = fresh()
    clone = f"{role}_clone"
    make_role(cluster, role, "old-password-5")
    su(cluster, sql.SQL("CREATE TABLE {} (n int)").format(sql.Identifier(f"t_{role}")))
    su(
        cluster,
        sql.SQL("GRANT SELECT ON {} TO {}").format(*map(sql.Identifier, (f"t_{role}", role))),
    )
    r = Rotation(
        PostgresRotator(),
        {"admin": ADMIN, "username": role, "strategy": "alternating"},
        secrets(cluster),
        current=ep(cluster, role, "old-password-5").url(),
    )
    first = r.rotate()
    assert first.state["pending_user"] == clone
    assert postgres.endpoint(r.current or SecretValue(""), what="x").user == clone
    assert works(cluster, role, "old-password-5")  # the previous login still works
    assert works(cluster, clone, postgres.endpoint(r.current or SecretValue(""), what="x").password)

    # The clone acts as the original: its privileges, now and after a later GRANT, and
    # what it creates belongs to the original.
    app = postgres.endpoint(r.current or SecretValue(""), what="x")
    su(
        cluster,
        sql.SQL("GRANT INSERT ON {} TO {}").format(*map(sql.Identifier, (f"t_{role}", role))),
    )
    su(cluster, sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(role)))
    with postgres.connect(app) as conn:
        conn.execute(sql.SQL("INSERT INTO {} VALUES (1)").format(sql.Identifier(f"t_{role}")))
        conn.execute(sql.SQL("SELECT n FROM {}").format(sql.Identifier(f"t_{role}")))
        conn.execute(sql.SQL("CREATE TABLE {} (n int)").format(sql.Identifier(f"made_{role}")))
        owner = conn.execute(
            "SELECT tableowner FROM pg_tables WHERE tablename = %s", (f"made_{role}",)
        ).fetchone()
    assert owner == (role,)

    second = r.rotate()
    assert second.state["pending_user"] == role
    assert not works(cluster, role, "old-password-5")
    assert works(cluster, clone, app.password)  # rotation 1's login, now previous, works

    third = r.rotate()
    assert third.state["pending_user"] == clone
    assert not works(cluster, clone, app.password)
    assert works(cluster, clone, postgres.endpoint(r.current or SecretValue(""), what="x").password)
    assert works(cluster, role, postgres.endpoint(r.previous or SecretValue(""), what="x").password)


def test_alternating_undo_leaves_the_current_login_alone(cluster: Cluster) -> None:
    role = fresh()
    make_role(cluster, role, "old-password-6")
    r = Rotation(
        PostgresRotator(),
        {"admin": ADMIN, "username": role, "strategy": "alternating", "format": "json"},
        secrets(cluster),
    )
    r.rotate()  # no current value: the clone takes the first password, the role is untouched
    assert works(cluster, role, "old-password-6")
    clone_pw = json.loads((r.current or SecretValue("")).reveal())["password"]
    ctx = r.start(dry_run=True)
    r.rotator.set(ctx)
    r.rotator.set(ctx)
    r.rotator.test(ctx)
    assert not works(cluster, role, "old-password-6")
    r.rotator.undo(ctx)
    pending_pw = json.loads(ctx.pending.reveal())["password"]
    assert not works(cluster, role, pending_pw)  # the cancelled credential is dead
    assert works(cluster, f"{role}_clone", clone_pw)  # the current one is untouched
    r.assert_clean(*ctx.notes)


def test_alternating_undo_before_the_clone_exists_does_nothing(cluster: Cluster) -> None:
    role = fresh()
    make_role(cluster, role, "old-password-7")
    r = Rotation(
        PostgresRotator(),
        {"admin": ADMIN, "username": role, "strategy": "alternating"},
        secrets(cluster),
        current=ep(cluster, role, "old-password-7").url(),
    )
    ctx = r.start()
    r.rotator.undo(ctx)  # set never ran: no clone to touch
    assert not pg_roles.role_exists(ep(cluster, "postgres", cluster.password), f"{role}_clone")
    assert works(cluster, role, "old-password-7")


def test_a_broken_clone_is_repaired_by_set_and_caught_by_test(cluster: Cluster) -> None:
    role = fresh()
    clone = f"{role}_clone"
    make_role(cluster, role, "old-password-8")
    r = Rotation(
        PostgresRotator(),
        {"admin": ADMIN, "username": role, "strategy": "alternating"},
        secrets(cluster),
        current=ep(cluster, role, "old-password-8").url(),
    )
    r.rotate()
    r.rotate()
    ctx = r.start()  # the clone's turn
    r.rotator.set(ctx)
    su(cluster, sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(role), sql.Identifier(clone)))
    with r.raises(RotationFailed, match=f"acts as '{clone}', not '{role}'"):
        r.rotator.test(ctx)  # someone broke the clone: nothing is promoted
    r.rotator.set(ctx)  # a retried set repairs it
    r.rotator.test(ctx)


def test_a_name_that_needs_quoting(cluster: Cluster) -> None:
    role = f'App "Ro\'le" {uuid.uuid4().hex[:6]}'
    make_role(cluster, role, "old-password-9")
    single = Rotation(
        PostgresRotator(),
        {"admin": ADMIN, "username": role, "format": "url"},
        secrets(cluster),
        current=ep(cluster, role, "old-password-9").url(),
    )
    single.rotate()
    assert not works(cluster, role, "old-password-9")
    alternating = Rotation(
        PostgresRotator(),
        {"admin": ADMIN, "username": role, "strategy": "alternating", "clone": role + "; DROP"},
        secrets(cluster),
        current=single.current,
    )
    alternating.rotate()
    alternating.rotate()
    got = postgres.endpoint(alternating.previous or SecretValue(""), what="x")
    assert got.user == role + "; DROP"
    assert pg_roles.session_user(got) == (role + "; DROP", role)


def test_a_rotating_admin_is_its_own_admin(cluster: Cluster) -> None:
    """The admin's own password rotates: set logs in with the current value, undo and a
    retried set with the pending one."""
    role = fresh("admin")
    make_role(cluster, role, "old-admin-pw")
    su(cluster, sql.SQL("ALTER ROLE {} CREATEROLE").format(sql.Identifier(role)))
    path = "app/prod/ADMIN_URL"
    r = Rotation(
        PostgresRotator(),
        {"admin": path, "username": role, "format": "url"},
        {},
        ref=path,
        current=ep(cluster, role, "old-admin-pw").url(),
    )
    ctx = r.start(dry_run=True)
    r.rotator.set(ctx)
    r.rotator.set(ctx)
    r.rotator.test(ctx)
    r.rotator.undo(ctx)
    assert works(cluster, role, "old-admin-pw")
    r.rotate()
    assert not works(cluster, role, "old-admin-pw")


def test_test_fails_when_the_pending_password_does_not_work(cluster: Cluster) -> None:
    role = fresh()
    make_role(cluster, role, "old-password-10")
    r = Rotation(
        PostgresRotator(),
        {"admin": ADMIN, "username": role},
        secrets(cluster),
        current=SecretValue("old-password-10"),
    )
    ctx = r.start()
    with r.raises(RotationFailed, match="does not log in: .*password authentication failed"):
        r.rotator.test(ctx)  # set never ran


def test_a_missing_role_is_an_upstream_error(cluster: Cluster) -> None:
    r = Rotation(
        PostgresRotator(),
        {"admin": ADMIN, "username": "nobody_at_all"},
        secrets(cluster),
        current=SecretValue("whatever-pw"),
    )
    ctx = r.start()
    with r.raises(UpstreamError, match="has no role 'nobody_at_all'"):
        r.rotator.set(ctx)


def test_an_unreachable_server_at_set_is_an_upstream_error(cluster: Cluster) -> None:
    role = fresh()
    make_role(cluster, role, "old-password-11")
    down = {ADMIN: SecretValue(f"postgresql://postgres:{cluster.password}@127.0.0.1:1/postgres")}
    r = Rotation(
        PostgresRotator(),
        {"admin": ADMIN, "username": role, "timeout": "2"},
        down,
        current=SecretValue("old-password-11"),
    )
    ctx = r.start()
    with r.raises(UpstreamError, match="cannot log in to PostgreSQL.*Connection refused"):
        r.rotator.set(ctx)
    with r.raises(UpstreamError, match="cannot log in to PostgreSQL"):
        r.rotator.test(ctx)  # down at test: retriable, not a failed test
    assert works(cluster, role, "old-password-11")
    # The server is back (the admin secret fixed): the same rotation completes.
    r.secrets[ADMIN] = SecretValue(cluster.url())
    r.rotator.set(ctx)
    r.rotator.test(ctx)


@pytest.mark.parametrize(
    ("admin_value", "kind", "match"),
    [
        (None, NotFound, "admin secret app/prod/PG_ADMIN of app/prod/DB's postgres rotator"),
        ("mysql://root:pw-x1@127.0.0.1/db", InvalidInput, "must be a URL starting postgresql://"),
        ("not a url at all", InvalidInput, "admin secret app/prod/PG_ADMIN"),
        ("WRONG", UpstreamError, "password authentication failed"),
    ],
)
def test_a_missing_or_wrong_admin_secret(
    cluster: Cluster, admin_value: str | None, kind: type[Exception], match: str
) -> None:
    role = fresh()
    make_role(cluster, role, "old-password-12")
    values = {}
    if admin_value == "WRONG":
        values[ADMIN] = SecretValue(cluster.url(password="wrong-admin-pw"))
    elif admin_value is not None:
        values[ADMIN] = SecretValue(admin_value)
    r = Rotation(
        PostgresRotator(),
        {"admin": ADMIN, "username": role},
        values,
        current=SecretValue("old-password-12"),
    )
    ctx = r.start()
    with r.raises(kind, match=match):  # type: ignore[arg-type]
        r.rotator.set(ctx)
    assert works(cluster, role, "old-password-12")


def test_a_pending_value_naming_another_role_is_refused(cluster: Cluster) -> None:
    role = fresh()
    make_role(cluster, role, "old-password-13")
    r = Rotation(
        PostgresRotator(),
        {"admin": ADMIN, "username": role, "format": "url"},
        secrets(cluster),
    )
    ctx = r.start()
    ctx._pending = ep(cluster, "postgres", "hijack-pw").url()
    with r.raises(RotationFailed, match="logs in as 'postgres'"):
        r.rotator.set(ctx)
    assert works(cluster, "postgres", cluster.password)


def test_a_role_locked_by_another_transaction_times_out_instead_of_hanging(
    cluster: Cluster,
) -> None:
    role = fresh()
    make_role(cluster, role, "old-password-14")
    r = Rotation(
        PostgresRotator(),
        {"admin": ADMIN, "username": role, "timeout": "1"},
        secrets(cluster),
        current=SecretValue("old-password-14"),
    )
    ctx = r.start()
    with psycopg.connect(cluster.dsn()) as holder:  # a transaction left open
        holder.execute(sql.SQL("ALTER ROLE {} CONNECTION LIMIT 5").format(sql.Identifier(role)))
        with r.raises(UpstreamError, match="canceling statement due to (lock|statement) timeout"):
            r.rotator.set(ctx)
        holder.rollback()
    assert works(cluster, role, "old-password-14")
    r.rotator.set(ctx)  # the lock gone, the retried step goes through
    r.rotator.test(ctx)
