"""Server read throughput with each key provider side by side, in one run (issue 13).

    .venv/bin/python benchmarks/kms_read_bench.py [--duration 10] [--rounds 3]
        [--providers local,pkcs11,transit,transit-pv,transit-pv-nocache]
        [--client auto|wrk|python] [--connections 16]

One key-file vault gets 1,000 secrets of 32 random bytes (hex); then each target is a copy
of that SAME vault opened a different way, served by its own `sealbox server` over
loopback, and read on random keys (GET /v1/secrets/bench/prod/k<N>, authenticated):

* local                 the key file (the vault as created)
* pkcs11                KEKs wrapped by an AES key in a SoftHSM2 token made for the run; the
                        local provider removed, so the server opens through the token
* transit               KEKs wrapped by a Transit key of a `bao server -dev`; local removed
* local-pv, local-pv-nocache   per-version wrapping by the local provider itself, with and
                        without the cache (what the per-version path costs without a network)
* transit-pv            as transit, and every secret classified critical with per-version
                        KMS wrapping on: each version's data key wrapped by Transit itself,
                        reads through the data-key cache (default bounds)
* transit-pv-nocache    the same with the cache off: a Transit call per read

A provider is a pluggable "how to open" step (:data:`OPENERS`): one whose module is not
importable yet (the pkcs11 and transit providers land on their own branches) or whose peer
cannot be had (no SoftHSM2, no bao) is skipped with the reason. Each round runs every
target once, the order rotating from round to round; ratios vs local are taken within each
round (median and min-max), and the run's spread is local's own min-max over its median:
a provider whose ratio differs from 1 by less than that spread costs reads nothing this
run can see. Prints `key=value` lines, then one `kms_read_bench ...` summary line.

The load is wrk (server_bench.lua) when installed (`/work/shared/peers/setup.sh`), else a
Python client loop (keep-alive connections in threads; slower, but the same for every
target). Timed children run with PYTHONDONTWRITEBYTECODE unset (bench_common.bytecode_env).
Everything listens on 127.0.0.1 on ports the kernel handed out; every run is bounded by
--duration.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

sys.dont_write_bytecode = True  # the harness's own modules too: no __pycache__ in the checkout
from bench_common import (  # noqa: E402
    Install,
    Spread,
    bytecode_env,
    per_round_ratios,
    rotated,
    spread,
)
from server_bench import (  # noqa: E402
    NKEYS,
    Target,
    find_bao,
    machine,
    sealbox_vault,
    start_server,
    wrk,
)

PATH_PREFIX = "/v1/secrets/bench/prod/k"
SOFTHSM_LIB = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "1234"
BAO_TOKEN = "bench-root"

#: Run inside the install's python, in a copy of the vault: add provider NAME of KIND
#: (wrapping every KEK), optionally turn per-version wrapping on under it and rewrite every
#: secret as critical, then remove the local provider so the server must open through NAME.
#: Exit 3 (with "skip: reason") when the kind cannot be loaded.
SETUP = r"""
import json, os, sys
from datetime import UTC, datetime
from sealbox.errors import SealboxError
from sealbox.factory import open_vault
from sealbox.model import Classification, SecretRef, SecretValue

kind, name, options, per_version = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
v = open_vault(source="bench")
now = datetime.now(UTC).isoformat()
if kind != "local":
    from sealbox.kms.local import kek_context
    from sealbox.kms.registry import provider_kind
    from sealbox.storage.rows import KekWrapping, KeyProviderRow
    try:
        family = provider_kind(kind)
    except (SealboxError, ImportError) as exc:
        print("skip:", getattr(exc, "message", exc))
        sys.exit(3)
    ring = v._state.key_provider()
    new = family.create(name, options, v._state.unlocker.ctx)
    key_ref = new.provider.key_id()
    wrappings = [
        KekWrapping(k, name, new.provider.wrap(ring.kek(k), kek_context(v.vault_id, k)),
                    key_ref, now)
        for k in ring.kek_ids
    ]
    if new.keep is not None:
        new.keep()
    position = len(v._storage.list_key_providers()) + 1
    v._storage.add_key_provider(
        KeyProviderRow(name, kind, json.dumps(new.config), position, now), wrappings
    )
