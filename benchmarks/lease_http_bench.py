"""Dynamic database credentials over HTTP, sealbox beside OpenBao in one run: leases
created and revoked per second against one throw-away scram PostgreSQL cluster.

Both servers are driven by the same client code, the way hvac drives them:
``GET /v1/database/creds/<role>`` (a new database user under a lease), then
``PUT /v1/sys/leases/revoke`` with its ``lease_id`` (the user dropped). sealbox is
``sealbox server --workers 1`` on an embedded key-file vault (SQLite, audit events spooled
as by default; every issue and revoke audited); OpenBao is ``bao server -dev`` (in
memory) with its ``database`` engine and ``postgresql-database-plugin``. Both make the
user with the same creation statement. Each round runs both back to back (the order
alternates); the ratio is taken within the round. Nothing here asserts a timing.

    .venv/bin/python benchmarks/lease_http_bench.py [--leases 50] [--rounds 3]

Prints ``key=value`` lines, then one ``lease_http_bench ...`` summary line. Loopback only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]
sys.dont_write_bytecode = True

CREATION = (
    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"
)


def sealbox_server(stack: ExitStack, work: Path, cluster_url: str) -> tuple[str, str, str]:
    """A served vault with role ``bench/prod/db``: (base URL, token, role path)."""
    import server_bench

    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALBOX_")}
    env["SEALBOX_HOME"] = str(work / "home")
    sealbox = str(Path(sys.executable).parent / "sealbox")

    def run(*args: str, stdin: str | None = None, extra: dict[str, str] | None = None) -> str:
        return subprocess.run(
            [sealbox, *args], input=stdin, env={**env, **(extra or {})},
            check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip

    run("init", "--key-file", str(work / "k.key"))
    token = run(
        "server", "init", "--admin", "bench", extra={"SEALBOX_ADMIN_PASSWORD": "benchmark password"}
    )
    run("project", "create", "bench")
    run("secret", "set", "bench/prod/PG_ADMIN_URL", stdin=cluster_url)
    run(
        "creds", "role", "create", "bench/prod/db", "--backend", "postgres",
        "--admin", "bench/prod/PG_ADMIN_URL", "--creation", CREATION, "--ttl", "1h",
    )  # fmt: skip
    addr = server_bench.start_server(
        stack,
        lambda port: [sealbox, "server", "--address", f"127.0.0.1:{port}", "--workers", "1"],
        {**env, "SEALBOX_LOG_LEVEL": "warning"},
        work / "sealbox",
        span=1,
    )
    return f"http://{addr}", token, "bench/prod/db"


def bao_server(stack: ExitStack, work: Path, port: int, password: str) -> tuple[str, str, str]:
    import httpx2
    import server_bench

    bao = server_bench.find_bao()
    addr = server_bench.start_server(
        stack,
        lambda p: [bao, "server", "-dev", "-dev-root-token-id=root",
                   f"-dev-listen-address=127.0.0.1:{p}"],
        {**os.environ, "HOME": str(work)},
        work / "bao",
        span=2,
    )  # fmt: skip
    url = f"http://{addr}"
    with httpx2.Client(base_url=url, headers={"X-Vault-Token": "root"}, timeout=30) as c:
        c.post("/v1/sys/mounts/database", json={"type": "database"}).raise_for_status()
        c.post(
            "/v1/database/config/pg",
            json={
                "plugin_name": "postgresql-database-plugin",
                "connection_url": f"postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{port}/postgres",
                "username": "postgres",
                "password": password,
                "allowed_roles": "*",
                "password_authentication": "scram-sha-256",
            },
        ).raise_for_status()
        c.post(
            "/v1/database/roles/db",
            json={"db_name": "pg", "creation_statements": [CREATION], "default_ttl": "1h"},
        ).raise_for_status()
    return url, "root", "db"


def pairs_per_second(url: str, token: str, role: str, n: int) -> float:
    import httpx2

    with httpx2.Client(base_url=url, headers={"X-Vault-Token": token}, timeout=30) as c:
        start = time.perf_counter()
        for _ in range(n):
            r = c.get(f"/v1/database/creds/{role}")
            r.raise_for_status()
            lease = r.json()["lease_id"]
            c.put("/v1/sys/leases/revoke", json={"lease_id": lease}).raise_for_status()
        return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leases", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from tests.upstream_servers import scram_cluster

    with scram_cluster() as cluster, ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "s").mkdir()
        (work / "b").mkdir()
        systems = {
            "sealbox": sealbox_server(stack, work / "s", cluster.url()),
            "openbao": bao_server(stack, work / "b", cluster.port, cluster.password),
        }
        for system in systems.values():  # warm-up: connections, plugin start
            pairs_per_second(*system, 3)
        ratios, rates = [], {name: [] for name in systems}
        for i in range(args.rounds):
            order = list(systems) if i % 2 == 0 else list(reversed(systems))
            got = {name: pairs_per_second(*systems[name], args.leases) for name in order}
            for name, rate in got.items():
                rates[name].append(rate)
                print(f"round={i} system={name} issue_revoke_per_s={rate:.1f}")
            ratios.append(got["sealbox"] / got["openbao"])
    med = {name: statistics.median(v) for name, v in rates.items()}
    print(
        f"lease_http_bench leases={args.leases} rounds={args.rounds}"
        f" sealbox={med['sealbox']:.1f}/s openbao={med['openbao']:.1f}/s"
        f" ratio_median={statistics.median(ratios):.2f}"
        f" ratio_range={min(ratios):.2f}-{max(ratios):.2f}"
    )


if __name__ == "__main__":
    main()
