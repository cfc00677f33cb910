"""MySQL and MariaDB as upstream systems: connect as a login (PyMySQL, the ``mysql``
extra), quote names and values.

Errors become :class:`~sealbox.errors.UpstreamError` naming the server and the user and
saying why, never the password.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sealbox.errors import UpstreamError
from sealbox.model import SecretValue
from sealbox.upstream.endpoint import Endpoint, parse_url
from sealbox.upstream.postgres import reason

if TYPE_CHECKING:
    from pymysql.connections import Connection

SCHEMES = ("mysql", "mariadb")
DEFAULT_PORT = 3306
#: MySQL and MariaDB user names: 80 characters since MySQL 5.7.8 / MariaDB 10.0; older
#: servers take 16 (a role's username template must fit the server it is used with).
MAX_NAME = 80


def endpoint(value: SecretValue, *, what: str) -> Endpoint:
    """The endpoint a ``mysql://`` URL secret names."""
    return parse_url(value, schemes=SCHEMES, default_port=DEFAULT_PORT, what=what)


def _driver() -> Any:
    try:
        import pymysql
    except ImportError:
        raise UpstreamError(
            "MySQL/MariaDB support needs PyMySQL: pip install 'sealbox[mysql]'"
        ) from None
    return pymysql


def connect(ep: Endpoint, *, timeout: float = 5.0) -> Connection[Any]:
    """An autocommit connection as ``ep``'s login; UpstreamError if refused or unreachable."""
    pymysql = _driver()
    try:
        conn: Connection[Any] = pymysql.connect(
            host=ep.host,
            port=ep.port,
            user=ep.user,
            password=ep.password.reveal(),
            database=ep.database or None,
            connect_timeout=max(1, int(timeout)),
            autocommit=True,
        )
    except pymysql.err.Error as exc:
        raise UpstreamError(
            f"cannot log in to MySQL as {ep.where()}: {reason(exc, ep.password)}"
        ) from None
    return conn


def can_login(ep: Endpoint, *, timeout: float = 5.0) -> None:
    """Log in as ``ep`` and run ``SELECT 1``; UpstreamError saying why not."""
    pymysql = _driver()
    conn = connect(ep, timeout=timeout)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
    except pymysql.err.Error as exc:
        raise UpstreamError(f"MySQL login {ep.where()} cannot run a query: {reason(exc)}") from None
    finally:
        conn.close()


def quote_ident(name: str) -> str:
    """A name as a MySQL identifier (backticks doubled)."""
    return "`" + name.replace("`", "``") + "`"
