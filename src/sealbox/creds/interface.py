"""What a credentials backend is: one kind of database on which users are made and dropped.

A backend runs statements the core rendered (``{{name}}``, ``{{password}}`` and
``{{expiration}}`` already filled in) through an admin connection; it knows its
database's longest user name and its default revocation (drop the user, ending its
sessions) and renewal. Every error is an :class:`~sealbox.errors.UpstreamError` that says
why and never holds the password.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sealbox.model import SecretValue
    from sealbox.upstream.endpoint import Endpoint


class CredBackend(Protocol):
    """One kind of database. Stateless: the admin endpoint comes with every call."""

    #: The name roles configure (``--backend``).
    name: str
    #: The longest user name the database takes (characters; names are ASCII).
    max_name: int
    #: The renewal statements used when a role gives none ("" : nothing to renew upstream).
    default_renewal: str

    def endpoint(self, value: SecretValue, *, what: str) -> Endpoint:
        """The admin endpoint a URL secret names (InvalidInput if it is not one)."""
        ...

    def create(self, admin: Endpoint, statements: Sequence[str], password: SecretValue) -> None:
        """Run the creation statements, all or none where the database can (PostgreSQL:
        one transaction); ``password`` is only for keeping it out of error messages."""
        ...

    def run(self, admin: Endpoint, statements: Sequence[str]) -> None:
        """Run renewal or custom revocation statements, in order."""
        ...

    def drop_user(self, admin: Endpoint, username: str) -> bool:
        """The default revocation: end the user's sessions and drop it (and what it owns
        or was granted here). False if there was no such user (already gone)."""
        ...

    def user_exists(self, admin: Endpoint, username: str) -> bool: ...
