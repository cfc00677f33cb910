"""The SQL of keys (schema 12): KEK records, key providers, KEK wrappings, unlock sessions,
and the batch re-wrap of data keys; shared by the SQLite and PostgreSQL backends as a part
of :class:`~sealbox.storage.sql.SqlStorage` (the role
:class:`~sealbox.storage.interface.KeyStore` and :class:`~sealbox.storage.interface.SessionStore`).

The one rule storage keeps itself, inside the transaction, so that two operators at once
cannot break it: every KEK keeps at least one wrapping (removing the last provider that
can open a key is refused), a KEK some version's data key is wrapped by is never
deleted, and a provider that wraps some version's data key itself (``kek_id`` =
``kms:<provider>``: the per-version KMS wrapping of :mod:`sealbox.kms_per_version`) is
never removed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from sealbox.errors import AlreadyExists, Conflict, NotFound
from sealbox.storage.rows import KekRecord, KekWrapping, KeyProviderRow, RewrapRow, SessionRow

if TYPE_CHECKING:
    from sealbox.storage.rows import SignHead

#: (secret_id, version, the KEK it is wrapped by now, the new KEK, the new wrapped key)
Rewrapped = tuple[int, int, str, str, bytes]
#: The ``kek_id`` prefix of a version whose data key a key provider wraps itself.
PER_VERSION_PREFIX = "kms:"


class KeySql:
    """Keys and sessions over the backend's transactions (mixed into SqlStorage)."""

    if TYPE_CHECKING:
        # Supplied by SqlStorage.
        def _tx(self, *, write: bool) -> AbstractContextManager[Any]: ...
        def _audited_tx(
            self, audit_node: str | None, audit_head: SignHead | None = None
        ) -> AbstractContextManager[Any]: ...
        def _require_schema(self, tx: Any) -> None: ...
        def _lock_clause(self) -> str: ...
        def _q(self, sql: str) -> str: ...
        def _exec(self, tx: Any, sql: str, params: Sequence[Any] = ()) -> Any: ...
        def _one(self, tx: Any, sql: str, params: Sequence[Any] = ()) -> Any: ...
        def _all(self, tx: Any, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...

    # -- inserts shared with initialise -------------------------------------------------------
    def _insert_kek(self, tx: Any, kek: KekRecord) -> None:
        # ``wrapped`` is the schema-1 column; wrappings live in sb_kek_wrappings now.
        self._exec(
            tx,
            "INSERT INTO sb_keks (kek_id, wrapped, created_at, active) VALUES (?, ?, ?, ?)",
            (kek.kek_id, b"", kek.created_at, 1 if kek.active else 0),
        )

    def _insert_provider(self, tx: Any, row: KeyProviderRow) -> None:
        self._exec(
            tx,
            "INSERT INTO sb_key_providers (name, kind, config, position, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (row.name, row.kind, row.config, row.position, row.created_at),
        )

    def _insert_wrappings(self, tx: Any, rows: Sequence[KekWrapping]) -> None:
        for w in rows:
            self._exec(
                tx, "DELETE FROM sb_kek_wrappings WHERE kek_id = ? AND provider = ?",
                (w.kek_id, w.provider),
            )  # fmt: skip
            self._exec(
                tx,
                "INSERT INTO sb_kek_wrappings (kek_id, provider, wrapped, key_ref, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (w.kek_id, w.provider, w.wrapped, w.key_ref, w.created_at),
            )

    def _require_provider(self, tx: Any, name: str) -> None:
        if self._one(tx, "SELECT 1 FROM sb_key_providers WHERE name = ?", (name,)) is None:
            raise NotFound(f"key provider {name[:100]!r} does not exist")

    def _require_keks_exist(self, tx: Any, rows: Sequence[KekWrapping]) -> None:
        for kek_id in {w.kek_id for w in rows}:
            if self._one(tx, "SELECT 1 FROM sb_keks WHERE kek_id = ?", (kek_id,)) is None:
                raise NotFound(f"key-encryption key {kek_id[:40]!r} does not exist")

    def _unwrappable_keks(self, tx: Any) -> list[str]:
        rows = self._all(
            tx,
            "SELECT k.kek_id FROM sb_keks k WHERE NOT EXISTS"
            " (SELECT 1 FROM sb_kek_wrappings w WHERE w.kek_id = k.kek_id)",
        )
        return [str(r[0]) for r in rows]

    # -- reads --------------------------------------------------------------------------------
    def list_keks(self) -> list[KekRecord]:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            rows = self._all(
                tx, "SELECT kek_id, created_at, active FROM sb_keks ORDER BY created_at, kek_id"
            )
        return [KekRecord(str(r[0]), str(r[1]), bool(r[2])) for r in rows]

    def list_key_providers(self) -> list[KeyProviderRow]:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            rows = self._all(
                tx,
                "SELECT name, kind, config, position, created_at FROM sb_key_providers"
                " ORDER BY position, name",
            )
        return [KeyProviderRow(str(r[0]), str(r[1]), str(r[2]), int(r[3]), str(r[4])) for r in rows]

    def list_kek_wrappings(self) -> list[KekWrapping]:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            rows = self._all(
                tx,
                "SELECT kek_id, provider, wrapped, key_ref, created_at FROM sb_kek_wrappings"
                " ORDER BY kek_id, provider",
            )
        return [KekWrapping(str(r[0]), str(r[1]), bytes(r[2]), str(r[3]), str(r[4])) for r in rows]

    def count_versions_by_kek(self) -> dict[str, int]:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            rows = self._all(tx, "SELECT kek_id, COUNT(*) FROM sb_versions GROUP BY kek_id")
        return {str(r[0]): int(r[1]) for r in rows}

    def versions_to_rewrap(
        self, target_kek: str, *, after: tuple[int, int] | None = None, limit: int = 1000
    ) -> list[RewrapRow]:
        """Versions whose data key is not wrapped by ``target_kek``, in (secret id,
        version) order from after ``after``: a re-wrap resumes where it stopped."""
        start = after or (-1, -1)
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            rows = self._all(
                tx,
                "SELECT v.secret_id, s.project, s.env, s.name, v.version, v.kek_id,"
                " v.wrapped_key FROM sb_versions v JOIN sb_secrets s ON s.id = v.secret_id"
                " WHERE v.kek_id <> ? AND (v.secret_id > ? OR (v.secret_id = ? AND"
                " v.version > ?)) ORDER BY v.secret_id, v.version LIMIT ?",
                (target_kek, start[0], start[0], start[1], int(limit)),
            )
        return [
            RewrapRow(int(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]), str(r[5]), bytes(r[6]))
            for r in rows
        ]

    def per_version_to_rewrap(
        self, target_kek: str, *, after: tuple[int, int] | None = None, limit: int = 1000
    ) -> list[RewrapRow]:
        """Versions whose data key a key provider wraps itself (``kek_id`` ``kms:…``) and
        not ``target_kek``, in (secret id, version) order from after ``after``: the
        per-version re-wrap (:func:`sealbox.kms_per_version.rewrap_per_version`) resumes
        where it stopped."""
        start = after or (-1, -1)
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            rows = self._all(
                tx,
                "SELECT v.secret_id, s.project, s.env, s.name, v.version, v.kek_id,"
                " v.wrapped_key FROM sb_versions v JOIN sb_secrets s ON s.id = v.secret_id"
                " WHERE v.kek_id LIKE ? AND v.kek_id <> ? AND (v.secret_id > ? OR"
                " (v.secret_id = ? AND v.version > ?)) ORDER BY v.secret_id, v.version LIMIT ?",
                (PER_VERSION_PREFIX + "%", target_kek, start[0], start[0], start[1], int(limit)),
            )
        return [
            RewrapRow(int(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]), str(r[5]), bytes(r[6]))
            for r in rows
        ]

    # -- writes -------------------------------------------------------------------------------
    def add_key_provider(
        self,
        row: KeyProviderRow,
        wrappings: Sequence[KekWrapping],
        *,
        audit: Callable[[], None] | None = None,
        audit_node: str | None = None,
        audit_head: SignHead | None = None,
    ) -> None:
        """A new provider with its wrapping of every KEK, in one transaction: a provider
        is never configured without the wrappings that make it useful."""
        with self._audited_tx(audit_node, audit_head) as tx:
            self._require_schema(tx)
            if self._one(tx, "SELECT 1 FROM sb_key_providers WHERE name = ?", (row.name,)):
                raise AlreadyExists(f"key provider {row.name!r} already exists")
            keks = {str(r[0]) for r in self._all(tx, "SELECT kek_id FROM sb_keks")}
            missing = keks - {w.kek_id for w in wrappings if w.provider == row.name}
            if missing:
                # Another operator made a KEK meanwhile: the caller wraps it and retries.
                raise Conflict(
                    f"key provider {row.name!r} would not wrap {len(missing)} key-encryption"
                    " key(s) the vault holds; try again"
                )
            self._insert_provider(tx, row)
            self._insert_wrappings(tx, wrappings)
            if audit is not None:
                audit()

    def update_key_provider(
        self,
        name: str,
        *,
        config: str | None = None,
        wrappings: Sequence[KekWrapping] = (),
        end_sessions: bool = False,
        audit: Callable[[], None] | None = None,
        audit_node: str | None = None,
        audit_head: SignHead | None = None,
    ) -> None:
        """Replace a provider's config and/or some of its wrappings (a passphrase change,
        a re-wrap under the provider's newest key); ``end_sessions`` ends the sessions
        holding its old master key."""
        with self._audited_tx(audit_node, audit_head) as tx:
            self._require_schema(tx)
            self._require_provider(tx, name)
            if any(w.provider != name for w in wrappings):
                raise Conflict("a provider's update holds another provider's wrapping")
            self._require_keks_exist(tx, wrappings)
            if config is not None:
                self._exec(
                    tx, "UPDATE sb_key_providers SET config = ? WHERE name = ?", (config, name)
                )
            self._insert_wrappings(tx, wrappings)
            if end_sessions:
                self._exec(tx, "DELETE FROM sb_sessions WHERE provider = ?", (name,))
            if audit is not None:
                audit()

    def remove_key_provider(
        self,
        name: str,
        *,
        audit: Callable[[], None] | None = None,
        audit_node: str | None = None,
        audit_head: SignHead | None = None,
    ) -> None:
        """Delete a provider and its wrappings; refused (Conflict) when some KEK would be
        left with no wrapping, so no provider could open it, or while the provider wraps
        some version's data key itself (``kek_id`` ``kms:<name>``): nothing else opens it."""
        with self._audited_tx(audit_node, audit_head) as tx:
            self._require_schema(tx)
            self._require_provider(tx, name)
            used = self._one(
                tx,
                "SELECT COUNT(*) FROM sb_versions WHERE kek_id = ?",
                (PER_VERSION_PREFIX + name,),
            )
            if used and int(used[0]):
                raise Conflict(
                    f"key provider {name!r} wraps the data keys of {int(used[0])} secret"
                    " version(s) itself (per-version KMS wrapping): nothing else can open them",
                    hint="re-wrap those versions under another key provider first, then remove"
                    " this one",
                    hint_key="kms_per_version_rewrap",
                )
            self._exec(tx, "DELETE FROM sb_kek_wrappings WHERE provider = ?", (name,))
            orphaned = self._unwrappable_keks(tx)
            if orphaned:
                raise Conflict(
                    f"key provider {name!r} is the only one that can open"
                    f" {len(orphaned)} key-encryption key(s) ({', '.join(orphaned[:3])})",
                    hint="add another key provider first (it wraps every key), then remove this"
                    " one",
                    hint_key="kms_add_first",
                )
            self._exec(tx, "DELETE FROM sb_key_providers WHERE name = ?", (name,))
            self._exec(tx, "DELETE FROM sb_sessions WHERE provider = ?", (name,))
            if audit is not None:
                audit()

    def add_kek(
        self,
        kek: KekRecord,
        wrappings: Sequence[KekWrapping],
        *,
        audit: Callable[[], None] | None = None,
        audit_node: str | None = None,
        audit_head: SignHead | None = None,
    ) -> None:
        """A new KEK version wrapped by every provider (refused otherwise: Conflict), made
        the active one when ``kek.active``."""
        with self._audited_tx(audit_node, audit_head) as tx:
            self._require_schema(tx)
            names = {str(r[0]) for r in self._all(tx, "SELECT name FROM sb_key_providers")}
            missing = names - {w.provider for w in wrappings if w.kek_id == kek.kek_id}
            if missing:
                raise Conflict(
                    f"the new key-encryption key is not wrapped by {', '.join(sorted(missing))};"
                    " try again"
                )
            if kek.active:
                self._exec(tx, "UPDATE sb_keks SET active = 0")
            self._insert_kek(tx, kek)
            self._insert_wrappings(tx, wrappings)
            if audit is not None:
                audit()

    def delete_kek(
        self,
        kek_id: str,
        *,
        audit: Callable[[], None] | None = None,
        audit_node: str | None = None,
        audit_head: SignHead | None = None,
    ) -> None:
        """Retire a KEK: refused (Conflict) while it is active or wraps any data key."""
        with self._audited_tx(audit_node, audit_head) as tx:
            self._require_schema(tx)
            row = self._one(tx, "SELECT active FROM sb_keks WHERE kek_id = ?", (kek_id,))
            if row is None:
                raise NotFound(f"key-encryption key {kek_id[:40]!r} does not exist")
            if bool(row[0]):
                raise Conflict(f"key-encryption key {kek_id!r} is the active one")
            used = self._one(tx, "SELECT COUNT(*) FROM sb_versions WHERE kek_id = ?", (kek_id,))
            if used and int(used[0]):
                raise Conflict(
                    f"key-encryption key {kek_id!r} still wraps {int(used[0])} data key(s)"
                )
            self._exec(tx, "DELETE FROM sb_kek_wrappings WHERE kek_id = ?", (kek_id,))
            self._exec(tx, "DELETE FROM sb_keks WHERE kek_id = ?", (kek_id,))
            if audit is not None:
                audit()

    def rewrap_versions(
        self,
        rows: Sequence[Rewrapped],
        *,
        audit: Callable[[int], None] | None = None,
        audit_node: str | None = None,
        audit_head: SignHead | None = None,
    ) -> int:
        """Store re-wrapped data keys in one transaction; a row whose version is no longer
        wrapped by the KEK it was read under (re-wrapped meanwhile) is left alone. Returns
        how many were stored. Ciphertexts are never touched."""
        with self._audited_tx(audit_node, audit_head) as tx:
            self._require_schema(tx)
            sql = self._q(
                "UPDATE sb_versions SET wrapped_key = ?, kek_id = ?"
                " WHERE secret_id = ? AND version = ? AND kek_id = ?"
            )
            # NOTE: one executemany (psycopg pipelines it: no round trip per row); both
            # drivers report the rows changed over all its statements as ``rowcount``
            # (sqlite3: documented; psycopg >= 3.1: the sum), which the contract checks
            # with a batch of fresh and stale rows.
            params = [(wrapped, new, sid, ver, old) for sid, ver, old, new, wrapped in rows]
            count = 0
            if params:
                # sqlite3's Connection.executemany returns its cursor; psycopg's cursor
                # returns None and keeps the count itself.
                cur = tx.executemany(sql, params)
                count = max(int((cur if cur is not None else tx).rowcount or 0), 0)
            if audit is not None:
                audit(count)
            return count

    def set_settings(
        self,
        values: dict[str, str],
        *,
        audit: Callable[[], None] | None = None,
        audit_node: str | None = None,
        audit_head: SignHead | None = None,
    ) -> None:
        """Replace settings (the audit keys, re-wrapped under a new KEK)."""
        with self._audited_tx(audit_node, audit_head) as tx:
            self._require_schema(tx)
            for key, value in values.items():
                self._exec(tx, "DELETE FROM sb_settings WHERE key = ?", (key,))
                self._exec(tx, "INSERT INTO sb_settings (key, value) VALUES (?, ?)", (key, value))
            if audit is not None:
                audit()

    # -- sessions -----------------------------------------------------------------------------
    def put_session(
        self,
        row: SessionRow,
        *,
        audit: Callable[[], None] | None = None,
        audit_node: str | None = None,
        audit_head: SignHead | None = None,
    ) -> None:
        with self._audited_tx(audit_node, audit_head) as tx:
            self._require_schema(tx)
            self._exec(
                tx,
                "INSERT INTO sb_sessions (session_id, wrapped_master, created_at, expires_at,"
                " provider) VALUES (?, ?, ?, ?, ?)",
                (row.session_id, row.wrapped_master, row.created_at, row.expires_at, row.provider),
            )
            if audit is not None:
                audit()

    def get_session(self, session_id: str) -> SessionRow | None:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            r = self._one(
                tx,
                "SELECT session_id, wrapped_master, created_at, expires_at, provider"
                " FROM sb_sessions WHERE session_id = ?",
                (session_id,),
            )
        return SessionRow(r[0], bytes(r[1]), r[2], r[3], r[4]) if r else None

    def delete_sessions(
        self,
        *,
        expired_before: str | None = None,
        audit: Callable[[int], None] | None = None,
        audit_node: str | None = None,
        audit_head: SignHead | None = None,
    ) -> int:
        with self._audited_tx(audit_node, audit_head) as tx:
            self._require_schema(tx)
            if expired_before is None:
                cur = self._exec(tx, "DELETE FROM sb_sessions")
            else:
                cur = self._exec(
                    tx, "DELETE FROM sb_sessions WHERE expires_at < ?", (expired_before,)
                )
            count = int(cur.rowcount or 0)
            if audit is not None:
                audit(count)
            return count
