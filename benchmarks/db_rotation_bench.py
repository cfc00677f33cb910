"""Database password rotations per second: the ``postgres`` rotator against a throw-away
scram PostgreSQL cluster, the ``mysql`` rotator against the machine's MariaDB, each step
(create, set, test, finish) timed, single user and alternating users.

The rotators only, driven as the engine drives them (a minimal RotationContext).

``--only engine`` (also run by default) measures whole rotations through the engine,
side by side with OpenBao in the same run, on one scram cluster: N x
``vault.rotations.start`` (embedded key-file vault on SQLite, ``postgres`` rotator,
single user: each a rotation record, a pending version, four recorded steps with audit
events, the admin secret's audited read, a promotion) against N x ``POST
/v1/database/rotate-role/app`` of an OpenBao dev server's ``database`` engine (static
role, ``postgresql-database-plugin``, scram). **sealbox's rotation includes the test
login** (a new connection authenticating with the new password); **OpenBao's does not**
(it changes the password and stores it). Rounds alternate the order. Nothing here
asserts a timing.

    .venv/bin/python benchmarks/db_rotation_bench.py [--rotations 100] [--rounds 3]
        [--only postgres|mysql|engine]
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


def engine_rotations(cluster_url: str, role: str, n: int, tmp: Path) -> float:
    """n single-user rotations through ``vault.rotations.start``; rotations per second."""
    import os

    from sealbox import factory
    from sealbox.kms.master import UnlockMethod
    from sealbox.model import RotationState

    home = tmp / "home"
    os.environ["SEALBOX_HOME"] = str(home)
    factory.init_vault(home=home, method=UnlockMethod.KEYFILE, key_file=tmp / "k.key")
    vault = factory.open_vault(home=home)
    try:
        vault.create_project("bench")
        ref = SecretRef("bench", "prod", "DB")
        vault.set(SecretRef("bench", "prod", "ADMIN"), SecretValue(cluster_url))
        vault.set(ref, SecretValue("bench-start-pw"))
        vault.rotations.configure(
            ref, "postgres", options={"admin": "bench/prod/ADMIN", "username": role}
        )
        start = time.perf_counter()
        for _ in range(n):
            info = vault.rotations.start(ref)
            if info.state != RotationState.SUCCEEDED:
                raise SystemExit(f"db_rotation_bench error=rotation_{info.state} {info.error}")
        return n / (time.perf_counter() - start)
    finally:
        vault.close()


def bao_rotations(bao: str, port: int, password: str, role: str, n: int) -> float:
    """n ``rotate-role`` calls on an OpenBao dev server's static role; rotations per second."""
    import json as _json
    import os
    import subprocess
    import urllib.request

    from sealbox.server.testing import free_port

    bao_port = free_port()
    token = "bench-root-token"
    proc = subprocess.Popen(
        [bao, "server", "-dev", f"-dev-root-token-id={token}",
         f"-dev-listen-address=127.0.0.1:{bao_port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "HOME": os.environ.get("HOME", "/tmp")},
    )  # fmt: skip
    base = f"http://127.0.0.1:{bao_port}"

    def call(method: str, path: str, body: dict[str, object] | None = None) -> None:
        data = _json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            base + path, data=data, method=method, headers={"X-Vault-Token": token}
        )
        with urllib.request.urlopen(req, timeout=30) as response:
            response.read()

    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                call("GET", "/v1/sys/health")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("db_rotation_bench error=bao_not_ready") from None
                time.sleep(0.1)
        call("POST", "/v1/sys/mounts/database", {"type": "database"})
        call("POST", "/v1/database/config/pg", {
            "plugin_name": "postgresql-database-plugin",
            "connection_url": f"postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{port}/postgres",
            "username": "postgres", "password": password,
            "password_authentication": "scram-sha-256", "allowed_roles": "*",
        })  # fmt: skip
        call("POST", "/v1/database/static-roles/app", {
            "db_name": "pg", "username": role, "rotation_period": "24h",
        })  # fmt: skip
        call("POST", "/v1/database/rotate-role/app")  # warm: the plugin's connection
        start = time.perf_counter()
        for _ in range(n):
            call("POST", "/v1/database/rotate-role/app")
        return n / (time.perf_counter() - start)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def bench_engine(n: int, rounds: int) -> None:
    import tempfile

    import psycopg
    from benchmarks.server_bench import find_bao
    from tests.upstream_servers import scram_cluster

    bao = find_bao()
    with scram_cluster() as c:
        with psycopg.connect(c.dsn(), autocommit=True) as conn:
            conn.execute("CREATE ROLE bench LOGIN PASSWORD 'bench-start-pw'")
            conn.execute("CREATE ROLE bench_bao LOGIN PASSWORD 'bench-start-pw'")
        ratios: list[float] = []
        for r in range(rounds):
            order = ("sealbox", "bao") if r % 2 == 0 else ("bao", "sealbox")
            rates: dict[str, float] = {}
            for who in order:
                if who == "sealbox":
                    with psycopg.connect(c.dsn(), autocommit=True) as conn:
                        conn.execute("ALTER ROLE bench PASSWORD 'bench-start-pw'")
                    with tempfile.TemporaryDirectory() as tmp:
                        rates[who] = engine_rotations(c.url(), "bench", n, Path(tmp))
                else:
                    rates[who] = bao_rotations(bao, c.port, c.password, "bench_bao", n)
            ratio = rates["sealbox"] / rates["bao"]
            ratios.append(ratio)
            print(
                f"round {r + 1}: sealbox engine {rates['sealbox']:6.1f} rotations/s"
                f" (with test login)   OpenBao rotate-role {rates['bao']:6.1f} rotations/s"
                f" (no test login)   sealbox / OpenBao {ratio:.2f}"
            )
        print(
            f"sealbox / OpenBao: median {statistics.median(ratios):.2f}"
            f" ({min(ratios):.2f}-{max(ratios):.2f}) over {rounds} rounds of {n}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rotations", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=("postgres", "mysql", "engine"))
    args = parser.parse_args()
    if args.only in (None, "postgres"):
        bench_postgres(args.rotations)
    if args.only in (None, "mysql"):
        bench_mysql(args.rotations)
    if args.only in (None, "engine"):
        bench_engine(args.rotations, args.rounds)


if __name__ == "__main__":
    main()
