"""The ``mysql`` rotator: a MySQL or MariaDB account's password, changed through an
admin login stored as another secret; single user or alternating users (options:
:mod:`sealbox.rotation.database`, plus ``account_host``: the host part of the account,
``'app'@'%'`` by default).

The admin needs ``CREATE USER`` and, for alternating users, the privileges it copies
``WITH GRANT OPTION`` (root has both). MariaDB grants no user to a user, so the clone
gets copies of the original's grants (:mod:`sealbox.upstream.mysql_accounts`).
"""

from __future__ import annotations

from collections.abc import Mapping

from sealbox.errors import InvalidInput
from sealbox.model import SecretValue
from sealbox.rotation.database import DatabaseRotator, Options
from sealbox.upstream import mysql, mysql_accounts
from sealbox.upstream.endpoint import Endpoint


class MysqlRotator(DatabaseRotator):
    """A MySQL or MariaDB account's password."""

    name = "mysql"
    engine = "mysql"
    max_name = mysql.MAX_NAME
    name_in_bytes = False
    own_options = frozenset({"account_host"})

    def endpoint(self, value: SecretValue, *, what: str) -> Endpoint:
        return mysql.endpoint(value, what=what)

    def check_own(self, options: Mapping[str, str]) -> dict[str, str]:
        host = options.get("account_host", "%")
        # An account's host: a name, an address, a netmask or a LIKE pattern (% and _).
        if not host or len(host) > 255 or not all(c.isalnum() or c in "-._:%/" for c in host):
            raise InvalidInput(
                "option account_host must be a host name, an IP address or a pattern"
                " with % (the host part of 'user'@'host')"
            )
        return {"account_host": host}

    @staticmethod
    def _host(opts: Options) -> str:
        return opts.extra["account_host"]

    def user_exists(self, admin: Endpoint, user: str, opts: Options) -> bool:
        return mysql_accounts.account_exists(admin, user, self._host(opts), timeout=opts.timeout)

    def set_password(self, admin: Endpoint, user: str, pw: SecretValue, opts: Options) -> None:
        mysql_accounts.set_password(admin, user, self._host(opts), pw, timeout=opts.timeout)

    def prepare_clone(self, admin: Endpoint, pw: SecretValue, opts: Options) -> str:
        mysql_accounts.recreate_clone(
            admin, opts.username, opts.clone, self._host(opts), pw, timeout=opts.timeout
        )
        who = mysql_accounts.printed(opts.clone, self._host(opts))
        return f"recreated {who} with {opts.username!r}'s grants and the pending password"

    def sync_clone(self, admin: Endpoint, opts: Options) -> str | None:
        added = mysql_accounts.add_missing_grants(
            admin, opts.username, opts.clone, self._host(opts), timeout=opts.timeout
        )
        return (
            f"gave {opts.clone!r} {added} grant(s) of {opts.username!r} it lacked"
            if added
            else None
        )

    def login(self, ep: Endpoint, opts: Options) -> str:
        # CURRENT_USER() is user@host of the account the server matched.
        return mysql_accounts.current_user(ep, timeout=opts.timeout).rpartition("@")[0]

    def clone_problems(self, admin: Endpoint, opts: Options) -> list[str]:
        host = self._host(opts)
        missing = mysql_accounts.missing_grants(
            admin, opts.username, opts.clone, host, timeout=opts.timeout
        )
        if missing is None:
            return [f"account {mysql_accounts.printed(opts.clone, host)} does not exist"]
        return [f"{len(missing)} grant(s) of {opts.username!r} missing"] if missing else []
