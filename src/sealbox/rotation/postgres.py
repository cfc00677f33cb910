"""The ``postgres`` rotator: a PostgreSQL role's password, changed through an admin login
stored as another secret; single user or alternating users (options:
:mod:`sealbox.rotation.database`).

The admin needs ``CREATEROLE`` (or to be a superuser); for alternating users, also
``ADMIN OPTION`` on the original role (PostgreSQL 16 gives it to a ``CREATEROLE`` admin
for roles it created). The clone is a member of the original whose sessions run as the
original (:mod:`sealbox.upstream.pg_roles` says why, rather than copying grants).
"""

from __future__ import annotations

from sealbox.model import SecretValue
from sealbox.rotation.database import DatabaseRotator, Options
from sealbox.upstream import pg_roles, postgres
from sealbox.upstream.endpoint import Endpoint


class PostgresRotator(DatabaseRotator):
    """A PostgreSQL role's password."""

    name = "postgres"
    engine = "postgres"
    max_name = postgres.MAX_NAME

    def endpoint(self, value: SecretValue, *, what: str) -> Endpoint:
        return postgres.endpoint(value, what=what)

    def user_exists(self, admin: Endpoint, user: str, opts: Options) -> bool:
        return pg_roles.role_exists(admin, user, timeout=opts.timeout)

    def set_password(self, admin: Endpoint, user: str, pw: SecretValue, opts: Options) -> None:
        pg_roles.set_password(admin, user, pw, timeout=opts.timeout)

    def prepare_clone(self, admin: Endpoint, pw: SecretValue, opts: Options) -> str:
        created = pg_roles.ensure_clone(admin, opts.username, opts.clone, pw, timeout=opts.timeout)
        return (
            f"{'created' if created else 'updated'} role {opts.clone!r} (a member of"
            f" {opts.username!r}, acting as it) with the pending password"
        )

    def login(self, ep: Endpoint, opts: Options) -> str:
        return pg_roles.session_user(ep, timeout=opts.timeout)[1]

    def acts_as(self, user: str, opts: Options) -> str:
        # NOTE: the clone's sessions start with SET ROLE to the original.
        return opts.username

    def clone_problems(self, admin: Endpoint, opts: Options) -> list[str]:
        return pg_roles.clone_problems(admin, opts.username, opts.clone, timeout=opts.timeout)
