"""``sealbox scan``: find leaked secrets in files, git history, staged changes or stdin.

Exit status: 0 clean, 1 findings (new ones, when a baseline is given), 2 error. This command
maps its own errors to 2 (rather than the group's per-error table) because scanners are
driven by hooks and CI, which expect exactly these three codes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sealbox import errors
from sealbox.cli.hints import CLI_HINTS

if TYPE_CHECKING:
    from sealbox.scan.detectors.known import KnownValue
    from sealbox.scan.findings import ScanResult
    from sealbox.scan.scanner import ScanOptions, ScanReport

MAX_NOTES_SHOWN = 20


def _known_values(notes: list[str]) -> list[KnownValue] | None:
    """Every version of every secret in the vault, or None with a note saying why not."""
    from sealbox.factory import open_vault

    try:
        # No prompt: a pre-commit hook must never stop to ask for a passphrase.
        vault = open_vault(source="scan")
        try:
            return list(vault.inventory.known_values())
        finally:
            vault.close()
    except errors.Sealed:
        notes.append("known-value detection skipped: vault locked — run sealbox unlock")
    except errors.NotInitialised:
        notes.append("known-value detection skipped: no vault here (sealbox init creates one)")
    except errors.SealboxError as exc:
        notes.append(f"known-value detection skipped: {exc.message}")
    return None


def _tool_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sealbox")
    except PackageNotFoundError:
        return "0.0.0"


@click.command("scan")
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option(
    "--git",
    "git_repo",
    is_flag=False,
    flag_value=".",
    default=None,
    metavar="[REPO]",
    help="Scan the history of every branch of REPO (default: the current directory).",
)
@click.option("--staged", is_flag=True, help="Scan the changes staged for commit.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "sarif"]),
    default="table",
    show_default=True,
    help="Report format.",
)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write the report here."
)
@click.option("--no-ignore", is_flag=True, help="Also scan files that .gitignore excludes.")
@click.option(
    "--baseline",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Report only findings that are not in this baseline file.",
)
@click.option(
    "--update-baseline",
    is_flag=True,
    help="Write every current finding to the --baseline file and exit 0.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Scan config (default: .sealbox-scan.toml at the scan root).",
)
@click.option("--disable-rule", multiple=True, metavar="ID", help="Do not run this rule.")
@click.option("--no-vault", is_flag=True, help="Do not look for the vault's known values.")
@click.option("--max-file-size", default=None, metavar="SIZE", help="Skip larger files [10MiB].")
@click.option(
    "--jobs", "-j", type=click.IntRange(min=0), default=0, help="Processes (0 = all cores)."
)
@click.option(
    "--min-confidence",
    type=click.Choice(["low", "medium", "high"]),
    default="medium",
    show_default=True,
    help="Report only findings at least this sure (low adds encrypted keys, fixtures, weak"
    " values).",
)
@click.option(
    "--rules",
    "rules_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Use this rules file instead of the built-in rules.",
)
def scan_command(**options: Any) -> int:
    """Find leaked secrets in PATHs (default: .), git history, staged changes or stdin (-).

    \b
    sealbox scan                     this directory (respects .gitignore)
    sealbox scan --git               every commit of every branch
    sealbox scan --staged            what the next commit adds (pre-commit hook)
    git diff main | sealbox scan -   added lines of a diff, or any text (logs)

    Exit status: 0 nothing found, 1 findings, 2 error.
    """
    try:
        return _run(**options)
    except errors.SealboxError as exc:
        click.echo(f"sealbox: error: {exc.diagnostics(CLI_HINTS)}", err=True)
        return 2


def _run(
    paths: tuple[str, ...],
    git_repo: str | None,
    staged: bool,
    fmt: str,
    output: Path | None,
    baseline: Path | None,
    update_baseline: bool,
    no_vault: bool,
    **flags: Any,
) -> int:
    from sealbox.scan import allow
    from sealbox.scan.scanner import Scanner, Target

    options = _options(paths, git_repo, staged, baseline, update_baseline, **flags)
    scanner = Scanner(options)
    notes: list[str] = []
    known = None if no_vault else _known_values(notes)
    stream = sys.stdin.buffer if options.target is Target.STREAM else None
    report = scanner.run(known, stream=stream, notes=notes)
    if baseline is not None and update_baseline:
        allow.write_baseline(baseline, report.findings)
        click.echo(
            f"sealbox: baseline {baseline} written with {len(report.findings)} finding(s)",
            err=True,
        )
        return 2 if report.failed else 0
    _print_notes(report.result)
    _write_report(report, fmt, output)
    if report.failed:
        return 2
    return 1 if report.findings else 0


def _options(
    paths: tuple[str, ...],
    git_repo: str | None,
    staged: bool,
    baseline: Path | None,
    update_baseline: bool,
    *,
    no_ignore: bool,
    config_path: Path | None,
    disable_rule: tuple[str, ...],
    max_file_size: str | None,
    jobs: int,
    min_confidence: str,
    rules_path: Path | None,
) -> ScanOptions:
    """The flags as scan options; InvalidInput for flags that do not go together."""
    from sealbox.scan.findings import Confidence
    from sealbox.scan.scanner import ScanOptions, Target

    if sum((bool(paths), git_repo is not None, staged)) > 1:
        raise errors.InvalidInput("give PATHs, --git or --staged, not several of them")
    if "-" in paths and len(paths) > 1:
        raise errors.InvalidInput("'-' (stdin) cannot be combined with other paths")
    if update_baseline and baseline is None:
        raise errors.InvalidInput("--update-baseline needs --baseline FILE")
    if git_repo is not None:
        target, repo = Target.HISTORY, Path(git_repo)
    elif staged:
        target, repo = Target.STAGED, None
    else:
        target, repo = (Target.STREAM if paths == ("-",) else Target.FILES), None
    return ScanOptions(
        target=target,
        paths=paths if target is Target.FILES else (),
        repo=repo,
        no_ignore=no_ignore,
        config_path=config_path,
        rules_path=rules_path,
        disable_rules=frozenset(disable_rule),
        max_file_size=max_file_size,
        jobs=jobs,
        min_confidence=Confidence(min_confidence),
        # --update-baseline rewrites the file from every finding, so nothing is filtered
        baseline=None if update_baseline else baseline,
    )


def _print_notes(result: ScanResult) -> None:
    for note in result.notes[:MAX_NOTES_SHOWN]:
        click.echo(f"note: {note}", err=True)
    if len(result.notes) > MAX_NOTES_SHOWN:
        click.echo(f"note: … {len(result.notes) - MAX_NOTES_SHOWN} more notes", err=True)
    for err in result.errors:
        click.echo(f"sealbox: error: {err}", err=True)


def _write_report(report: ScanReport, fmt: str, output: Path | None) -> None:
    """The report in ``fmt`` to ``output`` (default: stdout)."""
    from sealbox.scan import report as render

    result, findings = report.result, report.findings
    if fmt == "json":
        text = render.to_json(result, findings)
    elif fmt == "sarif":
        text = render.to_sarif(result, findings, _tool_version())
    else:
        text = None
    try:
        if output is not None:
            with open(output, "w", encoding="utf-8") as fh:
                if text is None:
                    render.write_table(result, findings, fh)
                else:
                    fh.write(text)
        elif text is None:
            render.write_table(result, findings, sys.stdout)
        else:
            sys.stdout.write(text)
    except OSError as exc:
        raise errors.InvalidInput(f"cannot write report {output}: {exc.strerror}") from exc
