"""Benchmark: `sealbox run -- true` with 20 secrets, beside its peers, in one run.

Measures whole-process wall time for:

- `python -c pass`                       (the floor: the venv's interpreter, sys.executable)
- `sealbox run -- true`, session-unlocked passphrase vault, 20 secrets
- `sealbox run -- true`, key-file vault, 20 secrets
- `dotenvx run -- true`, encrypted .env with 20 keys (npm @dotenvx/dotenvx)

Rounds interleave the commands (the order rotates each round), `--runs` runs each per round,
and every ratio is taken within its round: the summary gives the median and min-max of the
per-round ratios. `--also` adds a second sealbox install (another checkout's venv, e.g. the
code before a change) to the same rounds, on its own vaults, and gives now / base as well.
Children run with bytecode, as an installed package has it, written under a temporary
PYTHONPYCACHEPREFIX (so never into a checkout), PYTHONDONTWRITEBYTECODE unset.

Uses hyperfine when installed (`-N`, no shell), else a Python loop.
Budget (DESIGN.md): sealbox ≤ 100 ms median on a 2-core machine.

    python benchmarks/run_bench.py [--rounds 10] [--runs 3] [--no-dotenvx] [--also PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.dont_write_bytecode = True  # the harness's own modules too: no __pycache__ in the checkout
from bench_common import (  # noqa: E402
    Install,
    bytecode_env,
    per_round_ratios,
    resolve_install,
    rotated,
    spread,
)

SECRETS = 20
FLOOR = "python -c pass"


@dataclass(frozen=True)
class Row:
    label: str
    cmd: list[str]
    env: dict[str, str]
    cwd: Path


def measure(row: Row, runs: int, warmup: int = 1) -> list[float]:
    """Wall times in seconds."""
    if shutil.which("hyperfine"):
        out = row.cwd / "hf.json"
        subprocess.run(
            ["hyperfine", "-N", "--warmup", str(warmup), "--runs", str(runs),
             "--export-json", str(out), "--", " ".join(row.cmd)],
            env=row.env,
            cwd=row.cwd,
            check=True,
            capture_output=True,
        )  # fmt: skip
        return [float(t) for t in json.loads(out.read_text())["results"][0]["times"]]
    for _ in range(warmup):
        subprocess.run(row.cmd, env=row.env, cwd=row.cwd, check=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(row.cmd, env=row.env, cwd=row.cwd, check=True)
        times.append(time.perf_counter() - start)
    return times


def setup_vault(root: Path, inst: Install, env: dict[str, str], *, keyfile: bool) -> dict[str, str]:
    home = root / f"home-{inst.label}-{'keyfile' if keyfile else 'pass'}"
    env = {k: v for k, v in env.items() if not k.startswith("SEALBOX_")}
    env.update(SEALBOX_HOME=str(home), SEALBOX_PROJECT="bench", SEALBOX_ENV="dev")
    sb = str(inst.sealbox)
    if keyfile:
        subprocess.run(
            [sb, "init", "--key-file", str(home.with_suffix(".key"))],
            env=env,
            check=True,
            capture_output=True,
        )
    else:
        pass_env = {**env, "SEALBOX_PASSPHRASE": "benchmark passphrase"}
        subprocess.run([sb, "init"], env=pass_env, check=True, capture_output=True)
        out = subprocess.run(
            [sb, "unlock", "--for", "1h"], env=pass_env, check=True, capture_output=True, text=True
        )
        env["SEALBOX_SESSION"] = out.stdout.strip().split("=", 1)[1]
    subprocess.run([sb, "project", "create", "bench"], env=env, check=True, capture_output=True)
    lines = "".join(f"KEY_{i}=value-{i}-{os.urandom(12).hex()}\n" for i in range(SECRETS))
    (root / "import.env").write_text(lines)
    subprocess.run(
        [sb, "import", str(root / "import.env")], env=env, check=True, capture_output=True
    )
    (root / "import.env").unlink()
    return env


def setup_dotenvx(root: Path) -> Path | None:
    if not shutil.which("npm"):
        return None
    d = root / "dotenvx"
    d.mkdir()
    npm = subprocess.run(
        ["npm", "install", "--silent", "--no-audit", "--no-fund", "@dotenvx/dotenvx"],
        cwd=d,
        capture_output=True,
        timeout=300,
        check=False,
    )
    binary = d / "node_modules" / ".bin" / "dotenvx"
    if npm.returncode != 0 or not binary.exists():
        return None
    (d / ".env").write_text(
        "".join(f"KEY_{i}=value-{i}-{os.urandom(12).hex()}\n" for i in range(SECRETS))
    )
    subprocess.run([str(binary), "encrypt", "-f", ".env"], cwd=d, check=True, capture_output=True)
    return binary


def build_rows(
    root: Path, installs: list[Install], env: dict[str, str], dotenvx: bool
) -> list[Row]:
    # The floor is the interpreter itself, the one every sealbox entry point's shebang runs.
    rows = [Row(FLOOR, [sys.executable, "-c", "pass"], env, root)]
    for inst in installs:
        suffix = "" if inst.label == "now" else f" [{inst.label}]"
        if suffix and inst.python.resolve() != Path(sys.executable).resolve():
            rows.append(Row(FLOOR + suffix, [str(inst.python), "-c", "pass"], env, root))
        for keyfile in (False, True):
            venv = setup_vault(root, inst, env, keyfile=keyfile)
            label = f"sealbox run ({'key file' if keyfile else 'session'}){suffix}"
            rows.append(Row(label, [str(inst.sealbox), "run", "--", "true"], venv, root))
    if dotenvx:
        binary = setup_dotenvx(root)
        if binary is None:
            print("dotenvx: not available (npm install failed); skipped")
        else:
            cmd = [str(binary), "run", "-q", "--", "true"]
            rows.append(Row("dotenvx run", cmd, env, binary.parents[2]))
    return rows


def interleaved(rows: list[Row], rounds: int, runs: int) -> list[dict[str, list[float]]]:
    """Per round, each row's times; the rows take turns going first."""
    for row in rows:
        measure(row, 1, warmup=2)  # fills the bytecode cache before anything is timed
    out: list[dict[str, list[float]]] = []
    for r in range(rounds):
        out.append({row.label: measure(row, runs) for row in rotated(rows, r)})
    return out


