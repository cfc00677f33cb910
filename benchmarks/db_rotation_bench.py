"""Database password rotations per second: the ``postgres`` rotator against a throw-away
scram PostgreSQL cluster, the ``mysql`` rotator against the machine's MariaDB, each step
(create, set, test, finish) timed, single user and alternating users.

The rotators only, driven as the engine drives them (a minimal RotationContext): the
vault's own cost per rotation (records before and after each step, the pending version,
the promotion) is the engine's benchmark. Nothing here asserts a timing.

    .venv/bin/python benchmarks/db_rotation_bench.py [--rotations 100] [--only postgres]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Mapping, MutableMapping
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sealbox.errors import InvalidInput  # noqa: E402
from sealbox.model import SecretRef, SecretValue  # noqa: E402
from sealbox.rotation.database import DatabaseRotator  # noqa: E402
from sealbox.rotation.mysql import MysqlRotator  # noqa: E402
from sealbox.rotation.postgres import PostgresRotator  # noqa: E402

ADMIN = "bench/prod/ADMIN"
STEPS = ("create", "set", "test", "finish")


class Ctx:
    def __init__(
        self, options: Mapping[str, str], admin: SecretValue, current: SecretValue
    ) -> None:
        self.ref = SecretRef("bench", "prod", "DB")
        self.rotation_id = uuid.uuid4().hex
        self.options = options
        self.dry_run = False
        self.current: SecretValue | None = current
        self.previous: SecretValue | None = None
        self.pending_value: SecretValue | None = None
        self.state: MutableMapping[str, str] = {}
        self._admin = admin

    @property
    def pending(self) -> SecretValue:
        if self.pending_value is None:
            raise InvalidInput("no pending value yet")
        return self.pending_value

    def secret(self, path: str) -> SecretValue:
        return self._admin

    def note(self, message: str) -> None:
        pass


def run(
    rotator: DatabaseRotator,
    options: dict[str, str],
    admin: SecretValue,
    current: SecretValue,
    n: int,
) -> tuple[float, dict[str, float]]:
    """n rotations; (rotations per second, median ms per step)."""
    rotator.check(options)
    times: dict[str, list[float]] = {s: [] for s in STEPS}
    start = time.perf_counter()
    for _ in range(n):
        ctx = Ctx(options, admin, current)
        t = time.perf_counter()
        ctx.pending_value = rotator.create(ctx)
        times["create"].append(time.perf_counter() - t)
        for step in ("set", "test", "finish"):
            t = time.perf_counter()
            getattr(rotator, step)(ctx)
            times[step].append(time.perf_counter() - t)
        current = ctx.pending
    total = time.perf_counter() - start
    return n / total, {s: statistics.median(v) * 1000 for s, v in times.items()}


def show(label: str, rate: float, steps: dict[str, float]) -> None:
    parts = "  ".join(f"{s} {steps[s]:.1f}" for s in STEPS)
    print(f"{label:34} {rate:7.1f} rotations/s   median ms: {parts}")


def bench_postgres(n: int) -> None:
    import psycopg
    from tests.upstream_servers import scram_cluster

    with scram_cluster() as c:
        with psycopg.connect(c.dsn(), autocommit=True) as conn:
            conn.execute("CREATE ROLE bench LOGIN PASSWORD 'bench-start-pw'")
        admin = SecretValue(c.url())
        single = {"admin": ADMIN, "username": "bench"}
        show(
            "postgres single (scram)",
            *run(PostgresRotator(), single, admin, SecretValue("bench-start-pw"), n),
        )
        alt = {**single, "strategy": "alternating"}
        start = SecretValue(c.url("bench", "bench-start-pw"))
        # The first rotation is the clone's creation; measured with the rest.
        show("postgres alternating (scram)", *run(PostgresRotator(), alt, admin, start, n))


def bench_mysql(n: int) -> None:
    import pymysql
    from tests.upstream_servers import MARIADB, mariadb_database

    with mariadb_database() as db:
        conn = pymysql.connect(**MARIADB, autocommit=True)  # type: ignore[arg-type]
        user = f"bench_{uuid.uuid4().hex[:6]}"
        try:
            with conn.cursor() as cur:
                cur.execute("CREATE USER %s@'%%' IDENTIFIED BY 'bench-start-pw'", (user,))
                cur.execute(f"GRANT SELECT ON `{db}`.* TO %s@'%%'", (user,))
            admin = SecretValue(f"mysql://root:@127.0.0.1:3306/{db}")
            single = {"admin": ADMIN, "username": user}
            show(
                "mysql single (MariaDB)",
                *run(MysqlRotator(), single, admin, SecretValue("bench-start-pw"), n),
            )
            alt = {**single, "strategy": "alternating"}
            start = SecretValue(f"mysql://{user}:bench-start-pw@127.0.0.1:3306/{db}")
            show("mysql alternating (MariaDB)", *run(MysqlRotator(), alt, admin, start, n))
        finally:
            with conn.cursor() as cur:
                cur.execute("DROP USER IF EXISTS %s@'%%'", (user,))
                cur.execute("DROP USER IF EXISTS %s@'%%'", (f"{user}_clone",))
            conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rotations", type=int, default=100)
    parser.add_argument("--only", choices=("postgres", "mysql"))
    args = parser.parse_args()
    if args.only in (None, "postgres"):
        bench_postgres(args.rotations)
    if args.only in (None, "mysql"):
        bench_mysql(args.rotations)


if __name__ == "__main__":
    main()