if per_version != "off":
    from sealbox.kms_per_version import PerVersionSetting
    cached = per_version == "cache"
    v.kms_per_version.configure(PerVersionSetting(
        name, Classification.CRITICAL, 300.0 if cached else 0.0, 1000 if cached else 1,
        10000 if cached else 0,
    ))
    for i in range(int(sys.argv[5])):
        ref = SecretRef("bench", "prod", f"k{i}")
        v.update_meta(ref, classification=Classification.CRITICAL)
        v.set(ref, SecretValue(os.urandom(32).hex()))
    counts = v.kms_per_version.status().versions
    assert counts.get("kms:" + name) == int(sys.argv[5]), counts
if kind != "local":
    v._storage.remove_key_provider("local")
v.close()
print("ok")
"""


@dataclass
class Opened:
    """What an opener leaves for the server: its environment additions."""

    env: dict[str, str]


class Skip(Exception):
    """This provider cannot be measured here (the reason is printed)."""


# -- how each target's vault is opened ------------------------------------------------------------
def _setup(python: Path, home_env: dict[str, str], kind: str, name: str, options: dict[str, str],
           per_version: str = "off") -> None:  # fmt: skip
    r = subprocess.run(
        [str(python), "-c", SETUP, kind, name, json.dumps(options), per_version, str(NKEYS)],
        env=home_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if r.returncode == 3:
        raise Skip(r.stdout.strip().removeprefix("skip:").strip())
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        raise Skip(f"setup failed: {' | '.join(tail)}")


def open_local(ctx: BenchContext, env: dict[str, str]) -> Opened:
    return Opened({})


def _softhsm(ctx: BenchContext) -> dict[str, str]:
    if ctx.softhsm is None:
        if not Path(SOFTHSM_LIB).exists() or shutil.which("softhsm2-util") is None:
            raise Skip(f"SoftHSM2 not installed ({SOFTHSM_LIB})")
        tokens = ctx.work / "softhsm-tokens"
        tokens.mkdir()
        conf = ctx.work / "softhsm2.conf"
        conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n")
        env = {"SOFTHSM2_CONF": str(conf), "SEALBOX_PKCS11_PIN": PIN}
        subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", "sealbox-bench",
             "--pin", PIN, "--so-pin", PIN],
            env={**os.environ, **env}, check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        ctx.softhsm = env
    return ctx.softhsm


def open_pkcs11(ctx: BenchContext, env: dict[str, str]) -> Opened:
    extra = _softhsm(ctx)
    options = {"library": SOFTHSM_LIB, "token_label": "sealbox-bench",
               "key_label": "sealbox-kek", "generate": "true"}  # fmt: skip
    _setup(ctx.python, {**env, **extra}, "pkcs11", "hsm", options)
    return Opened(extra)


def _bao(ctx: BenchContext) -> dict[str, str]:
    if ctx.bao is None:
        try:
            bao = find_bao()
        except SystemExit as exc:
            raise Skip(str(exc)) from None
        home = ctx.work / "bao-home"
        home.mkdir()

        def cmd(port: int) -> list[str]:
            return [bao, "server", "-dev", f"-dev-root-token-id={BAO_TOKEN}",
                    f"-dev-listen-address=127.0.0.1:{port}"]  # fmt: skip

        addr = start_server(ctx.stack, cmd, {**os.environ, "HOME": str(home)},
                            ctx.work / "bao", span=2)  # fmt: skip
        conn = http.client.HTTPConnection(addr, timeout=10)
        conn.request("POST", "/v1/sys/mounts/transit", body=json.dumps({"type": "transit"}),
                     headers={"X-Vault-Token": BAO_TOKEN})  # fmt: skip
        status = conn.getresponse().status
        conn.close()
        if status not in (200, 204):
            raise Skip(f"bao refused to mount transit (HTTP {status})")
        ctx.bao = {"SEALBOX_TRANSIT_TOKEN": BAO_TOKEN, "_BAO_ADDR": f"http://{addr}"}
    return ctx.bao


def _transit(per_version: str, key: str) -> Callable[[BenchContext, dict[str, str]], Opened]:
    def open_transit(ctx: BenchContext, env: dict[str, str]) -> Opened:
        extra = dict(_bao(ctx))
        address = extra.pop("_BAO_ADDR")
        options = {"address": address, "key": key, "create_key": "true"}
        _setup(ctx.python, {**env, **extra}, "transit", "transit", options, per_version)
        return Opened(extra)

    return open_transit


def _local_pv(per_version: str) -> Callable[[BenchContext, dict[str, str]], Opened]:
    def open_local_pv(ctx: BenchContext, env: dict[str, str]) -> Opened:
        _setup(ctx.python, env, "local", "local", {}, per_version)
        return Opened({})

    return open_local_pv


OPENERS: dict[str, Callable[[BenchContext, dict[str, str]], Opened]] = {
    "local": open_local,
    "local-pv": _local_pv("cache"),
    "local-pv-nocache": _local_pv("nocache"),
    "pkcs11": open_pkcs11,
    "transit": _transit("off", "sealbox-bench"),
    "transit-pv": _transit("cache", "sealbox-bench-pv"),
    "transit-pv-nocache": _transit("nocache", "sealbox-bench-pv-nc"),
}


@dataclass
class BenchContext:
    python: Path
    sealbox: Path
    work: Path
    stack: ExitStack
    softhsm: dict[str, str] | None = None
    bao: dict[str, str] | None = None


# -- load ---------------------------------------------------------------------------------------
def python_load(t: Target, duration: int, conns: int) -> dict[str, float]:
    """wrk's figures from keep-alive connections in threads (when wrk is not installed)."""
    host, port = t.addrs[0].split(":")
    stop = time.monotonic() + duration
    lat: list[list[float]] = [[] for _ in range(conns)]
    errors = [0] * conns

    def run(i: int) -> None:
        rnd = random.Random(os.urandom(8))
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        headers = {"X-Vault-Token": t.token}
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            try:
                conn.request("GET", f"{t.prefix}{rnd.randrange(NKEYS)}", headers=headers)
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    errors[i] += 1
            except (OSError, http.client.HTTPException):
                errors[i] += 1
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=5)
                continue
            lat[i].append(time.perf_counter() - t0)
        conn.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(conns)]
    start = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join(duration + 30)
    elapsed = time.monotonic() - start
    every = sorted(x for each in lat for x in each)
    if not every:
        return {"rps": 0.0, "p50_us": 0.0, "p99_us": 0.0, "err_status": float(sum(errors))}
    return {
        "rps": len(every) / elapsed,
        "p50_us": statistics.median(every) * 1e6,
        "p99_us": every[min(len(every) - 1, int(len(every) * 0.99))] * 1e6,
        "err_status": float(sum(errors)),
    }