def ratio_pairs(labels: list[str]) -> list[tuple[str, str]]:
    """(numerator, denominator) rows: each sealbox row over its interpreter's floor and over
    dotenvx, and each of the current install's rows over the baseline's."""
    pairs = []
    for label in labels:
        if label.startswith("sealbox"):
            own_floor = FLOOR + label[label.index(" [") :] if " [" in label else FLOOR
            pairs.append((label, own_floor if own_floor in labels else FLOOR))
            if "dotenvx run" in labels:
                pairs.append((label, "dotenvx run"))
        base = f"{label} [base]"
        if base in labels:
            pairs.append((label, base))
    return pairs


def report(rounds: list[dict[str, list[float]]]) -> None:
    labels = list(rounds[0])
    for label in labels:
        times = [t for r in rounds for t in r[label]]
        print(
            f"{label:<32} median {statistics.median(times) * 1000:7.1f} ms   "
            f"min {min(times) * 1000:6.1f}  max {max(times) * 1000:6.1f}  (n={len(times)})"
        )
    medians = [{k: statistics.median(v) for k, v in r.items()} for r in rounds]
    print("\nper-round ratios, median (min-max):")
    for num, den in ratio_pairs(labels):
        s = spread(per_round_ratios(medians, num, den))
        print(f"{num:<32} / {den:<32} {s.show()}")
    worst = max(
        statistics.median(t for r in rounds for t in r[k])
        for k in labels
        if k.startswith("sealbox") and "[" not in k
    )
    print(
        f"\nbudget: sealbox run median {worst * 1000:.1f} ms (budget 100 ms): "
        f"{'within' if worst <= 0.1 else 'OVER'}"
    )
    print(f"machine: {os.cpu_count()} cores, {os.uname().machine}, Python {sys.version.split()[0]}")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rounds", type=int, default=10, help="interleaved rounds")
    ap.add_argument("--runs", type=int, default=3, help="runs of each command per round")
    ap.add_argument("--no-dotenvx", action="store_true")
    ap.add_argument("--also", help="a second sealbox install: python, venv or checkout")
    args = ap.parse_args()
    if min(args.rounds, args.runs) < 1:
        ap.error("--rounds and --runs must be at least 1")
    now = Path(sys.executable)
    installs = [Install("now", now, now.with_name("sealbox"))]
    if args.also:
        installs.append(resolve_install("base", args.also))
    if not installs[0].sealbox.is_file():
        sys.exit("sealbox is not installed: pip install -e .")
    with tempfile.TemporaryDirectory(prefix="sealbox-bench-") as tmp:
        root = Path(tmp)
        env = bytecode_env(os.environ, root / "pycache")
        rows = build_rows(root, installs, env, not args.no_dotenvx)
        rounds = interleaved(rows, args.rounds, args.runs)
    print(f"load: {os.getloadavg()[0]:.2f}; installs: " + ", ".join(
        f"{i.label}={i.python}" for i in installs))  # fmt: skip
    report(rounds)


if __name__ == "__main__":
    main()
