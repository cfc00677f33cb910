"""Benchmark: the cost of auditing on the read path, audit on (default sinks) vs off.

- **process**: embedded `sealbox secret get NAME` (whole process, key-file vault), median
  of N runs. Both variants run the same launcher; "off" replaces
  ``AuditRecorder.record`` with a no-op before the CLI starts. That switch lives only in
  this benchmark: sealbox has no user option to turn auditing off.
- **in-process**: a loop of ``Vault.get`` (reveal=False) on one secret, per-call median.
- **run**: `sealbox run -- true` with 20 secrets (one event carrying 20 value HMACs).
- **server read**: `GET /v1/secrets/bench/dev/KEY_0` over loopback against a `sealbox
  server --workers 1` process (the same launcher, so "off" is the same switch), one
  keep-alive connection, sequential, per-request median over ``--rounds`` on/off pairs
  that alternate; each event is spooled before its response and stored in the database
  in batches (audit/spool.py).

    python benchmarks/audit_bench.py [--runs 30] [--loop 3000] [--rounds 4]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAUNCH = """
import sys
if sys.argv[1] == "off":
    from sealbox.audit.recorder import AuditRecorder
    AuditRecorder.record = lambda self, **kw: None
sys.argv = ["sealbox", *sys.argv[2:]]
from sealbox.cli.entry import entrypoint
entrypoint()
"""


def wall(cmd: list[str], env: dict[str, str], runs: int) -> list[float]:
    for _ in range(3):
        subprocess.run(cmd, env=env, check=True, capture_output=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def in_process(home: Path, audit: bool, loops: int) -> list[float]:
    from sealbox import factory
    from sealbox.audit.recorder import AuditRecorder
    from sealbox.model import SecretRef

    original = AuditRecorder.record
    if not audit:
        AuditRecorder.record = lambda self, **kw: None  # type: ignore[method-assign]
    try:
        vault = factory.open_vault(home=home, env={"SEALBOX_HOME": str(home)})
        ref = SecretRef("bench", "dev", "KEY_0")
        for _ in range(50):
            vault.get(ref)
        times = []
        for _ in range(loops):
            start = time.perf_counter()
            vault.get(ref)
            times.append(time.perf_counter() - start)
        vault.close()
        return times
    finally:
        AuditRecorder.record = original  # type: ignore[method-assign]


def server_read(
    sb: list[str], env: dict[str, str], token: str, audit: bool, loops: int
) -> list[float]:
    """Sequential reads from a `sealbox server` process (one worker), per-request times."""
    import http.client

    from sealbox.server.testing import free_port, wait_for_port

    port = free_port()
    mode = "on" if audit else "off"
    cmd = [*sb, mode, "server", "--address", f"127.0.0.1:{port}", "--workers", "1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        conn = http.client.HTTPConnection("127.0.0.1", port)
        headers = {"Authorization": f"Bearer {token}"}
        times = []
        for i in range(loops + 300):
            start = time.perf_counter()
            conn.request("GET", "/v1/secrets/bench/dev/KEY_0", headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise SystemExit(f"server read failed: {resp.status}")
            if i >= 300:
                times.append(time.perf_counter() - start)
        conn.close()
        return times
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--loop", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=4, help="server on/off pairs, interleaved")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sealbox-audit-bench-"))
    home = root / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALBOX_")}
    # Bytecode cached, as for an installed package (in a temporary directory, not the tree):
    # otherwise each process row also measures compiling every module it imports.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
    env.update(SEALBOX_HOME=str(home), SEALBOX_PROJECT="bench", SEALBOX_ENV="dev")
    py = sys.executable
    sb = [py, "-c", LAUNCH]
    subprocess.run(
        [*sb, "on", "init", "--key-file", str(root / "k.key")],
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [*sb, "on", "project", "create", "bench"], env=env, check=True, capture_output=True
    )
    (root / "in.env").write_text(
        "".join(f"KEY_{i}=value-{i}-{os.urandom(12).hex()}\n" for i in range(20))
    )
    subprocess.run(
        [*sb, "on", "import", str(root / "in.env")], env=env, check=True, capture_output=True
    )

    rows = []
    for label, argv in (
        ("secret get (process)", ["secret", "get", "KEY_0"]),
        ("run -- true, 20 secrets", ["run", "--", "true"]),
    ):
        # Interleave on/off so drifting machine load hits both alike.
        on: list[float] = []
        off: list[float] = []
        for _ in range(2):
            on += wall([*sb, "on", *argv], env, args.runs // 2)
            off += wall([*sb, "off", *argv], env, args.runs // 2)
        rows.append((label, statistics.median(on), statistics.median(off), "ms", 1e3))
    from sealbox.factory import bootstrap_server

    _, token = bootstrap_server(admin="bench", password="benchmark password", home=home, env=env)
    on_srv: list[float] = []
    off_srv: list[float] = []
    on_round: list[float] = []
    off_round: list[float] = []
    ratios = []
    for i in range(args.rounds):
        # Alternate which goes first, so a drift within a round favours neither.
        for audit in (True, False) if i % 2 == 0 else (False, True):
            times = server_read(sb, env, token.value, audit, args.loop)
            (on_srv if audit else off_srv).extend(times)
            (on_round if audit else off_round)[:] = times
        ratios.append(statistics.median(on_round) / statistics.median(off_round) - 1)
    rows.append(
        ("server read (loopback)", statistics.median(on_srv), statistics.median(off_srv), "us", 1e6)
    )
    on_ip = in_process(home, True, args.loop)
    off_ip = in_process(home, False, args.loop)
    rows.append(
        ("Vault.get (in-process)", statistics.median(on_ip), statistics.median(off_ip), "us", 1e6)
    )

    print(f"{'':26} {'audit on':>12} {'audit off':>12} {'added':>10} {'added %':>8}")
    for label, on_m, off_m, unit, scale in rows:
        added = on_m - off_m
        print(
            f"{label:26} {on_m * scale:10.2f}{unit} {off_m * scale:10.2f}{unit} "
            f"{added * scale:8.2f}{unit} {100 * added / off_m:7.1f}%"
        )
    print("server read, added per round: " + ", ".join(f"{100 * r:.1f}%" for r in ratios))
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}, load {os.getloadavg()[0]:.2f}; sinks: db (default)"
    )


if __name__ == "__main__":
    main()