# -- rounds and report -----------------------------------------------------------------------------
def verdicts(rounds: list[dict[str, float]], names: list[str]) -> dict[str, tuple[Spread, str]]:
    """Each target's per-round ratio to local, and whether it is within the run's spread
    (local's own min-max relative to its median)."""
    local = spread([r["local"] for r in rounds])
    run_spread = (local.high - local.low) / local.median if local.median else 0.0
    out: dict[str, tuple[Spread, str]] = {}
    for name in names:
        if name == "local":
            continue
        ratio = spread(per_round_ratios(rounds, name, "local"))
        within = abs(1 - ratio.median) <= run_spread
        out[name] = (ratio, "within_spread" if within else "outside_spread")
    return out


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--providers", default=",".join(OPENERS))
    ap.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads (-t)")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--log-level", default="warning")
    a = ap.parse_args()
    a.providers = [p.strip() for p in a.providers.split(",") if p.strip()]
    unknown = set(a.providers) - set(OPENERS)
    if unknown or "local" not in a.providers:
        ap.error(f"--providers: local plus any of {', '.join(OPENERS)} (unknown: {unknown})")
    if a.client == "auto":
        a.client = "wrk" if shutil.which("wrk") else "python"
    elif a.client == "wrk" and shutil.which("wrk") is None:
        raise SystemExit("kms_read_bench error=no_wrk hint=bash /work/shared/peers/setup.sh")
    return a


