"""PostgreSQL roles for the postgres rotator: change a role's password, and keep an
alternating-users clone that has exactly the original's privileges.

A password is sent as a verifier computed on this side (libpq's
``PQencryptPasswordConn``, what ``psql``'s ``\\password`` does), in the server's
``password_encryption`` method: the plaintext never reaches the server, so a
``log_statement = 'ddl'`` or an error logged with its statement shows only a salted hash.

The clone is a **member** of the original (``GRANT original TO clone``, inheriting) whose
sessions start as the original (``ALTER ROLE clone SET role = original``): its privileges
are the original's by construction, now and after any later ``GRANT`` to the original,
and the tables a migration creates under either login are owned by the original (copied
grants would drift, and objects owned by the clone would be out of the original's reach).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sealbox.errors import UpstreamError
from sealbox.model import SecretValue
from sealbox.upstream.endpoint import Endpoint
from sealbox.upstream.postgres import connect, reason

if TYPE_CHECKING:
    import psycopg


def _admin(admin: Endpoint, timeout: float) -> psycopg.Connection[tuple[object, ...]]:
    """An admin connection whose statements give up after ``timeout`` (a role row locked
    by someone's open transaction would otherwise hold the rotation forever)."""
    import psycopg

    conn = connect(admin, timeout=timeout)
    ms = int(timeout * 1000)
    try:
        # NOTE: the statement's limit is longer, so a wait for a lock says so.
        conn.execute("SELECT set_config('lock_timeout', %s, false)", (str(ms),))
        conn.execute("SELECT set_config('statement_timeout', %s, false)", (str(2 * ms),))
    except psycopg.Error as exc:
        conn.close()
        raise UpstreamError(
            f"PostgreSQL {admin.where()} cannot set a timeout: {reason(exc)}"
        ) from None
    return conn


def _verifier(conn: psycopg.Connection[tuple[object, ...]], role: str, pw: SecretValue) -> str:
    # NOTE: algorithm None: the server's password_encryption (scram-sha-256, or md5 on
    # an old server, whose verifier depends on the role name: hence one per role).
    return conn.pgconn.encrypt_password(pw.reveal_bytes(), role.encode(), None).decode()


def _exists(conn: psycopg.Connection[tuple[object, ...]], role: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is not None


def role_exists(admin: Endpoint, role: str, *, timeout: float = 5.0) -> bool:
    """Whether ``role`` exists on ``admin``'s server."""
    import psycopg

    with _admin(admin, timeout) as conn:
        try:
            return _exists(conn, role)
        except psycopg.Error as exc:
            raise UpstreamError(
                f"PostgreSQL {admin.where()} cannot look up roles: {reason(exc)}"
            ) from None


def set_password(
    admin: Endpoint, role: str, password: SecretValue, *, timeout: float = 5.0
) -> None:
    """``ALTER ROLE role PASSWORD …`` as ``admin``. Idempotent. UpstreamError if the role
    does not exist or the admin may not change it."""
    import psycopg
    from psycopg import sql

    with _admin(admin, timeout) as conn:
        try:
            if not _exists(conn, role):
                raise UpstreamError(f"PostgreSQL {admin.host}:{admin.port} has no role {role!r}")
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(_verifier(conn, role, password))
                )
            )
        except psycopg.Error as exc:
            raise UpstreamError(
                f"PostgreSQL {admin.where()} refused to change the password of role {role!r}:"
                f" {reason(exc, password)}"
            ) from None


def ensure_clone(
    admin: Endpoint, original: str, clone: str, password: SecretValue, *, timeout: float = 5.0
) -> bool:
    """Make ``clone`` a login with ``password``, a member of ``original`` whose sessions
    run as ``original``, with the original's connection limit; in one transaction, so a
    crash leaves either the old clone or the new one. Idempotent. True if it was created."""
    import psycopg
    from psycopg import sql

    role, orig = sql.Identifier(clone), sql.Identifier(original)
    with _admin(admin, timeout) as conn:
        try:
            with conn.transaction():
                row = conn.execute(
                    "SELECT rolconnlimit FROM pg_roles WHERE rolname = %s", (original,)
                ).fetchone()
                if row is None:
                    raise UpstreamError(
                        f"PostgreSQL {admin.host}:{admin.port} has no role {original!r}"
                    )
                created = not _exists(conn, clone)
                verb = "CREATE" if created else "ALTER"
                conn.execute(
                    sql.SQL(
                        verb + " ROLE {} WITH LOGIN INHERIT CONNECTION LIMIT {} PASSWORD {}"
                    ).format(
                        role,
                        sql.Literal(int(str(row[0]))),
                        sql.Literal(_verifier(conn, clone, password)),
                    )
                )
                if not _is_member(conn, clone, original):
                    conn.execute(sql.SQL("GRANT {} TO {}").format(orig, role))
                conn.execute(
                    sql.SQL("ALTER ROLE {} SET role = {}").format(role, sql.Literal(original))
                )
        except psycopg.Error as exc:
            raise UpstreamError(
                f"PostgreSQL {admin.where()} refused to set up role {clone!r} as a clone of"
                f" {original!r}: {reason(exc, password)}"
            ) from None
    return created


def _is_member(conn: psycopg.Connection[tuple[object, ...]], member: str, role: str) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid"
            " JOIN pg_roles u ON u.oid = m.member WHERE r.rolname = %s AND u.rolname = %s",
            (role, member),
        ).fetchone()
        is not None
    )


def clone_problems(
    admin: Endpoint, original: str, clone: str, *, timeout: float = 5.0
) -> list[str]:
    """Why ``clone`` would not act exactly as ``original`` (empty: it does)."""
    import psycopg

    with _admin(admin, timeout) as conn:
        try:
            row = conn.execute(
                "SELECT rolcanlogin, rolinherit, coalesce(rolconfig, '{}') FROM pg_roles"
                " WHERE rolname = %s",
                (clone,),
            ).fetchone()
            if row is None:
                return [f"role {clone!r} does not exist"]
            problems = []
            if not row[0]:
                problems.append(f"role {clone!r} cannot log in")
            if not row[1]:
                problems.append(f"role {clone!r} does not inherit privileges")
            if not _is_member(conn, clone, original):
                problems.append(f"role {clone!r} is not a member of {original!r}")
            config = row[2] if isinstance(row[2], list) else []
            if f"role={original}" not in config:
                problems.append(f"role {clone!r} does not start its sessions as {original!r}")
            return problems
        except psycopg.Error as exc:
            raise UpstreamError(
                f"PostgreSQL {admin.where()} cannot look up roles: {reason(exc)}"
            ) from None


def session_user(ep: Endpoint, *, timeout: float = 5.0) -> tuple[str, str]:
    """Log in as ``ep`` and return ``(session_user, current_user)``; UpstreamError saying
    why not (a refused password, say)."""
    import psycopg

    with connect(ep, timeout=timeout) as conn:
        try:
            row = conn.execute("SELECT session_user::text, current_user::text").fetchone()
        except psycopg.Error as exc:
            raise UpstreamError(
                f"PostgreSQL login {ep.where()} cannot run a query: {reason(exc)}"
            ) from None
    assert row is not None
    return str(row[0]), str(row[1])
