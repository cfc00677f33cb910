"""Where an upstream database is and who logs in: parsed from a secret holding a URL.

A rotator's or a credentials role's admin connection is another sealbox secret whose
value is a URL (``postgresql://admin:pw@db.internal:5432/app``,
``mysql://root:pw@127.0.0.1:3306/app``), so the admin password is itself stored,
audited and rotatable like any secret, and never sits in a configuration row.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import unquote, urlsplit

from sealbox.errors import InvalidInput
from sealbox.model import SecretValue


class Endpoint(NamedTuple):
    """A database server, its database, and a login. Prints without the password."""

    scheme: str
    host: str
    port: int
    database: str
    user: str
    password: SecretValue

    def login(self, user: str, password: SecretValue) -> Endpoint:
        """The same server and database, logged in as someone else."""
        return self._replace(user=user, password=password)

    def where(self) -> str:
        """``user@host:port/database``, for messages."""
        return f"{self.user}@{self.host}:{self.port}/{self.database}"

    def url(self) -> SecretValue:
        """This endpoint as a URL with its password (the value a credential secret holds)."""
        from urllib.parse import quote

        return SecretValue(
            f"{self.scheme}://{quote(self.user, safe='')}:"
            f"{quote(self.password.reveal(), safe='')}@{self.host}:{self.port}/"
            f"{quote(self.database, safe='')}"
        )

    def __repr__(self) -> str:
        return f"Endpoint({self.scheme}://{self.where()})"

    def __str__(self) -> str:
        return self.__repr__()


def parse_url(
    value: SecretValue, *, schemes: tuple[str, ...], default_port: int, what: str
) -> Endpoint:
    """The endpoint a URL secret names; InvalidInput (never echoing the value) if it is not
    one: ``what`` names the secret in the message."""
    text = value.reveal().strip()
    try:
        parts = urlsplit(text)
        port = parts.port or default_port
    except ValueError:
        raise InvalidInput(f"{what} is not a URL with a valid port") from None
    if parts.scheme not in schemes:
        raise InvalidInput(
            f"{what} must be a URL starting {' or '.join(s + '://' for s in schemes)}"
        )
    if not parts.hostname or not parts.username:
        raise InvalidInput(f"{what} must name a host and a user ({schemes[0]}://user:pw@host/db)")
    return Endpoint(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port,
        database=unquote(parts.path.lstrip("/")),
        user=unquote(parts.username),
        password=SecretValue(unquote(parts.password or "")),
    )
