"""Dynamic users on PostgreSQL: made in one transaction, dropped with their sessions.

The default revocation first takes the login away (``NOLOGIN``, so no new session can
start), ends the user's sessions, drops what it owns or was granted in the admin URL's
database (``DROP OWNED``), then the role. The admin login must be allowed to do that (a
superuser, or the creator of the roles with ``CREATEROLE``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sealbox.errors import UpstreamError
from sealbox.model import SecretValue
from sealbox.upstream import postgres
from sealbox.upstream.endpoint import Endpoint

if TYPE_CHECKING:
    import psycopg


class PostgresBackend:
    """Users made by a role's statements through a PostgreSQL admin login."""

    name = "postgres"
    max_name = postgres.MAX_NAME
    #: A user whose creation says VALID UNTIL keeps working while its lease is renewed.
    default_renewal = "ALTER ROLE \"{{name}}\" VALID UNTIL '{{expiration}}'"

    def endpoint(self, value: SecretValue, *, what: str) -> Endpoint:
        return postgres.endpoint(value, what=what)

    def create(self, admin: Endpoint, statements: Sequence[str], password: SecretValue) -> None:
        import psycopg

        with postgres.connect(admin) as conn:
            try:
                with conn.transaction():
                    for statement in statements:
                        # bytes: a statement the role defined, run as it is (no parameters).
                        conn.execute(statement.encode())
            except psycopg.Error as exc:
                raise UpstreamError(
                    f"PostgreSQL {admin.where()} refused the creation statements:"
                    f" {postgres.reason(exc, password)}"
                ) from None

    def run(self, admin: Endpoint, statements: Sequence[str]) -> None:
        import psycopg

        with postgres.connect(admin) as conn:
            try:
                with conn.transaction():
                    for statement in statements:
                        conn.execute(statement.encode())
            except psycopg.Error as exc:
                raise UpstreamError(
                    f"PostgreSQL {admin.where()} refused a statement: {postgres.reason(exc)}"
                ) from None

    def user_exists(self, admin: Endpoint, username: str) -> bool:
        import psycopg

        with postgres.connect(admin) as conn:
            try:
                row = conn.execute(
                    "SELECT 1 FROM pg_roles WHERE rolname = %s", (username,)
                ).fetchone()
            except psycopg.Error as exc:
                raise UpstreamError(
                    f"PostgreSQL {admin.where()} cannot list roles: {postgres.reason(exc)}"
                ) from None
        return row is not None

    def drop_user(self, admin: Endpoint, username: str) -> bool:
        import psycopg
        from psycopg import sql

        role = sql.Identifier(username)
        with postgres.connect(admin) as conn:
            try:
                # One revoker of a user at a time (two reapers, a revoke racing the
                # reaper): the second then finds it gone. Released when the connection
                # closes.
                conn.execute("SELECT pg_advisory_lock(hashtext(%s))", ("sealbox-drop:" + username,))
                if (
                    conn.execute(
                        "SELECT 1 FROM pg_roles WHERE rolname = %s", (username,)
                    ).fetchone()
                    is None
                ):
                    return False
                conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(role))
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE usename = %s AND pid <> pg_backend_pid()",
                    (username,),
                )
                with conn.transaction():
                    conn.execute(sql.SQL("DROP OWNED BY {}").format(role))
                    conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))
            except psycopg.Error as exc:
                # Another revoker (a second reaper, a revoke racing the reaper) may have
                # dropped it meanwhile ("does not exist", "tuple concurrently deleted"):
                # gone is the goal.
                if not _exists(conn, username):
                    return False
                raise UpstreamError(
                    f"PostgreSQL {admin.where()} cannot drop user {username}:"
                    f" {postgres.reason(exc)}"
                ) from None
        return True


def _exists(conn: psycopg.Connection[tuple[object, ...]], username: str) -> bool:
    """Whether the role is there (True when that cannot be told: then it is not gone)."""
    import psycopg

    try:
        row = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (username,)).fetchone()
    except psycopg.Error:
        return True
    return row is not None
