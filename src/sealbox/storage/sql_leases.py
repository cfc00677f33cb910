"""The SQL of dynamic-credentials roles and their leases (schema 10), shared by the
SQLite and PostgreSQL backends as a part of :class:`~sealbox.storage.sql.SqlStorage`.

Kept apart from ``sql.py`` because it is its own concern (the roles
:class:`~sealbox.storage.interface.CredRoleStore` and
:class:`~sealbox.storage.interface.LeaseStore`). The quota is decided inside the insert's
transaction under the role row's lock (``FOR UPDATE`` on PostgreSQL; SQLite's write
transaction holds the whole database), so concurrent issuers never exceed it.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from sealbox.errors import AlreadyExists, Conflict, NotFound
from sealbox.storage.rows import CredRoleRow, LeaseRow

_ROLE_COLS = (
    "project, env, name, backend, admin_path, creation, revocation, renewal,"
    " username_template, default_ttl, max_ttl, max_leases, created_at, updated_at, created_by"
)
_LEASE_COLS = (
    "id, project, env, role, username, identity_id, identity, token_accessor, issued_at,"
    " expires_at, max_expires_at, revoked_at, revoke_attempts, next_attempt_at, last_error"
)


def _role(r: Sequence[Any]) -> CredRoleRow:
    return CredRoleRow(
        str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]), str(r[6]),
        str(r[7]), str(r[8]), int(r[9]), int(r[10]), None if r[11] is None else int(r[11]),
        str(r[12]), str(r[13]), str(r[14]),
    )  # fmt: skip


def _lease(r: Sequence[Any]) -> LeaseRow:
    return LeaseRow(
        str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), str(r[5]), str(r[6]), r[7],
        str(r[8]), str(r[9]), str(r[10]), r[11], int(r[12]), r[13], str(r[14]),
    )  # fmt: skip


class LeaseSql:
    """Roles and leases over the backend's transactions (mixed into SqlStorage)."""

    if TYPE_CHECKING:
        # Supplied by SqlStorage.
        def _tx(self, *, write: bool) -> AbstractContextManager[Any]: ...
        def _require_schema(self, tx: Any) -> None: ...
        def _require_env(self, tx: Any, project: str, env: str) -> None: ...
        def _lock_clause(self) -> str: ...
        def _exec(self, tx: Any, sql: str, params: Sequence[Any] = ()) -> Any: ...
        def _one(self, tx: Any, sql: str, params: Sequence[Any] = ()) -> Any: ...
        def _all(self, tx: Any, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...

    # -- roles ------------------------------------------------------------------------------
    def put_cred_role(self, row: CredRoleRow, *, replace: bool = False) -> None:
        with self._tx(write=True) as tx:
            self._require_schema(tx)
            self._require_env(tx, row.project, row.env)
            key = (row.project, row.env, row.name)
            found = self._one(
                tx,
                "SELECT created_at, created_by FROM sb_cred_roles"
                " WHERE project = ? AND env = ? AND name = ?" + self._lock_clause(),
                key,
            )
            if found is not None:
                if not replace:
                    raise AlreadyExists(
                        f"credentials role {'/'.join(key)} already exists",
                        hint="replace it explicitly, or delete it first",
                        hint_key="replace_cred_role",
                    )
                # A replaced role keeps when and by whom it was first made.
                row = row._replace(created_at=str(found[0]), created_by=str(found[1]))
                self._exec(
                    tx,
                    "DELETE FROM sb_cred_roles WHERE project = ? AND env = ? AND name = ?",
                    key,
                )
            self._exec(
                tx,
                f"INSERT INTO sb_cred_roles ({_ROLE_COLS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                tuple(row),
            )

    def get_cred_role(self, project: str, env: str, name: str) -> CredRoleRow | None:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            r = self._one(
                tx,
                f"SELECT {_ROLE_COLS} FROM sb_cred_roles WHERE project = ? AND env = ?"
                " AND name = ?",
                (project, env, name),
            )
        return _role(r) if r else None

    def list_cred_roles(
        self, project: str | None = None, env: str | None = None
    ) -> list[CredRoleRow]:
        where, params = _filters(("project", project), ("env", env))
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            rows = self._all(
                tx,
                f"SELECT {_ROLE_COLS} FROM sb_cred_roles{where} ORDER BY project, env, name",
                params,
            )
        return [_role(r) for r in rows]

    def delete_cred_role(self, project: str, env: str, name: str) -> None:
        key = (project, env, name)
        with self._tx(write=True) as tx:
            self._require_schema(tx)
            if not self._one(
                tx,
                "SELECT 1 FROM sb_cred_roles WHERE project = ? AND env = ? AND name = ?"
                + self._lock_clause(),
                key,
            ):
                raise NotFound(f"credentials role {'/'.join(key)} does not exist")
            live = self._one(
                tx,
                "SELECT COUNT(*) FROM sb_leases WHERE project = ? AND env = ? AND role = ?"
                " AND revoked_at IS NULL",
                key,
            )
            if live and int(live[0]):
                # Its users exist upstream: forgetting the role would orphan them.
                raise Conflict(
                    f"credentials role {'/'.join(key)} has {int(live[0])} unrevoked leases",
                    hint="revoke the role's leases first",
                    hint_key="revoke_role_leases",
                    hint_args={"role": "/".join(key)},
                )
            self._exec(
                tx, "DELETE FROM sb_cred_roles WHERE project = ? AND env = ? AND name = ?", key
            )

    # -- leases -----------------------------------------------------------------------------
    def add_lease(self, row: LeaseRow, *, max_leases: int | None) -> None:
        key = (row.project, row.env, row.role)
        with self._tx(write=True) as tx:
            self._require_schema(tx)
            if not self._one(
                tx,
                "SELECT 1 FROM sb_cred_roles WHERE project = ? AND env = ? AND name = ?"
                + self._lock_clause(),
                key,
            ):
                raise NotFound(f"credentials role {'/'.join(key)} does not exist")
            if max_leases is not None:
                live = self._one(
                    tx,
                    "SELECT COUNT(*) FROM sb_leases WHERE project = ? AND env = ? AND role = ?"
                    " AND revoked_at IS NULL",
                    key,
                )
                if int(live[0]) >= max_leases:
                    raise Conflict(
                        f"credentials role {'/'.join(key)} has reached its quota of"
                        f" {max_leases} live leases",
                        hint="revoke leases that are no longer used, or raise the role's quota",
                        hint_key="lease_quota",
                        hint_args={"role": "/".join(key)},
                    )
            self._exec(
                tx,
                f"INSERT INTO sb_leases ({_LEASE_COLS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                tuple(row),
            )

    def get_lease(self, lease_id: str) -> LeaseRow | None:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            r = self._one(tx, f"SELECT {_LEASE_COLS} FROM sb_leases WHERE id = ?", (lease_id,))
        return _lease(r) if r else None

    def list_leases(
        self,
        *,
        project: str | None = None,
        env: str | None = None,
        role: str | None = None,
        prefix: str | None = None,
        token_accessors: Sequence[str] | None = None,
        include_revoked: bool = False,
    ) -> list[LeaseRow]:
        where, params = _filters(("project", project), ("env", env), ("role", role))
        clauses = [where[len(" WHERE ") :]] if where else []
        if prefix is not None:
            # NOTE: compared as a prefix, not with LIKE: an id may hold _ (a LIKE wildcard).
            clauses.append("substr(id, 1, ?) = ?")
            params = (*params, len(prefix), prefix)
        if token_accessors is not None:
            if not token_accessors:
                return []
            clauses.append(f"token_accessor IN ({', '.join('?' for _ in token_accessors)})")
            params = (*params, *token_accessors)
        if not include_revoked:
            clauses.append("revoked_at IS NULL")
        sql = f"SELECT {_LEASE_COLS} FROM sb_leases"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            rows = self._all(tx, sql + " ORDER BY issued_at, id", params)
        return [_lease(r) for r in rows]

    def set_lease_expiry(self, lease_id: str, expires_at: str) -> None:
        with self._tx(write=True) as tx:
            self._require_schema(tx)
            cur = self._exec(
                tx,
                "UPDATE sb_leases SET expires_at = ? WHERE id = ? AND revoked_at IS NULL",
                (expires_at, lease_id),
            )
            if not cur.rowcount:
                raise NotFound("no live lease with that id")

    def lease_revoked(self, lease_id: str, now: str, *, note: str = "") -> bool:
        with self._tx(write=True) as tx:
            self._require_schema(tx)
            cur = self._exec(
                tx,
                "UPDATE sb_leases SET revoked_at = ?, next_attempt_at = NULL, last_error = ?"
                " WHERE id = ? AND revoked_at IS NULL",
                (now, note[:500], lease_id),
            )
            return bool(cur.rowcount)

    def lease_revoke_failed(self, lease_id: str, error: str, next_attempt_at: str) -> int:
        with self._tx(write=True) as tx:
            self._require_schema(tx)
            self._exec(
                tx,
                "UPDATE sb_leases SET revoke_attempts = revoke_attempts + 1,"
                " next_attempt_at = ?, last_error = ? WHERE id = ? AND revoked_at IS NULL",
                (next_attempt_at, error[:500], lease_id),
            )
            r = self._one(tx, "SELECT revoke_attempts FROM sb_leases WHERE id = ?", (lease_id,))
        return int(r[0]) if r else 0

    def due_leases(self, now: str, *, limit: int = 100) -> list[LeaseRow]:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            rows = self._all(
                tx,
                f"SELECT {_LEASE_COLS} FROM sb_leases WHERE revoked_at IS NULL"
                " AND expires_at <= ? AND (next_attempt_at IS NULL OR next_attempt_at <= ?)"
                " ORDER BY expires_at, id LIMIT ?",
                (now, now, limit),
            )
        return [_lease(r) for r in rows]

    def count_live_leases(self) -> dict[tuple[str, str, str], tuple[int, str | None]]:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            rows = self._all(
                tx,
                "SELECT project, env, role, COUNT(*), MIN(issued_at) FROM sb_leases"
                " WHERE revoked_at IS NULL GROUP BY project, env, role",
            )
        return {(str(r[0]), str(r[1]), str(r[2])): (int(r[3]), r[4]) for r in rows}


def _filters(*pairs: tuple[str, str | None]) -> tuple[str, tuple[Any, ...]]:
    """`` WHERE a = ? AND b = ?`` for the pairs whose value is not None."""
    used = [(column, value) for column, value in pairs if value is not None]
    if not used:
        return "", ()
    return " WHERE " + " AND ".join(f"{c} = ?" for c, _ in used), tuple(v for _, v in used)
