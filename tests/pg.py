"""A throw-away PostgreSQL database per test session on the machine's server."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

ADMIN_DSN = os.environ.get("SEALBOX_TEST_PG", "host=127.0.0.1 port=5432 dbname=test user=postgres")


@contextmanager
def throwaway_database() -> Iterator[str]:
    """Create a database, yield its DSN, drop it afterwards."""
    import psycopg

    name = f"sealbox_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
