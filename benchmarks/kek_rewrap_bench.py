"""KEK rotation: ``sealbox kms rotate`` re-wrapping 100,000 versions with the local provider,
on SQLite and on PostgreSQL (budget: ≤ 60 s on this 2-core machine, DESIGN.md).

The vault is a key-file vault. Its first ``--secrets`` secrets are written through the
vault (audited); their further versions, up to ``--versions`` in all, are added in bulk
straight into ``sb_versions``, each sealed by the vault's own envelope under the vault's
KEK ring with its own data key and context (exactly what storage holds after as many
writes; only their write events are missing, which the re-wrap does not read). What is
timed is the whole ``sealbox kms rotate --json`` process (start-up, opening the key file,
a new KEK, every data key unwrapped and wrapped again in batches of ``--batch``, one
transaction each, the audit keys), with bytecode as installed. Afterwards a sample of
versions is read back through the vault and compared. Nothing here asserts a timing.

    .venv/bin/python benchmarks/kek_rewrap_bench.py [--versions 100000] [--secrets 1000]
        [--batch 2000] [--backend sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_common import bytecode_env  # noqa: E402

from sealbox import factory  # noqa: E402
from sealbox.crypto import envelope  # noqa: E402
from sealbox.kms.master import UnlockMethod  # noqa: E402
from sealbox.model import SecretRef, SecretValue  # noqa: E402

PG_ADMIN = "host=127.0.0.1 port=5432 dbname=test user=postgres"
SEALBOX = Path(sys.executable).with_name("sealbox")


@contextmanager
def pg_database() -> Iterator[str]:
    import uuid

    import psycopg

    name = f"sealbox_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _ref(i: int) -> SecretRef:
    return SecretRef("bench", "prod", f"S{i:05d}")


def populate(home: Path, key: Path, url: str | None, secrets: int, versions: int) -> None:
    factory.init_vault(home=home, storage=url, method=UnlockMethod.KEYFILE, key_file=key, env={})
    vault = factory.open_vault(home=home, env={})
    try:
        vault.create_project("bench")
        for i in range(secrets):
            vault.set(_ref(i), SecretValue(f"value-{i}-1"))
        ring = vault._key_provider()  # the bench seals as the vault does
        kek_id = ring.current_key_id()
        vault_id = vault.vault_id
        ids = _secret_ids(home, url)
        per = versions // secrets
        rows = []
        now = "2026-01-01T00:00:00+00:00"
        for i in range(secrets):
            for v in range(2, per + 1):
                ref = _ref(i)
                ctx = envelope.version_context(vault_id, ref.project, ref.env, ref.name, v)
                sealed = envelope.seal(f"value-{i}-{v}".encode(), ring, kek_id, ctx)
                rows.append((ids[ref.name], v, now, "bench", kek_id, sealed.ciphertext,
                             sealed.wrapped_key))  # fmt: skip
        _insert(home, url, rows)
    finally:
        vault.close()


def _secret_ids(home: Path, url: str | None) -> dict[str, int]:
    sql = "SELECT name, id FROM sb_secrets"
    if url is None:
        import sqlite3

        with sqlite3.connect(home / "vault.db") as conn:
            return dict(conn.execute(sql).fetchall())
    import psycopg

    with psycopg.connect(url) as conn:
        return dict(conn.execute(sql).fetchall())  # type: ignore[arg-type]


def _insert(home: Path, url: str | None, rows: list[tuple[object, ...]]) -> None:
    sql = (
        "INSERT INTO sb_versions (secret_id, version, stage, created_at, created_by, kek_id,"
        " ciphertext, wrapped_key) VALUES ({p}, {p}, 'previous', {p}, {p}, {p}, {p}, {p})"
    )
    if url is None:
        import sqlite3

        with sqlite3.connect(home / "vault.db") as conn:
            conn.executemany(sql.format(p="?"), rows)
        return
    import psycopg

    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.executemany(sql.format(p="%s"), rows)


def run(backend: str, a: argparse.Namespace) -> dict[str, object]:
    database: AbstractContextManager[str | None] = (
        nullcontext(None) if backend == "sqlite" else pg_database()
    )
    with tempfile.TemporaryDirectory(prefix="kekbench-") as tmp, database as url:
        home, key = Path(tmp) / "home", Path(tmp) / "master.key"
        t = time.perf_counter()
        populate(home, key, url, a.secrets, a.versions)
        built = time.perf_counter() - t
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEALBOX_")}
        env = bytecode_env({**env, "SEALBOX_HOME": str(home)}, Path(tmp) / "pycache")
        # Untimed: fills the bytecode cache (as an installed sealbox would have it).
        subprocess.run([str(SEALBOX), "kms", "list"], env=env, capture_output=True, check=True)
        t = time.perf_counter()
        r = subprocess.run(
            [str(SEALBOX), "kms", "rotate", "--json", "--batch", str(a.batch)],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        wall = time.perf_counter() - t
        if r.returncode != 0:
            raise SystemExit(f"bench error=rotate_failed stderr={r.stderr[-400:]!r}")
        done = json.loads(r.stdout)
        vault = factory.open_vault(home=home, env={})
        try:
            per = a.versions // a.secrets
            for i in range(0, a.secrets, max(1, a.secrets // 50)):
                for v in (1, per // 2, per):
                    got = vault.get(_ref(i), version=max(v, 1)).value.reveal()
                    assert got == f"value-{i}-{max(v, 1)}", (i, v)
        finally:
            vault.close()
    return {
        "backend": backend,
        "versions": done["rewrapped"],
        "batch": a.batch,
        "rotate_wall_s": round(wall, 2),
        "per_s": round(done["rewrapped"] / wall),
        "populate_s": round(built, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--versions", type=int, default=100_000)
    ap.add_argument("--secrets", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    a = ap.parse_args()
    backends = ["sqlite", "postgres"] if a.backend == "both" else [a.backend]
    for backend in backends:
        result = run(backend, a)
        print(" ".join(f"{k}={v}" for k, v in result.items()), flush=True)


if __name__ == "__main__":
    main()
