"""Benchmark: ``rotate --due`` over many ``random`` secrets (embedded, SQLite), and whether
reads keep their throughput meanwhile.

1. A key-file vault gets ``--secrets`` secrets (default 1,000), each configured with the
   ``random`` rotator and ``rotate_every_days = 1``; the clock is then moved two days on,
   so every one is due.
2. **reads alone**: a reader process (another process on the same vault file, as a
   ``sealbox run`` or an app would be) reads one secret in a loop for ``--seconds``.
3. **rotate --due**: ``vault.rotations.rotate_due()`` runs every due rotation (each one
   a rotation record, a pending version, four recorded steps, a promotion, audit events);
   rotations per second is what it reports.
4. **reads during rotation**: the same reader, started with the rotations.

The reader is ``--reader process`` (default: embedded reads in another process, each read an
audited transaction on the vault file) or ``--reader server``: apps reading through a
``sealbox server --workers 1`` on the vault, loaded by wrk (``-t2 -c16``, random keys; the
server spools its audit events as it does by default), which is how a team's services read
while cron or ``sealbox scheduler`` rotates.

Nothing here asserts a timing; it prints figures.

    python benchmarks/rotation_bench.py [--secrets 1000] [--seconds 5] [--storage DSN]
        [--reader process|server] [--per-round N]

``--per-round 25`` starts only 25 of the due rotations, as one round of ``sealbox
scheduler`` does (its default): the reads' figure is then that of a minute in which the
scheduler rotates, compressed into ``--seconds``.

``--storage postgresql://…`` puts the vault in that (empty) PostgreSQL database instead.
Rotations that did not succeed are counted apart, with the first reason.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

READER = """
import sys, time
from sealbox import factory
from sealbox.model import SecretRef
from pathlib import Path
vault = factory.open_vault(home=Path(sys.argv[1]))
ref = SecretRef("bench", "dev", "KEY_0")
vault.get(ref)
end = time.monotonic() + float(sys.argv[2])
n = 0
while time.monotonic() < end:
    vault.get(ref)
    n += 1
vault.close()
print(n / float(sys.argv[2]))
"""


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def reader(home: Path, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", READER, str(home), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "SEALBOX_HOME": str(home)},
    )


class ServerReader:
    """``sealbox server`` on the vault, read by wrk: ``start(seconds)`` then ``rate()``."""

    def __init__(self, home: Path, nkeys: int) -> None:
        sys.path.insert(0, str(Path(__file__).parent))
        from bench_common import free_port

        env = {k: v for k, v in os.environ.items() if not k.startswith("SEALBOX_")}
        env["SEALBOX_HOME"] = str(home)
        self.env = env
        sealbox = str(Path(sys.executable).parent / "sealbox")
        self.token = subprocess.run(
            [sealbox, "server", "init", "--admin", "bench"],
            env={**env, "SEALBOX_ADMIN_PASSWORD": "benchmark password"},
            check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sealbox, "server", "--address", f"127.0.0.1:{self.port}", "--workers", "1"],
            env={**env, "SEALBOX_LOG_LEVEL": "warning"},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        import urllib.request

        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v1/sys/health", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("rotation_bench error=server_did_not_start") from None
                time.sleep(0.2)
        self.nkeys = nkeys
        self.wrk: subprocess.Popen[str] | None = None

    def start(self, seconds: float) -> None:
        lua = Path(__file__).parent / "server_bench.lua"
        env = {
            **os.environ, "BENCH_TOKEN": self.token, "BENCH_PREFIX": "/v1/secrets/bench/dev/KEY_",
            "BENCH_METHOD": "GET", "BENCH_BODY": "none", "NKEYS": str(self.nkeys),
            "BENCH_SEED": "7",
        }  # fmt: skip
        self.wrk = subprocess.Popen(
            ["wrk", "-t2", "-c16", f"-d{int(seconds)}s", "-s", str(lua),
             f"http://127.0.0.1:{self.port}"],
            env=env, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    def rate(self) -> float:
        import json

        assert self.wrk is not None
        out = self.wrk.communicate()[0]
        line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
        data = json.loads(line.split(" ", 1)[1])
        errors = {k: v for k, v in data.items() if k.startswith("err_") and v}
        print(f"  (reader: p50 {data['p50_us'] / 1000:.1f} ms, p99 {data['p99_us'] / 1000:.1f} ms"
              f"{', errors ' + str(errors) if errors else ''})")  # fmt: skip
        return float(data["rps"])

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--secrets", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--storage", default=None, help="an empty PostgreSQL database's DSN")
    parser.add_argument("--reader", choices=("process", "server"), default="process")
    parser.add_argument(
        "--per-round",
        type=int,
        default=None,
        help="start at most N of the due rotations (one round of `sealbox scheduler`)",
    )
    args = parser.parse_args()
    sys.dont_write_bytecode = True

    from sealbox import factory
    from sealbox.kms.master import UnlockMethod
    from sealbox.model import SecretRef, SecretValue

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        os.environ["SEALBOX_HOME"] = str(home)
        factory.init_vault(
            home=home,
            storage=args.storage,
            method=UnlockMethod.KEYFILE,
            key_file=Path(tmp) / "k.key",
        )
        clock = Clock()
        vault = factory.open_vault(home=home, clock=clock)
        vault.create_project("bench")
        start = time.perf_counter()
        for i in range(args.secrets):
            ref = SecretRef("bench", "dev", f"KEY_{i}")
            vault.set(ref, SecretValue(f"initial-value-{i:06d}-padding"))
            vault.update_meta(ref, rotate_every_days=1)
            vault.rotations.configure(ref, "random", options={"length": "40"})
        print(f"set-up: {args.secrets} secrets configured in {time.perf_counter() - start:.1f} s")

        served = ServerReader(home, args.secrets) if args.reader == "server" else None
        what = "through sealbox server, wrk" if served else "another process, same vault"
        if served:
            served.start(args.seconds)
            alone_rate = served.rate()
        else:
            alone_rate = float(reader(home, args.seconds).communicate()[0])
        print(f"reads alone: {alone_rate:,.0f} reads/s ({what})")

        clock.now += timedelta(days=2)
        if served:
            served.start(args.seconds)
        else:
            during = reader(home, args.seconds)
        time.sleep(0.3)  # the reader is reading when the rotations start
        start = time.perf_counter()
        outcomes = vault.rotations.rotate_due(limit=args.per_round)
        elapsed = time.perf_counter() - start
        during_rate = served.rate() if served else float(during.communicate()[0])
        if served:
            served.close()
        done = sum(1 for o in outcomes if o.rotation and o.rotation.state == "succeeded")
        failed = [o for o in outcomes if not (o.rotation and o.rotation.state == "succeeded")]
        if failed:
            first = failed[0]
            why = first.skipped or (first.rotation.error if first.rotation else "")
            print(f"not done: {len(failed)} (first: {why})")
        print(
            f"rotate --due: {done}/{len(outcomes)} rotations in {elapsed:.1f} s"
            f" = {done / elapsed:,.1f} rotations/s"
        )
        print(
            f"reads during the rotations (first {args.seconds:.0f} s): {during_rate:,.0f}"
            f" reads/s ({during_rate / alone_rate:.0%} of alone)"
        )
        vault.close()


if __name__ == "__main__":
    main()
