"""Render a scan result: a table for people, JSON for tools, SARIF 2.1.0 for dashboards.

Every format shows secrets redacted to their first and last characters (known values by
path and version only); none of them can show a full value, because findings never hold one.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from typing import IO, Any

from sealbox.scan.findings import Confidence, Finding, ScanResult, Severity

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
INFO_URI = "https://github.com/sealbox/sealbox/blob/main/docs/scanner.md"
_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
}
#: SARIF ``rank`` (0-100, higher = more likely a true result) per confidence.
SARIF_RANK = {Confidence.HIGH: 90.0, Confidence.MEDIUM: 60.0, Confidence.LOW: 30.0}
_SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
}


class OutputFormat(enum.Enum):
    """The report formats."""

    TABLE = "table"
    JSON = "json"
    SARIF = "sarif"


def finding_dict(f: Finding) -> dict[str, Any]:
    """A finding as JSON-ready data (no value id: it is for in-memory grouping only)."""
    out: dict[str, Any] = {
        "rule_id": f.rule_id,
        "description": f.description,
        "severity": f.severity.value,
        "detector": f.detector.value,
        "path": f.path,
        "line": f.line,
        "column": f.column,
        "end_line": f.end_line,
        "secret": f.redacted,
        "fingerprint": f.fingerprint,
        "confidence": f.confidence.value,
    }
    if f.entropy is not None:
        out["entropy"] = f.entropy
    if f.commit is not None:
        out.update(
            commit=f.commit,
            author=f.author,
            date=f.date,
            last_commit=f.last_commit,
            last_date=f.last_date,
            occurrences=f.occurrences,
        )
    return out


def sarif_level(f: Finding) -> str:
    """The SARIF level: from the severity, one step milder for a low-confidence finding."""
    level = _LEVEL[f.severity]
    if f.confidence is Confidence.LOW:
        return {"error": "warning", "warning": "note"}.get(level, level)
    return level


def stats_dict(result: ScanResult) -> dict[str, Any]:
    """Counters of a scan."""
    return {
        "files_scanned": result.files_scanned,
        "bytes_scanned": result.bytes_scanned,
        "commits_scanned": result.commits_scanned,
        "skipped_binary": result.skipped_binary,
        "skipped_large": result.skipped_large,
        "skipped_unreadable": result.skipped_unreadable,
        "skipped_allowed": result.skipped_allowed,
    }


def to_json(result: ScanResult, findings: Sequence[Finding]) -> str:
    """The JSON report."""
    doc = {
        "version": 1,
        "tool": "sealbox",
        "findings": [finding_dict(f) for f in findings],
        "notes": list(result.notes),
        "errors": list(result.errors),
        "stats": stats_dict(result),
    }
    return json.dumps(doc, indent=2) + "\n"


def to_sarif(result: ScanResult, findings: Sequence[Finding], tool_version: str) -> str:
    """A SARIF 2.1.0 log with one run."""
    rules: dict[str, dict[str, Any]] = {}
    for f in findings:
        if f.rule_id not in rules:
            rules[f.rule_id] = {
                "id": f.rule_id,
                "name": f.rule_id,
                "shortDescription": {"text": f.description.split(" (")[0]},
                "defaultConfiguration": {"level": _LEVEL[f.severity]},
                "properties": {
                    "tags": ["security", "secret"],
                    "security-severity": _SECURITY_SEVERITY[f.severity],
                },
            }
    index = {rid: i for i, rid in enumerate(rules)}
    results = []
    for f in findings:
        region: dict[str, Any] = {"startLine": f.line, "startColumn": f.column}
        if f.end_line != f.line:
            region["endLine"] = f.end_line
        item: dict[str, Any] = {
            "ruleId": f.rule_id,
            "ruleIndex": index[f.rule_id],
            "level": sarif_level(f),
            "rank": SARIF_RANK[f.confidence],
            "message": {"text": f"{f.description}: {f.redacted}"},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": f.path.replace("\\", "/")},
                        "region": region,
                    }
                }
            ],
            "partialFingerprints": {"sealbox/v1": f.fingerprint},
        }
        item["properties"] = {"confidence": f.confidence.value}
        if f.commit is not None:
            item["properties"] |= {
                "commit": f.commit,
                "author": f.author,
                "date": f.date,
                "lastCommit": f.last_commit,
                "lastDate": f.last_date,
            }
        results.append(item)
    notifications = [{"message": {"text": n}, "level": "note"} for n in result.notes]
    notifications += [{"message": {"text": e}, "level": "error"} for e in result.errors]
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "sealbox",
                        "version": tool_version,
                        "informationUri": INFO_URI,
                        "rules": list(rules.values()),
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": not result.errors,
                        "toolExecutionNotifications": notifications,
                    }
                ],
                "results": results,
            }
        ],
    }
    return json.dumps(doc, indent=2) + "\n"


def write_table(result: ScanResult, findings: Sequence[Finding], out: IO[str]) -> None:
    """A readable table (rich), then a one-line summary."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(file=out, highlight=False, soft_wrap=False, width=160)
    history = any(f.commit for f in findings)
    if findings:
        table = Table(show_lines=False, header_style="bold")
        table.add_column("severity")
        table.add_column("rule")
        table.add_column("location", overflow="fold")
        table.add_column("secret")
        if history:
            table.add_column("commit (first…last)")
        for f in findings:
            row = [f.severity.value, f.rule_id, f"{f.path}:{f.line}", f.redacted]
            if history:
                first = (f.commit or "")[:10]
                last = (f.last_commit or "")[:10]
                row.append(first if last in ("", first) else f"{first}…{last}")
            table.add_row(*(Text(cell) for cell in row))
        console.print(table)
    mb = result.bytes_scanned / 1e6
    what = f"{result.commits_scanned} commits, " if result.commits_scanned else ""
    summary = (
        f"{len(findings)} finding(s) in {what}{result.files_scanned} file(s), {mb:.1f} MB"
        if findings
        else f"no leaks found in {what}{result.files_scanned} file(s), {mb:.1f} MB"
    )
    skipped = [
        f"{n} {what}"
        for n, what in (
            (result.skipped_binary, "binary"),
            (result.skipped_large, "too large"),
            (result.skipped_unreadable, "unreadable"),
            (result.skipped_allowed, "allow-listed"),
        )
        if n
    ]
    if skipped:
        summary += " (skipped: " + ", ".join(skipped) + ")"
    out.write(summary + "\n")
