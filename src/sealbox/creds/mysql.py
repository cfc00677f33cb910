"""Dynamic users on MySQL and MariaDB: statements run one by one (DDL commits anyway).

The default revocation drops every account of the user's name (any host part), then ends
its sessions: MySQL and MariaDB let a dropped account's open sessions run on otherwise.
A creation that fails half-way is undone by the core with this default revocation.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sealbox.errors import UpstreamError
from sealbox.model import SecretValue
from sealbox.upstream import mysql
from sealbox.upstream.endpoint import Endpoint
from sealbox.upstream.postgres import reason

if TYPE_CHECKING:
    from pymysql.cursors import Cursor


_NEAR = re.compile(r" near '.*' at line \d+", re.DOTALL)


class MysqlBackend:
    """Users made by a role's statements through a MySQL or MariaDB admin login."""

    name = "mysql"
    max_name = mysql.MAX_NAME
    default_renewal = ""  # MySQL accounts have no expiry time to move

    def endpoint(self, value: SecretValue, *, what: str) -> Endpoint:
        return mysql.endpoint(value, what=what)

    def create(self, admin: Endpoint, statements: Sequence[str], password: SecretValue) -> None:
        self._run(admin, statements, "the creation statements", password)

    def run(self, admin: Endpoint, statements: Sequence[str]) -> None:
        self._run(admin, statements, "a statement", None)

    def _run(
        self, admin: Endpoint, statements: Sequence[str], what: str, secret: SecretValue | None
    ) -> None:
        import pymysql

        conn = mysql.connect(admin)
        try:
            with conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)  # no arguments: run as the role wrote it
        except pymysql.err.Error as exc:
            why = reason(exc, secret)
            if secret is not None:
                # A syntax error quotes the statement from where it failed, cut at 80
                # characters: maybe a piece of the password, which no redaction matches.
                why = _NEAR.sub(" near (the statement's text withheld)", why)
            raise UpstreamError(f"MySQL {admin.where()} refused {what}: {why}") from None
        finally:
            conn.close()

    def _hosts(self, cur: Cursor, username: str) -> list[str]:
        cur.execute("SELECT Host FROM mysql.user WHERE User = %s", (username,))
        return [str(r[0]) for r in cur.fetchall()]

    def user_exists(self, admin: Endpoint, username: str) -> bool:
        import pymysql

        conn = mysql.connect(admin)
        try:
            with conn.cursor() as cur:
                return bool(self._hosts(cur, username))
        except pymysql.err.Error as exc:
            raise UpstreamError(f"MySQL {admin.where()} cannot list users: {reason(exc)}") from None
        finally:
            conn.close()

    def drop_user(self, admin: Endpoint, username: str) -> bool:
        import pymysql

        conn = mysql.connect(admin)
        try:
            with conn.cursor() as cur:
                hosts = self._hosts(cur, username)
                for host in hosts:
                    cur.execute("DROP USER IF EXISTS %s@%s", (username, host))
                cur.execute(
                    "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s", (username,)
                )
                for (pid,) in cur.fetchall():
                    # It may have ended meanwhile.
                    with contextlib.suppress(pymysql.err.OperationalError):
                        cur.execute(f"KILL CONNECTION {int(pid)}")
        except pymysql.err.Error as exc:
            raise UpstreamError(
                f"MySQL {admin.where()} cannot drop user {username}: {reason(exc)}"
            ) from None
        finally:
            conn.close()
        return bool(hosts)
