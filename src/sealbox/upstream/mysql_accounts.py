"""MySQL and MariaDB accounts for the mysql rotator: change an account's password, and
keep an alternating-users clone whose grants are the original's.

Names and passwords go to the server as escaped string literals (PyMySQL's escaping,
which follows the server's ``NO_BACKSLASH_ESCAPES`` mode); an error is reported with the
password replaced by ``***`` should the server echo the statement. MariaDB is sent the
password's ``mysql_native_password`` hash (``IDENTIFIED BY PASSWORD '*…'``, what
``IDENTIFIED BY`` would store), so no statement it logs, replicates or lists in its
process list holds the plaintext; MySQL rewrites passwords out of its logs itself.

MariaDB cannot grant a user to a user (only roles), so the clone gets **copies** of the
original's grants (``SHOW GRANTS``, the grantee replaced, the password hash removed):
when the clone takes the new password it is dropped and recreated with exactly the
original's grants; when the original takes it, grants the clone lacks are added (it is
the current login then: nothing is revoked from under it).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sealbox.errors import UpstreamError
from sealbox.model import SecretValue
from sealbox.upstream.endpoint import Endpoint
from sealbox.upstream.mysql import _driver, connect, quote_ident
from sealbox.upstream.postgres import reason

if TYPE_CHECKING:
    from pymysql.connections import Connection

#: SHOW GRANTS shows the account's authentication (a password hash, a plugin): never
#: copied, never shown.
_AUTH = re.compile(
    r"\s+IDENTIFIED\s+(?:BY\s+PASSWORD\s+'[^']*'|VIA\s+.*?)(?=\s+(?:REQUIRE|WITH)\b|$)",
    re.IGNORECASE,
)
GRANTEE = "{grantee}"
_NO_ACCOUNT_HINT = (
    "an account is 'user'@'host': check the host part (the mysql rotator's option"
    " account_host, '%' by default) against SELECT user, host FROM mysql.user"
)


def printed(user: str, host: str) -> str:
    """An account as SHOW GRANTS prints it: ``\\`user\\`@\\`host\\```."""
    return f"{quote_ident(user)}@{quote_ident(host)}"


def native_hash(password: SecretValue) -> str:
    """The ``mysql_native_password`` hash (``*`` and SHA1(SHA1(password)) in hex): what the
    server stores, and as good as the password to an offline guesser."""
    import hashlib

    inner = hashlib.sha1(password.reveal_bytes()).digest()  # noqa: S324 (the server's hash)
    return "*" + hashlib.sha1(inner).hexdigest().upper()  # noqa: S324


def _fail(
    admin: Endpoint, what: str, exc: BaseException, pw: SecretValue | None = None
) -> UpstreamError:
    """The driver's reason, without the password or its hash should the server echo the
    statement (a syntax error quotes it)."""
    text = reason(exc, pw)
    if pw is not None:
        text = text.replace(native_hash(pw), "***")
    return UpstreamError(f"MySQL {admin.where()} refused to {what}: {text}")


def _admin(admin: Endpoint, timeout: float) -> Connection[Any]:
    """An admin connection whose statements give up waiting for a lock after ``timeout``
    (an ``ALTER USER`` behind someone's lock would otherwise hold the rotation forever)."""
    pymysql = _driver()
    conn = connect(admin, timeout=timeout)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION lock_wait_timeout = %s", (max(1, int(timeout)),))
    except pymysql.err.Error as exc:
        conn.close()
        raise _fail(admin, "set a timeout", exc) from None
    return conn


def _identified(conn: Connection[Any], password: SecretValue) -> tuple[str, str]:
    """The ``IDENTIFIED BY`` clause (a ``%s`` for its literal) and that literal."""
    # NOTE: the handshake's version (PyMySQL's stubs do not declare the attribute).
    if "mariadb" in str(getattr(conn, "server_version", "")).lower():
        return "IDENTIFIED BY PASSWORD %s", native_hash(password)
    return "IDENTIFIED BY %s", password.reveal()


def _exists(conn: Connection[Any], user: str, host: str) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM mysql.user WHERE User = %s AND Host = %s", (user, host))
        return cur.fetchone() is not None


def account_exists(admin: Endpoint, user: str, host: str, *, timeout: float = 5.0) -> bool:
    """Whether the account ``user@host`` exists."""
    pymysql = _driver()
    conn = _admin(admin, timeout)
    try:
        return _exists(conn, user, host)
    except pymysql.err.Error as exc:
        raise _fail(admin, "list its accounts", exc) from None
    finally:
        conn.close()


def set_password(
    admin: Endpoint, user: str, host: str, password: SecretValue, *, timeout: float = 5.0
) -> None:
    """``ALTER USER 'user'@'host' IDENTIFIED BY …`` as ``admin``. Idempotent."""
    pymysql = _driver()
    conn = _admin(admin, timeout)
    try:
        if not _exists(conn, user, host):
            raise UpstreamError(
                f"MySQL {admin.host}:{admin.port} has no account {printed(user, host)}",
                hint=_NO_ACCOUNT_HINT,
            )
        clause, literal = _identified(conn, password)
        with conn.cursor() as cur:
            cur.execute("ALTER USER %s@%s " + clause, (user, host, literal))
    except pymysql.err.Error as exc:
        raise _fail(admin, f"change the password of {printed(user, host)}", exc, password) from None
    finally:
        conn.close()


def template(line: str, user: str, host: str) -> str | None:
    """A SHOW GRANTS line of ``user@host`` as a template: the grantee replaced by
    ``{grantee}``, the authentication removed; None if it cannot be copied safely."""
    who = printed(user, host)
    text = _AUTH.sub("", line)
    # NOTE: the grantee ends a GRANT (before REQUIRE/WITH) and a SET DEFAULT ROLE; a
    # name printed elsewhere in the line (a database named like it) is left alone.
    found = list(re.finditer(r"( TO | FOR )" + re.escape(who) + r"(?=\s|$)", text))
    if len(found) != 1 or re.search(r"\bIDENTIFIED\b", text, re.IGNORECASE):
        return None
    m = found[0]
    return text[: m.start()] + m.group(1) + GRANTEE + text[m.end() :]


def _grants(conn: Connection[Any], admin: Endpoint, user: str, host: str) -> list[str]:
    """The account's grants as templates (:func:`template`)."""
    pymysql = _driver()
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW GRANTS FOR %s@%s", (user, host))
            lines = [str(row[0]) for row in cur.fetchall()]
    except pymysql.err.Error as exc:
        raise _fail(admin, f"show the grants of {printed(user, host)}", exc) from None
    out = []
    for line in lines:
        t = template(line, user, host)
        if t is None:
            raise UpstreamError(
                f"MySQL {admin.host}:{admin.port}: cannot copy a grant of {printed(user, host)}"
                f" ({_AUTH.sub('', line).split(' ON ')[0][:80]}…)"
            )
        out.append(t)
    return out


def grants(admin: Endpoint, user: str, host: str, *, timeout: float = 5.0) -> list[str]:
    """``user@host``'s grants as templates (grantee ``{grantee}``, no password hash)."""
    conn = _admin(admin, timeout)
    try:
        return _grants(conn, admin, user, host)
    finally:
        conn.close()


def _apply(conn: Connection[Any], templates: list[str], user: str, host: str) -> None:
    with conn.cursor() as cur:
        for template in templates:
            # NOTE: no parameters: PyMySQL interpolates only when given some, so a % in
            # the grant text stays as it is.
            cur.execute(template.replace(GRANTEE, printed(user, host)))


def recreate_clone(
    admin: Endpoint,
    original: str,
    clone: str,
    host: str,
    password: SecretValue,
    *,
    timeout: float = 5.0,
) -> None:
    """Drop ``clone@host`` if it exists and create it with ``password`` and exactly the
    original's grants. Idempotent: a crash in between leaves no clone or a partial one,
    and running it again starts over."""
    pymysql = _driver()
    conn = _admin(admin, timeout)
    try:
        if not _exists(conn, original, host):
            raise UpstreamError(
                f"MySQL {admin.host}:{admin.port} has no account {printed(original, host)}",
                hint=_NO_ACCOUNT_HINT,
            )
        templates = _grants(conn, admin, original, host)
        with conn.cursor() as cur:
            cur.execute("DROP USER IF EXISTS %s@%s", (clone, host))
            clause, literal = _identified(conn, password)
            cur.execute("CREATE USER %s@%s " + clause, (clone, host, literal))
        _apply(conn, templates, clone, host)
    except pymysql.err.Error as exc:
        raise _fail(
            admin, f"create {printed(clone, host)} as a clone of {original!r}", exc, password
        ) from None
    finally:
        conn.close()


def add_missing_grants(
    admin: Endpoint, original: str, clone: str, host: str, *, timeout: float = 5.0
) -> int:
    """Give ``clone@host`` the original's grants it lacks (revoking nothing); how many."""
    pymysql = _driver()
    conn = _admin(admin, timeout)
    try:
        if not _exists(conn, clone, host):
            return 0
        have = set(_grants(conn, admin, clone, host))
        missing = [t for t in _grants(conn, admin, original, host) if t not in have]
        _apply(conn, missing, clone, host)
        return len(missing)
    except pymysql.err.Error as exc:
        raise _fail(admin, f"copy grants to {printed(clone, host)}", exc) from None
    finally:
        conn.close()


def missing_grants(
    admin: Endpoint, original: str, clone: str, host: str, *, timeout: float = 5.0
) -> list[str] | None:
    """The original's grants (templates) the clone lacks; None if there is no clone."""
    conn = _admin(admin, timeout)
    try:
        if not _exists(conn, clone, host):
            return None
        have = set(_grants(conn, admin, clone, host))
        return [t for t in _grants(conn, admin, original, host) if t not in have]
    except _driver().err.Error as exc:
        raise _fail(admin, f"compare the grants of {printed(clone, host)}", exc) from None
    finally:
        conn.close()


def current_user(ep: Endpoint, *, timeout: float = 5.0) -> str:
    """Log in as ``ep`` and return ``CURRENT_USER()``; UpstreamError saying why not."""
    pymysql = _driver()
    conn = connect(ep, timeout=timeout)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT CURRENT_USER()")
            row = cur.fetchone()
    except pymysql.err.Error as exc:
        raise UpstreamError(f"MySQL login {ep.where()} cannot run a query: {reason(exc)}") from None
    finally:
        conn.close()
    return str(row[0]) if row else ""
