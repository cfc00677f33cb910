"""CI: ``pip-audit`` over the installed dependencies; a known vulnerability fails the run.

Run with the environment's Python after ``pip install -e '.[dev]'``. It runs
``pip-audit --skip-editable`` (sealbox itself is the editable install) against its default
service, PyPI's JSON API, and then:

* a known vulnerability in any installed distribution -> exit 1, naming it and its fixes;
* the service cannot be reached (pip-audit fails without a report, or the fallback below
  cannot fetch) -> exit 2: fail closed. CI reaches PyPI to install, so an outage here has
  already stopped the install one step earlier; a run is simply retried.
* PyPI answers "not found" for a release (pip-audit then skips it and, on its own, still
  says "No known vulnerabilities found"): a mirror that serves each project's JSON but not
  each release's does that for every release. For those, the project's JSON is read
  instead; its ``vulnerabilities`` describe the project's latest release, so it audits an
  installed release that is the latest one. A release neither way can see is listed as
  NOT AUDITED, with a count, and does not fail the run (an old pin on such a mirror would
  otherwise block every run); the summary line says how many were audited.

``--report FILE`` reads a pip-audit JSON report instead of running pip-audit (tests).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from importlib import metadata
from typing import Any

PROJECT_JSON = "https://pypi.org/pypi/{name}/json"
NOT_FOUND = "not found on PyPI"

Fetch = Callable[[str], dict[str, Any]]


class Unreachable(Exception):
    """The vulnerability service did not answer."""


def fetch_project(name: str) -> dict[str, Any]:
    """PyPI's JSON for a project (its latest release and that release's vulnerabilities)."""
    try:
        with urllib.request.urlopen(PROJECT_JSON.format(name=name), timeout=30) as resp:  # noqa: S310 - a constant https URL
            data: dict[str, Any] = json.load(resp)
            return data
    except (urllib.error.URLError, TimeoutError, ValueError) as exc:
        raise Unreachable(f"{name}: {exc}") from None


def run_pip_audit() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "report.json")
        proc = subprocess.run(
            [sys.executable, "-m", "pip_audit", "--skip-editable", "--progress-spinner", "off",
             "--format", "json", "--output", out],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if not os.path.exists(out):
            tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise Unreachable(f"pip-audit exited {proc.returncode} without a report: {tail}")
        with open(out, encoding="utf-8") as f:
            report: dict[str, Any] = json.load(f)
            return report


def _normal(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def installed_versions() -> dict[str, str]:
    return {_normal(d.metadata["Name"]): d.version for d in metadata.distributions()}


def audit(
    report: dict[str, Any], versions: dict[str, str], fetch: Fetch
) -> tuple[list[str], int, list[str]]:
    """(known vulnerabilities as lines, distributions audited, those NOT audited)."""
    found: list[str] = []
    audited = 0
    unseen: list[str] = []
    for dep in report.get("dependencies", []):
        name = _normal(dep["name"])
        skip = dep.get("skip_reason")
        if skip is None:
            audited += 1
            found += [_line(name, dep.get("version", "?"), v) for v in dep.get("vulns", [])]
            continue
        if NOT_FOUND not in skip:
            continue  # sealbox itself (editable)
        version = versions.get(name)
        project = fetch(name)
        if version is None or project.get("info", {}).get("version") != version:
            unseen.append(f"{name} {version}")
            continue
        audited += 1
        for vuln in project.get("vulnerabilities") or []:
            if not vuln.get("withdrawn"):
                found.append(_line(name, version, vuln))
    return found, audited, unseen


def _line(name: str, version: str, vuln: dict[str, Any]) -> str:
    fixes = ", ".join(vuln.get("fix_versions") or vuln.get("fixed_in") or []) or "none yet"
    return f"{name} {version}: {vuln.get('id', '?')} (fixed in: {fixes})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", help="a pip-audit JSON report to read instead of running it")
    args = parser.parse_args(argv)
    try:
        if args.report:
            with open(args.report, encoding="utf-8") as f:
                report = json.load(f)
        else:
            report = run_pip_audit()
        found, audited, unseen = audit(report, installed_versions(), fetch_project)
    except Unreachable as exc:
        print(f"pip-audit: the vulnerability service could not be reached: {exc}", file=sys.stderr)
        return 2
    for line in found:
        print(f"pip-audit: VULNERABLE {line}")
    for item in unseen:
        print(f"pip-audit: NOT AUDITED {item} (the service has no data for this release)")
    print(
        f"pip-audit: {audited} distributions audited, {len(unseen)} not audited, "
        f"{len(found)} known vulnerabilities"
    )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