def main() -> int:
    a = parse_args()
    print(machine(), f"client={a.client}", flush=True)
    now = Path(sys.executable)
    inst = Install("now", now, now.with_name("sealbox"))
    with tempfile.TemporaryDirectory(prefix="sealbox-kmsbench-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        env = bytecode_env(os.environ, work / "pycache")
        (work / "base").mkdir()
        base_env, token = sealbox_vault(inst, work / "base", None, env)
        ctx = BenchContext(inst.python, inst.sealbox, work, stack)
        targets: list[Target] = []
        for name in a.providers:
            copy = work / name
            shutil.copytree(work / "base", copy)
            config = copy / "home" / "config.toml"
            # The copy's config names its own database and key file, not the base's.
            config.write_text(config.read_text().replace(str(work / "base"), str(copy)))
            copy_env = {**base_env, "SEALBOX_HOME": str(copy / "home")}
            copy_env["SEALBOX_KEY_FILE"] = str(copy / "master.key")
            try:
                opened = OPENERS[name](ctx, copy_env)
            except Skip as exc:
                print(f"skip provider={name} reason={json.dumps(str(exc))}", flush=True)
                continue
            server_env = {**copy_env, **opened.env, "SEALBOX_LOG_LEVEL": a.log_level}
            if name != "local":
                server_env.pop("SEALBOX_KEY_FILE")  # only NAME can open this copy

            def cmd(port: int, s: Path = inst.sealbox) -> list[str]:
                return [str(s), "server", "--address", f"127.0.0.1:{port}"]

            addr = start_server(stack, cmd, server_env, copy / "server", span=1)
            targets.append(Target("read", name, "native", "GET", "none", PATH_PREFIX,
                                  (addr,), token))  # fmt: skip
            print(f"target provider={name} addr={addr}", flush=True)

        def load(t: Target, duration: int) -> dict[str, float]:
            if a.client == "wrk":
                return wrk(t, duration, a.threads, a.connections)
            return python_load(t, duration, a.connections)

        for t in targets:
            load(t, 2)  # warm-up (and the per-version cache fills)
        rounds: list[dict[str, dict[str, float]]] = []
        for r in range(a.rounds):
            rounds.append({t.system: load(t, a.duration) for t in rotated(targets, r)})
            print(f"round {r + 1}/{a.rounds} done load={os.getloadavg()[0]:.2f}", flush=True)
    names = [t.system for t in targets]
    for name in names:
        rps = spread([r[name]["rps"] for r in rounds])
        p99 = spread([r[name]["p99_us"] / 1e3 for r in rounds])
        errors = sum(int(v) for r in rounds for k, v in r[name].items() if k.startswith("err_"))
        print(f"load provider={name} rps={rps.median:.0f} rps_range={rps.low:.0f}-{rps.high:.0f}"
              f" p99_ms={p99.median:.2f} errors={errors}")  # fmt: skip
    rps_rounds = [{n: r[n]["rps"] for n in names} for r in rounds]
    local = spread([r["local"] for r in rps_rounds])
    run_spread = (local.high - local.low) / local.median if local.median else 0.0
    found = verdicts(rps_rounds, names)
    for name, (ratio, verdict) in found.items():
        print(f"ratio {name}_over_local={ratio.median:.2f} range={ratio.low:.2f}-{ratio.high:.2f}"
              f" {verdict}")  # fmt: skip
    print(
        f"kms_read_bench client={a.client} duration_s={a.duration} rounds={a.rounds}"
        f" connections={a.connections} run_spread={run_spread:.2f} "
        + " ".join(f"{n}={r.median:.2f}" for n, (r, _) in found.items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
