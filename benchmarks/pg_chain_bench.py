"""Benchmark: writers and readers sharing one PostgreSQL audit chain (issue 17).

Every embedded process (CLI, SDK) appends to the node's chain (``local`` by default), so
on a shared PostgreSQL vault a `secret set` and a concurrent `secret get` take positions on
the same chain. This harness starts ``--writers`` processes writing their own secret and
``--readers`` processes reading, each with its own storage, for ``--seconds``; then it
counts the writes that succeeded, the errors by code, checks that every secret's versions
are contiguous and runs `sealbox audit verify`.

- **loop**: each process opens one vault and loops (``Vault.set`` / ``Vault.get``).
- **cli**: each operation is a `sealbox secret set` / `secret get` process (what a shell
  loop does; slower, fewer collisions per second).

    python benchmarks/pg_chain_bench.py [--mode loop|cli] [--writers 1] [--readers 1]
        [--seconds 10]

Needs the machine's PostgreSQL (``SEALBOX_TEST_PG``, as tests/pg.py); the database is a
throw-away one, dropped afterwards. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ADMIN_DSN = os.environ.get("SEALBOX_TEST_PG", "host=127.0.0.1 port=5432 dbname=test user=postgres")

CHILD = r"""
import json, sys, time, io
role, home, seconds, index = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
from sealbox import factory
from sealbox.errors import SealboxError
from sealbox.model import SecretRef
from sealbox.model import SecretValue
vault = factory.open_vault(home=__import__("pathlib").Path(home))
ref = SecretRef("bench", "dev", f"KEY_{index if role == 'w' else 0}")
ok, errors, n = 0, {}, 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    n += 1
    try:
        if role == "w":
            vault.set(ref, SecretValue(f"value-{index}-{n}".encode()))
        else:
            vault.get(ref, reveal=True)
        ok += 1
    except SealboxError as exc:
        key = f"{exc.code}: {exc}"[:120]
        errors[key] = errors.get(key, 0) + 1
vault.close()
print(json.dumps({"role": role, "ok": ok, "errors": errors}))
"""

CLI_CHILD = r"""
import json, subprocess, sys, time
role, sealbox, seconds, index = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
name = f"bench/dev/KEY_{index if role == 'w' else 0}"
ok, errors, n = 0, {}, 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    n += 1
    if role == "w":
        p = subprocess.run([sealbox, "secret", "set", name], input=f"v-{index}-{n}".encode(),
                           capture_output=True)
    else:
        p = subprocess.run([sealbox, "secret", "get", name], capture_output=True)
    if p.returncode == 0:
        ok += 1
    else:
        lines = p.stderr.decode(errors="replace").strip().splitlines()
        key = lines[0][:120] if lines else str(p.returncode)
        errors[key] = errors.get(key, 0) + 1
print(json.dumps({"role": role, "ok": ok, "errors": errors}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("loop", "cli"), default="loop")
    parser.add_argument("--writers", type=int, default=1)
    parser.add_argument("--readers", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    sys.dont_write_bytecode = True
    import psycopg

    sealbox = str(Path(sys.executable).with_name("sealbox"))
    name = f"sealbox_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = f"postgresql://postgres@127.0.0.1:5432/{name}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp) / "home"
            env = {k: v for k, v in os.environ.items() if not k.startswith("SEALBOX_")}
            env["SEALBOX_HOME"] = str(home)

            def run(*cmd: str, stdin: bytes = b"") -> str:
                return subprocess.run(
                    [sealbox, *cmd], env=env, input=stdin, capture_output=True, check=True
                ).stdout.decode()

            run("init", "--storage", dsn, "--key-file", str(Path(tmp) / "k.key"))
            run("project", "create", "bench")
            for i in range(max(args.writers, 1)):
                run("secret", "set", f"bench/dev/KEY_{i}", stdin=b"first")
            children = []
            start = time.perf_counter()
            for role, count in (("w", args.writers), ("r", args.readers)):
                for i in range(count):
                    if args.mode == "loop":
                        argv = [sys.executable, "-c", CHILD, role, str(home)]
                    else:
                        argv = [sys.executable, "-c", CLI_CHILD, role, sealbox]
                    argv += [str(args.seconds), str(i)]
                    children.append(
                        subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
                    )
            results = [json.loads(c.communicate()[0]) for c in children]
            elapsed = time.perf_counter() - start
            writes = [r for r in results if r["role"] == "w"]
            reads = [r for r in results if r["role"] == "r"]
            w_ok = sum(r["ok"] for r in writes)
            w_err = sum(sum(r["errors"].values()) for r in writes)
            r_ok = sum(r["ok"] for r in reads)
            r_err = sum(sum(r["errors"].values()) for r in reads)
            errors: dict[str, int] = {}
            for r in results:
                for k, v in r["errors"].items():
                    errors[k] = errors.get(k, 0) + v
            contiguous = True
            with psycopg.connect(dsn) as conn:
                for _secret, versions in conn.execute(
                    "SELECT secret_id, array_agg(version ORDER BY version) FROM sb_versions"
                    " GROUP BY secret_id"
                ):
                    contiguous &= list(versions) == list(range(1, len(versions) + 1))
            verify = subprocess.run(
                [sealbox, "audit", "verify"], env=env, capture_output=True, text=True
            )
            print(
                f"mode={args.mode} writers={args.writers} readers={args.readers}"
                f" seconds={args.seconds:g}"
            )
            print(
                f"writes ok={w_ok} failed={w_err} ({w_ok / max(w_ok + w_err, 1):.0%})"
                f" writes/s={w_ok / elapsed:.1f}"
            )
            print(f"reads ok={r_ok} failed={r_err} reads/s={r_ok / elapsed:.1f}")
            for k, v in sorted(errors.items(), key=lambda kv: -kv[1]):
                print(f"  error x{v}: {k}")
            print(f"versions contiguous={contiguous}")
            print(f"audit verify exit={verify.returncode}: {verify.stdout.strip()[:200]}")
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
