"""Real upstream databases for rotation and dynamic-credential tests.

:func:`scram_cluster` starts a throw-away PostgreSQL cluster (``initdb`` on a free port,
``scram-sha-256`` password authentication for every connection), so a password that a
rotation replaced really stops working. ``initdb`` refuses root: as root it and
``pg_ctl`` run as ``nobody`` via ``runuser``. :func:`mariadb_database` gives a database
on the machine's MariaDB (127.0.0.1:3306, root, no password).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}


class Cluster(NamedTuple):
    host: str
    port: int
    superuser: str
    password: str
    data: Path

    def url(
        self, user: str | None = None, password: str | None = None, db: str = "postgres"
    ) -> str:
        return (
            f"postgresql://{user or self.superuser}:{password or self.password}"
            f"@{self.host}:{self.port}/{db}"
        )

    def dsn(
        self, user: str | None = None, password: str | None = None, db: str = "postgres"
    ) -> str:
        return (
            f"host={self.host} port={self.port} dbname={db} user={user or self.superuser}"
            f" password={password or self.password} connect_timeout=5"
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_owner(args: list[str]) -> list[str]:
    return ["runuser", "-u", "nobody", "--", *args] if os.geteuid() == 0 else args


def postgres_bin(tool: str) -> str:
    """``initdb`` / ``pg_ctl``: on PATH, else Debian's versioned directory."""
    found = shutil.which(tool)
    if found:
        return found
    for base in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (base / tool).exists():
            return str(base / tool)
    raise RuntimeError(f"{tool} not found: install PostgreSQL's server package")


@contextmanager
def scram_cluster() -> Iterator[Cluster]:
    """A new PostgreSQL cluster on 127.0.0.1 with scram password authentication; stopped
    and removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="sealbox-pg-"))
    password = secrets.token_urlsafe(18)
    data = root / "data"
    pwfile = root / "pw"
    pwfile.write_text(password)
    if os.geteuid() == 0:
        shutil.chown(root, "nobody")
        shutil.chown(pwfile, "nobody")
    root.chmod(0o700)
    port = _free_port()
    try:
        subprocess.run(
            _as_owner(
                [
                    postgres_bin("initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
                    "-E",
                    "UTF8",
                    "--no-instructions",
                ]
            ),
            check=True,
            capture_output=True,
        )
        subprocess.run(
            _as_owner(
                [
                    postgres_bin("pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(root / "log"),
                    "-w",
                    "-o",
                    f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
        yield Cluster("127.0.0.1", port, "postgres", password, data)
    finally:
        subprocess.run(
            _as_owner([postgres_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def mariadb_database() -> Iterator[str]:
    """A new database on the machine's MariaDB; dropped afterwards. Yields its name."""
    import pymysql

    name = f"sealbox_test_{uuid.uuid4().hex[:12]}"
    conn = pymysql.connect(**MARIADB, autocommit=True)  # type: ignore[arg-type]
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
        yield name
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()
