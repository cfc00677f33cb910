"""The SQL of KV documents (schema 14), shared by the SQLite and PostgreSQL backends as a
part of :class:`~sealbox.storage.sql.SqlStorage` (the role
:class:`~sealbox.storage.interface.DocumentStore`).

A document's versions are numbered by compare-and-set on its row (``FOR UPDATE`` on
PostgreSQL; SQLite's write transaction holds the whole database), so two writers never
make the same version.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from sealbox.errors import Conflict
from sealbox.storage.rows import DocumentRow, DocumentVersionRow, VersionRow

_DOC_COLS = (
    "project, env, current_version, oldest_version, settings, custom, created_at, updated_at"
)
_VERSION_COLS = "version, created_at, deleted_at, destroyed, members"


class DocumentSql:
    """KV documents over the backend's transactions (mixed into SqlStorage)."""

    if TYPE_CHECKING:
        # Supplied by SqlStorage.
        def _tx(self, *, write: bool) -> AbstractContextManager[Any]: ...
        def _require_schema(self, tx: Any) -> None: ...
        def _lock_clause(self) -> str: ...
        def _exec(self, tx: Any, sql: str, params: Sequence[Any] = ()) -> Any: ...
        def _one(self, tx: Any, sql: str, params: Sequence[Any] = ()) -> Any: ...
        def _all(self, tx: Any, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...
        def _version_row(self, r: Sequence[Any], sealed: bool) -> VersionRow: ...
        def _single(self, *, audit: bool = False) -> AbstractContextManager[Any]: ...

    def get_document(
        self, project: str, env: str
    ) -> tuple[DocumentRow, list[DocumentVersionRow]] | None:
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            r = self._one(
                tx,
                f"SELECT {_DOC_COLS} FROM sb_documents WHERE project = ? AND env = ?",
                (project, env),
            )
            if r is None:
                return None
            versions = self._all(
                tx,
                f"SELECT {_VERSION_COLS} FROM sb_document_versions"
                " WHERE project = ? AND env = ? ORDER BY version",
                (project, env),
            )
        doc = DocumentRow(
            str(r[0]), str(r[1]), int(r[2]), int(r[3]), str(r[4]), str(r[5]), str(r[6]),
            str(r[7]),
        )  # fmt: skip
        return doc, [
            DocumentVersionRow(int(v[0]), str(v[1]), v[2], bool(v[3]), str(v[4])) for v in versions
        ]

    def put_document(self, row: DocumentRow) -> None:
        """Create the document or replace its settings and custom metadata (its versions
        and version counters stay as they are)."""
        with self._tx(write=True) as tx:
            self._require_schema(tx)
            if self._locked(tx, row.project, row.env) is None:
                self._insert(tx, row)
            else:
                self._exec(
                    tx,
                    "UPDATE sb_documents SET settings = ?, custom = ?, updated_at = ?"
                    " WHERE project = ? AND env = ?",
                    (row.settings, row.custom, row.updated_at, row.project, row.env),
                )

    def add_document_version(self, document: DocumentRow, version: DocumentVersionRow) -> None:
        """Append ``version``, which must be the one after the document's current version
        (Conflict otherwise: another writer got there first). ``document`` is stored
        first if the document has no record yet."""
        with self._tx(write=True) as tx:
            self._require_schema(tx)
            found = self._locked(tx, document.project, document.env)
            current = 0 if found is None else int(found[0])
            if version.version != current + 1:
                raise Conflict(
                    f"the document {document.project}/{document.env} changed meanwhile"
                    f" (version {current})"
                )
            if found is None:
                row = document._replace(
                    current_version=version.version,
                    oldest_version=document.oldest_version or version.version,
                    updated_at=version.created_at,
                )
                self._insert(tx, row)
            else:
                self._exec(
                    tx,
                    "UPDATE sb_documents SET current_version = ?, updated_at = ?,"
                    " oldest_version = CASE WHEN oldest_version = 0 THEN ? ELSE oldest_version"
                    " END WHERE project = ? AND env = ?",
                    (
                        version.version,
                        version.created_at,
                        version.version,
                        document.project,
                        document.env,
                    ),
                )
            self._exec(
                tx,
                f"INSERT INTO sb_document_versions (project, env, {_VERSION_COLS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (document.project, document.env, *version[:3], int(version.destroyed),
                 version.members),
            )  # fmt: skip

    def update_document_versions(
        self, project: str, env: str, versions: Sequence[DocumentVersionRow]
    ) -> None:
        """Store the deletion time and destroyed flag of each of ``versions``."""
        with self._tx(write=True) as tx:
            self._require_schema(tx)
            for v in versions:
                self._exec(
                    tx,
                    "UPDATE sb_document_versions SET deleted_at = ?, destroyed = ?"
                    " WHERE project = ? AND env = ? AND version = ?",
                    (v.deleted_at, int(v.destroyed), project, env, v.version),
                )

    def prune_document_versions(self, project: str, env: str, below: int) -> None:
        """Forget the versions numbered below ``below``, which becomes the oldest."""
        with self._tx(write=True) as tx:
            self._require_schema(tx)
            self._exec(
                tx,
                "DELETE FROM sb_document_versions WHERE project = ? AND env = ? AND version < ?",
                (project, env, below),
            )
            self._exec(
                tx,
                "UPDATE sb_documents SET oldest_version = ? WHERE project = ? AND env = ?"
                " AND oldest_version < ?",
                (below, project, env, below),
            )

    def delete_document(self, project: str, env: str) -> None:
        with self._tx(write=True) as tx:
            self._require_schema(tx)
            for table in ("sb_document_versions", "sb_documents"):
                self._exec(tx, f"DELETE FROM {table} WHERE project = ? AND env = ?", (project, env))

    def destroy_secret_versions(
        self, project: str, env: str, name: str, versions: Sequence[int]
    ) -> int:
        """Delete the ciphertext of these versions of a secret, except, while the secret is
        live, its current version and a rotation's pending one; how many were destroyed."""
        count = 0
        with self._tx(write=True) as tx:
            self._require_schema(tx)
            sec = self._one(
                tx,
                "SELECT id, deleted_at FROM sb_secrets WHERE project = ? AND env = ? AND name = ?"
                + self._lock_clause(),
                (project, env, name),
            )
            if sec is None:
                return 0
            for version in versions:
                keep = (
                    ""
                    if sec[1] is not None
                    else (" AND (stage IS NULL OR stage NOT IN ('current', 'pending'))")
                )
                cur = self._exec(
                    tx,
                    "DELETE FROM sb_versions WHERE secret_id = ? AND version = ?" + keep,
                    (sec[0], version),
                )
                count += int(cur.rowcount or 0)
        return count

    def read_document_members(
        self, project: str, env: str, members: Sequence[tuple[str, int]]
    ) -> list[VersionRow]:
        """These versions of the folder's secrets, deleted secrets' too (an old document
        version reads the values it had); a version that no longer exists is left out."""
        out = []
        with self._tx(write=False) as tx:
            self._require_schema(tx)
            for name, version in members:
                r = self._one(
                    tx,
                    "SELECT v.version, v.stage, v.created_at, v.created_by, v.kek_id,"
                    " v.rollback_of, v.staged_at, v.rotation_id, v.ciphertext, v.wrapped_key"
                    " FROM sb_secrets s JOIN sb_versions v ON v.secret_id = s.id"
                    " WHERE s.project = ? AND s.env = ? AND s.name = ? AND v.version = ?",
                    (project, env, name, version),
                )
                if r is not None:
                    out.append(self._version_row((project, env, name, *r), True))
        return out

    def read_document_head(
        self, project: str, env: str, setting: str
    ) -> tuple[DocumentRow | None, DocumentVersionRow | None, str | None, list[VersionRow]]:
        """What a read of a document's current version needs, in two statements and no
        explicit transaction (the KV read hot path): the record, its current version, the
        setting ``setting`` (the mounts' configuration), and the folder's live secrets'
        current versions."""
        with self._single() as tx:
            self._require_schema(tx)
            r = self._one(
                tx,
                f"SELECT {', '.join('d.' + c.strip() for c in _DOC_COLS.split(','))},"
                " v.version, v.created_at, v.deleted_at, v.destroyed, v.members,"
                " (SELECT value FROM sb_settings WHERE key = ?) FROM sb_documents d"
                " LEFT JOIN sb_document_versions v ON v.project = d.project AND v.env = d.env"
                " AND v.version = d.current_version WHERE d.project = ? AND d.env = ?",
                (setting, project, env),
            )
        if r is None:
            return None, None, None, []
        with self._single() as tx:
            rows = self._all(
                tx,
                "SELECT s.project, s.env, s.name, v.version, v.stage, v.created_at,"
                " v.created_by, v.kek_id, v.rollback_of, v.staged_at, v.rotation_id,"
                " v.ciphertext, v.wrapped_key FROM sb_secrets s JOIN sb_versions v"
                " ON v.secret_id = s.id AND v.version = s.current_version"
                " WHERE s.project = ? AND s.env = ? AND s.deleted_at IS NULL ORDER BY s.name",
                (project, env),
            )
        doc = DocumentRow(
            str(r[0]), str(r[1]), int(r[2]), int(r[3]), str(r[4]), str(r[5]), str(r[6]),
            str(r[7]),
        )  # fmt: skip
        latest = (
            None
            if r[8] is None
            else DocumentVersionRow(int(r[8]), str(r[9]), r[10], bool(r[11]), str(r[12]))
        )
        return doc, latest, r[13], [self._version_row(v, True) for v in rows]

    def _insert(self, tx: Any, row: DocumentRow) -> None:
        self._exec(
            tx,
            f"INSERT INTO sb_documents ({_DOC_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            tuple(row),
        )

    def _locked(self, tx: Any, project: str, env: str) -> Any:
        return self._one(
            tx,
            "SELECT current_version FROM sb_documents WHERE project = ? AND env = ?"
            + self._lock_clause(),
            (project, env),
        )
