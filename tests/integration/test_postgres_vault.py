"""`sealbox init --storage postgresql://…` end to end through the CLI, and outages."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.pg import throwaway_database

from sealbox.cli.main import main

pytestmark = pytest.mark.integration

CANARY = "pg-canary-5d1e0c77"


def test_postgres_vault_round_trip(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with throwaway_database() as dsn:
        assert main(["init", "--storage", dsn, "--key-file", str(tmp_path / "k.key")]) == 0
        assert main(["project", "create", "payments"]) == 0
        monkeypatch.setattr("sys.stdin", _stdin(CANARY))
        assert main(["secret", "set", "payments/prod/DB_PASSWORD"]) == 0
        capfd.readouterr()
        assert main(["secret", "get", "payments/prod/DB_PASSWORD"]) == 0
        assert capfd.readouterr().out == CANARY
        assert main(["secret", "get", "payments/dev/DB_PASSWORD"]) == 3

        import psycopg

        with psycopg.connect(dsn) as conn:
            for table in ("sb_versions", "sb_audit", "sb_secrets", "sb_settings", "sb_keks"):
                rows = conn.execute(f"SELECT * FROM {table}").fetchall()
                assert CANARY.encode() not in repr(rows).encode(), table
    # The database is gone now: a clear error, exit 8, and no traceback.
    capfd.readouterr()
    assert main(["secret", "get", "payments/prod/DB_PASSWORD"]) == 8
    err = capfd.readouterr().err
    assert "PostgreSQL" in err and "Traceback" not in err


def test_postgres_dsn_password_is_not_shown(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    dsn = "postgresql://someone:very-secret-pw@127.0.0.1:1/nowhere"  # sealbox:allow
    assert main(["init", "--storage", dsn, "--key-file", str(tmp_path / "k.key")]) == 8
    err = capfd.readouterr().err
    assert "very-secret-pw" not in err
    assert "cannot connect" in err


def _stdin(text: str):  # type: ignore[no-untyped-def]
    import io

    class Stdin(io.TextIOWrapper):
        def isatty(self) -> bool:
            return False

    return Stdin(io.BytesIO(text.encode()))


def test_postgres_audit_commits_do_not_wait_for_the_wal_flush_and_secret_writes_do(
    tmp_path: Path,
) -> None:
    """An audit batch commits with synchronous_commit off (the fsync was most of a server
    read); a secret write keeps the database's own setting."""
    from sealbox.storage.postgres import PostgresStorage

    with throwaway_database() as dsn:
        assert main(["init", "--storage", dsn, "--key-file", str(tmp_path / "k.key")]) == 0
        storage = PostgresStorage(dsn)
        try:
            with storage._tx(write=True) as tx:
                default = tx.execute("SHOW synchronous_commit").fetchone()[0]
            assert default != "off"  # the server's setting (on, or stronger)
            for wait in (True, False):
                with storage.audit_batch("n", wait=wait):
                    tx = storage._audit_batch_tx
                    assert tx is not None
                    assert tx.execute("SHOW synchronous_commit").fetchone()[0] == "off"
            with storage._tx(write=True) as tx:  # it ended with its transaction
                assert tx.execute("SHOW synchronous_commit").fetchone()[0] == default
        finally:
            storage.close()
