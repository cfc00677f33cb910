"""Benchmark: dynamic-credential leases created and revoked per second against PostgreSQL.

A throw-away scram PostgreSQL cluster (``tests/upstream_servers.py``) is the upstream
database; the vault is an embedded key-file vault on SQLite, or with ``--storage pg`` on
the machine's PostgreSQL (``tests/pg.py``). Each round issues ``--leases`` leases (a new
user each: one admin login, the creation statements in a transaction) and then revokes
them (one admin login each: NOLOGIN, end sessions, DROP OWNED, DROP ROLE). Prints the
median rate of each phase over ``--rounds`` rounds. Nothing here asserts a timing.

    python benchmarks/lease_bench.py [--leases 50] [--rounds 3] [--storage sqlite|pg]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.dont_write_bytecode = True

CREATION = (
    "CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"
    ' GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}";'
)


@contextlib.contextmanager
def vault_on(storage: str) -> Iterator[object]:
    import os

    from tests.pg import throwaway_database

    from sealbox import factory

    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        home = Path(tmp) / "home"
        env = {**os.environ, "SEALBOX_HOME": str(home)}
        url = stack.enter_context(throwaway_database()) if storage == "pg" else None
        factory.init_vault(
            home=home, storage=url, method="keyfile", key_file=Path(tmp) / "k.key", env=env
        )
        vault = factory.open_vault(home=home, env={})
        try:
            yield vault
        finally:
            vault.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leases", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--storage", choices=("sqlite", "pg"), default="sqlite")
    args = parser.parse_args()

    from tests.upstream_servers import scram_cluster

    from sealbox.model import SecretRef, SecretValue

    with scram_cluster() as cluster, vault_on(args.storage) as vault:
        vault.create_project("bench")  # type: ignore[attr-defined]
        vault.set(  # type: ignore[attr-defined]
            SecretRef("bench", "prod", "PG_ADMIN_URL"), SecretValue(cluster.url())
        )
        leases = vault.leases  # type: ignore[attr-defined]
        leases.define_role(
            "bench/prod/db", backend_name="postgres", admin="bench/prod/PG_ADMIN_URL",
            creation=CREATION,
        )  # fmt: skip
        issue_rates, revoke_rates = [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            made = [leases.issue("bench/prod/db") for _ in range(args.leases)]
            issued = time.perf_counter()
            for cred in made:
                leases.revoke(cred.lease_id)
            done = time.perf_counter()
            issue_rates.append(args.leases / (issued - start))
            revoke_rates.append(args.leases / (done - issued))
    print(f"storage: {args.storage}, {args.leases} leases x {args.rounds} rounds")
    print(f"issue:  {statistics.median(issue_rates):7.1f} leases/s (median)")
    print(f"revoke: {statistics.median(revoke_rates):7.1f} leases/s (median)")
    both = [1 / (1 / a + 1 / b) for a, b in zip(issue_rates, revoke_rates, strict=True)]
    print(f"issue + revoke: {statistics.median(both):7.1f} leases/s (median)")


if __name__ == "__main__":
    main()
