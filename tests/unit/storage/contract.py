"""Values and helpers shared by the storage contract suite (one file per role protocol
of :mod:`sealbox.storage.interface`; the backends are the fixtures in conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sealbox import stages
from sealbox.storage.interface import Storage
from sealbox.storage.rows import (
    AuditRow,
    KekRecord,
    KekWrapping,
    KeyProviderRow,
    SealedRow,
    StagePlan,
)

NOW = "2026-01-01T00:00:00+00:00"
KEK = KekRecord("kek1", NOW, True)
PROVIDER = KeyProviderRow("local", "local", '{"method": "keyfile", "kdf": null}', 0, NOW)
WRAPPING = KekWrapping("kek1", "local", b"wrapped-kek", "master key (keyfile)", NOW)
#: initialise()'s key provider and its wrapping of KEK.
KEYS = {"provider": PROVIDER, "wrapping": WRAPPING}


#: What each migration after 8 creates, undone (newest first, :func:`undo_after`) for the
#: tests of migrations from before it. A new migration adds its entry.
UNDO: dict[int, tuple[str, ...]] = {
    9: (
        "DROP TABLE sb_rotation_configs",
        "DROP TABLE sb_rotations",
        "DROP INDEX sb_versions_rotation",
        "ALTER TABLE sb_versions DROP COLUMN rotation_id",
        "ALTER TABLE sb_versions DROP COLUMN staged_at",
    ),
    10: ("DROP TABLE sb_leases", "DROP TABLE sb_cred_roles"),
    11: ("DROP TABLE sb_locks",),
    12: (
        "INSERT INTO sb_settings (key, value) SELECT 'unlock_method', 'keyfile'"
        " WHERE NOT EXISTS (SELECT 1 FROM sb_settings WHERE key = 'unlock_method')",
        "UPDATE sb_keks SET wrapped = (SELECT w.wrapped FROM sb_kek_wrappings w"
        " WHERE w.kek_id = sb_keks.kek_id AND w.provider = 'local')",
        "DROP TABLE sb_kek_wrappings",
        "DROP TABLE sb_key_providers",
        "ALTER TABLE sb_sessions DROP COLUMN provider",
    ),
    13: ("ALTER TABLE sb_identities DROP COLUMN settings",),
    14: ("DROP TABLE sb_document_versions", "DROP TABLE sb_documents"),
}


def undo_after(tx: Any, version: int) -> None:
    """Undo every migration after ``version`` (8 or later), newest first."""
    for v in sorted((v for v in UNDO if v > version), reverse=True):
        for statement in UNDO[v]:
            tx.execute(statement)


def sealed(version: int) -> SealedRow:
    return SealedRow(f"ct-{version}".encode(), f"wk-{version}".encode(), "kek1")


def write(store: Storage, name: str = "DB", plan: StagePlan | None = None, **kw: object) -> int:
    """A version written as the core writes one (``stages.new_current()``) unless told."""
    return store.write_version(
        "payments",
        "dev",
        name,
        sealed,
        now=NOW,
        actor="t",
        plan=plan if plan is not None else stages.new_current(),
        **kw,  # type: ignore[arg-type]
    )


def stage_map(store: Storage, name: str = "DB") -> dict[int, str | None]:
    return {v.version: v.stage for v in store.history("payments", "dev", name)}


def audit_row(node: str, seq: int, prev: str, hash_: str, path: str = "p/e/N") -> AuditRow:
    return AuditRow(NOW, "me", "cli", "read", path, 1, "allowed", "", node, seq, "{}", prev,
                    hash_, "sha256")  # fmt: skip


def reopen(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Storage:
    """Another connection (another process's view) to the same store."""
    if kind == "sqlite":
        from sealbox.storage.sqlite import SqliteStorage

        return SqliteStorage(tmp_path / "vault.db")
    from sealbox.storage.postgres import PostgresStorage

    return PostgresStorage(request.getfixturevalue("pg_dsn"))
