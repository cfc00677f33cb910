"""Benchmark: `sealbox run -- true` with 20 secrets, beside its peers, in one run.

Measures whole-process wall time (median of N runs, with warm-up) for:

- `python -c pass`                       (the floor: interpreter start-up)
- `sealbox run -- true`, session-unlocked passphrase vault, 20 secrets
- `sealbox run -- true`, key-file vault, 20 secrets
- `dotenvx run -- true`, encrypted .env with 20 keys (npm @dotenvx/dotenvx)

and prints ratios. Uses hyperfine when installed (`-N`, no shell), else a Python loop.
Budget (DESIGN.md): sealbox ≤ 100 ms median on a 2-core machine.

    python benchmarks/run_bench.py [--runs 30] [--no-dotenvx]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SECRETS = 20


def sealbox_bin() -> str:
    found = shutil.which("sealbox", path=str(Path(sys.executable).parent)) or shutil.which(
        "sealbox"
    )
    if not found:
        sys.exit("sealbox is not installed: pip install -e .")
    return found


def measure(cmd: list[str], env: dict[str, str], cwd: Path, runs: int) -> list[float]:
    """Wall times in seconds."""
    if shutil.which("hyperfine"):
        out = cwd / "hf.json"
        subprocess.run(
            [
                "hyperfine",
                "-N",
                "--warmup",
                "3",
                "--runs",
                str(runs),
                "--export-json",
                str(out),
                "--",
                " ".join(cmd),
            ],
            env=env,
            cwd=cwd,
            check=True,
            capture_output=True,
        )
        return [float(t) for t in json.loads(out.read_text())["results"][0]["times"]]
    for _ in range(3):
        subprocess.run(cmd, env=env, cwd=cwd, check=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, cwd=cwd, check=True)
        times.append(time.perf_counter() - start)
    return times


def setup_vault(root: Path, *, keyfile: bool) -> dict[str, str]:
    home = root / ("home-keyfile" if keyfile else "home-pass")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALBOX_")}
    env.update(SEALBOX_HOME=str(home), SEALBOX_PROJECT="bench", SEALBOX_ENV="dev")
    sb = sealbox_bin()
    if keyfile:
        subprocess.run(
            [sb, "init", "--key-file", str(root / "bench.key")],
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


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--no-dotenvx", action="store_true")
    args = ap.parse_args()
    # An editable install has no bytecode yet; a regular `pip install` compiles it. Do the
    # same so start-up is measured as users get it.
    compileall.compile_dir(str(REPO / "src"), quiet=1)
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="sealbox-bench-") as tmp:
        root = Path(tmp)
        base_env = dict(os.environ)
        base_env.pop("PYTHONDONTWRITEBYTECODE", None)
        sb = sealbox_bin()
        rows = [("python -c pass", [sys.executable, "-c", "pass"], base_env, root)]
        for keyfile in (False, True):
            env = setup_vault(root, keyfile=keyfile)
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            label = "sealbox run (key file)" if keyfile else "sealbox run (session)"
            rows.append((label, [sb, "run", "--", "true"], env, root))
        if not args.no_dotenvx:
            binary = setup_dotenvx(root)
            if binary is None:
                print("dotenvx: not available (npm install failed); skipped")
            else:
                rows.append(
                    (
                        "dotenvx run",
                        [str(binary), "run", "-q", "--", "true"],
                        base_env,
                        binary.parents[2],
                    )
                )
        for label, cmd, env, cwd in rows:
            times = measure(cmd, env, cwd, args.runs)
            results[label] = statistics.median(times)
            print(
                f"{label:<26} median {results[label] * 1000:7.1f} ms   "
                f"min {min(times) * 1000:6.1f}  max {max(times) * 1000:6.1f}  (n={len(times)})"
            )
    floor = results["python -c pass"]
    print()
    for label, value in results.items():
        line = f"{label:<26} {value / floor:5.2f}x python"
        if "dotenvx run" in results:
            line += f"   {value / results['dotenvx run']:5.2f}x dotenvx"
        print(line)
    budget = max(v for k, v in results.items() if k.startswith("sealbox"))
    print(
        f"\nbudget: sealbox run median {budget * 1000:.1f} ms (budget 100 ms): "
        f"{'within' if budget <= 0.1 else 'OVER'}"
    )
    print(f"machine: {os.cpu_count()} cores, {os.uname().machine}, Python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
