"""The backends every storage contract test runs against: SQLite, and PostgreSQL
(``integration``: the machine's server, a throw-away database per module)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.pg import throwaway_database
from tests.unit.storage.contract import KEK, KEYS, NOW

from sealbox.storage.interface import Storage


@pytest.fixture(scope="module")
def pg_dsn() -> Iterator[str]:
    try:
        with throwaway_database() as dsn:
            yield dsn
    except Exception as exc:  # pragma: no cover - only without a server
        pytest.skip(f"PostgreSQL unavailable: {type(exc).__name__}")


def _make(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Storage:
    if kind == "sqlite":
        from sealbox.storage.sqlite import SqliteStorage

        return SqliteStorage(tmp_path / "vault.db", create=True)
    from sealbox.storage.postgres import PostgresStorage

    dsn = request.getfixturevalue("pg_dsn")
    store = PostgresStorage(dsn)
    # Each test starts from an empty database.
    with store._tx(write=True) as tx:
        for (table,) in tx.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'sb_%'"
        ).fetchall():
            tx.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    return store


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.integration),
]


@pytest.fixture(params=BACKENDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def raw(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Storage]:
    store = _make(kind, tmp_path, request)
    yield store
    store.close()


@pytest.fixture
def store(raw: Storage) -> Storage:
    raw.initialise("vault-1", {"unlock_method": "keyfile"}, KEK, NOW, **KEYS)
    raw.create_project("payments", NOW)
    for env in ("dev", "prod"):
        raw.create_env("payments", env, NOW)
    return raw
