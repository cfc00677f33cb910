"""PostgreSQL as an upstream system: connect as a login, quote names.

Errors become :class:`~sealbox.errors.UpstreamError` whose message names the server and
the user and says why (refused, unreachable, bad password), never the password.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sealbox.errors import UpstreamError
from sealbox.model import SecretValue
from sealbox.upstream.endpoint import Endpoint, parse_url

if TYPE_CHECKING:
    import psycopg

SCHEMES = ("postgresql", "postgres")
DEFAULT_PORT = 5432
#: PostgreSQL truncates identifiers to 63 bytes (NAMEDATALEN - 1).
MAX_NAME = 63


def endpoint(value: SecretValue, *, what: str) -> Endpoint:
    """The endpoint a ``postgresql://`` URL secret names."""
    return parse_url(value, schemes=SCHEMES, default_port=DEFAULT_PORT, what=what)


def reason(exc: BaseException, password: SecretValue | None = None) -> str:
    """The last line of a driver error, without the password should the driver echo it."""
    # A server error's own sentence (the text after it is CONTEXT/DETAIL/HINT lines).
    primary = getattr(getattr(exc, "diag", None), "message_primary", None)
    # NOTE: PostgreSQL's statement errors end with the statement's text and a caret
    # ("LINE 1: …", "^"): those say nothing the first line does not (and may hold a value).
    lines = [
        line.strip()
        for line in str(exc).strip().splitlines()
        if line.strip() and line.strip() != "^" and not line.strip().startswith("LINE ")
    ]
    # NOTE: libpq ends "connection refused" with a hint line; the reason is the line before.
    while len(lines) > 1 and lines[-1].startswith("Is the server running"):
        lines.pop()
    text = str(primary) if primary else lines[-1] if lines else type(exc).__name__
    if password is not None and len(password) and password.reveal() in text:
        text = text.replace(password.reveal(), "***")
    return text[:300]


def connect(ep: Endpoint, *, timeout: float = 5.0) -> psycopg.Connection[tuple[object, ...]]:
    """An autocommit connection as ``ep``'s login; UpstreamError if refused or unreachable."""
    import psycopg

    try:
        return psycopg.connect(
            host=ep.host,
            port=ep.port,
            dbname=ep.database or "postgres",
            user=ep.user,
            password=ep.password.reveal(),
            connect_timeout=max(1, int(timeout)),
            autocommit=True,
        )
    except psycopg.Error as exc:
        raise UpstreamError(
            f"cannot log in to PostgreSQL as {ep.where()}: {reason(exc, ep.password)}"
        ) from None


def can_login(ep: Endpoint, *, timeout: float = 5.0) -> None:
    """Log in as ``ep`` and run ``SELECT 1``; UpstreamError saying why not."""
    import psycopg

    with connect(ep, timeout=timeout) as conn:
        try:
            conn.execute("SELECT 1")
        except psycopg.Error as exc:
            raise UpstreamError(
                f"PostgreSQL login {ep.where()} cannot run a query: {reason(exc)}"
            ) from None
