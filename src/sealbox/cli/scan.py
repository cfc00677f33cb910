"""``sealbox scan``: find leaked secrets in files, git history, staged changes or stdin.

Exit status: 0 clean, 1 findings (new ones, when a baseline is given), 2 error. This command
maps its own errors to 2 (rather than the group's per-error table) because scanners are
driven by hooks and CI, which expect exactly these three codes.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

import click

from sealbox import errors
from sealbox.cli.hints import CLI_HINTS

MAX_NOTES_SHOWN = 20


def _known_detector(no_vault: bool, notes: list[str]) -> object | None:
    """Known values from the vault, or None with a note saying why not."""
    if no_vault:
        return None
    from sealbox.factory import open_vault
    from sealbox.scan.detectors.known import KnownValuesDetector

    try:
        # No prompt: a pre-commit hook must never stop to ask for a passphrase.
        vault = open_vault(source="scan")
        try:
            return KnownValuesDetector(vault.inventory.known_values())
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
    no_ignore: bool,
    baseline: Path | None,
    update_baseline: bool,
    config_path: Path | None,
    disable_rule: tuple[str, ...],
    no_vault: bool,
    max_file_size: str | None,
    jobs: int,
    min_confidence: str,
    rules_path: Path | None,
) -> int:
    from sealbox.scan import allow, git, report, runner, walk
    from sealbox.scan.diff import looks_like_diff
    from sealbox.scan.engine import Engine, EngineOptions
    from sealbox.scan.findings import Confidence, ScanResult
    from sealbox.scan.rules import load_rules
    from sealbox.scan.text import ScanText

    modes = sum((bool(paths), git_repo is not None, staged))
    if modes > 1:
        raise errors.InvalidInput("give PATHs, --git or --staged, not several of them")
    if "-" in paths and len(paths) > 1:
        raise errors.InvalidInput("'-' (stdin) cannot be combined with other paths")
    if update_baseline and baseline is None:
        raise errors.InvalidInput("--update-baseline needs --baseline FILE")

    cwd = Path.cwd()
    if git_repo is not None:
        root = git.repo_root(Path(git_repo))
    elif staged:
        root = git.repo_root(cwd)
    elif len(paths) == 1 and paths[0] != "-" and Path(paths[0]).is_dir():
        root = Path(paths[0])
    else:
        root = cwd
    config = allow.load_config(config_path) if config_path else allow.find_config(root)
    rules = load_rules(rules_path)
    known_ids = rules.ids() | {"generic-secret-assignment", "sealbox-known-value"}
    unknown = (set(disable_rule) | config.disable_rules) - known_ids
    if unknown:
        raise errors.InvalidInput(f"cannot disable unknown rule(s): {', '.join(sorted(unknown))}")
    config = dataclasses.replace(config, disable_rules=config.disable_rules | set(disable_rule))
    if max_file_size is not None:
        max_size = allow.parse_size(max_file_size)
    else:
        max_size = config.max_file_size or walk.DEFAULT_MAX_FILE_SIZE
    jobs = jobs or runner.default_jobs()

    pre_notes: list[str] = []
    known = _known_detector(no_vault, pre_notes)
    from sealbox.scan.detectors.known import KnownValuesDetector

    engine = Engine(
        rules,
        config=config,
        known=known if isinstance(known, KnownValuesDetector) else None,
        options=EngineOptions(min_confidence=Confidence(min_confidence)),
    )

    if git_repo is not None:
        result = git.scan_history(engine, root, jobs=jobs, max_size=max_size)
    elif staged:
        _, diff = git.staged_diff(root)
        result = runner.run_batches(
            engine, runner.scan_diff_batch, [[(b"", diff)]], jobs=1, max_size=max_size
        )
    elif paths == ("-",):
        data = sys.stdin.buffer.read()
        if looks_like_diff(data):
            result = runner.run_batches(
                engine, runner.scan_diff_batch, [[(b"", data)]], jobs=1, max_size=max_size
            )
        else:
            result = ScanResult(files_scanned=1, bytes_scanned=len(data))
            result.findings = engine.scan_text(ScanText(data, "<stdin>"), result.notes)
    else:
        entries: list[walk.FileEntry] = []
        notes: list[str] = []
        for p in paths or (".",):
            target = Path(p)
            if not os.path.lexists(target):
                raise errors.InvalidInput(f"{p}: no such file or directory")
            for e in walk.walk(target, no_ignore=no_ignore, notes=notes):
                if target.resolve() == root.resolve() and target.is_dir():
                    entries.append(e)
                elif target.is_dir():
                    entries.append(dataclasses.replace(e, relpath=os.path.join(p, e.relpath)))
                else:
                    entries.append(dataclasses.replace(e, relpath=os.path.normpath(p)))
        result = runner.scan_files(engine, entries, jobs=jobs, max_size=max_size)
        result.notes[:0] = notes
    result.notes[:0] = pre_notes
    findings = sorted(result.findings, key=lambda f: f.sort_key())

    if baseline is not None and update_baseline:
        allow.write_baseline(baseline, findings)
        click.echo(
            f"sealbox: baseline {baseline} written with {len(findings)} finding(s)", err=True
        )
        return 2 if result.errors else 0
    if baseline is not None:
        findings = allow.load_baseline(baseline).filter(findings)

    for note in result.notes[:MAX_NOTES_SHOWN]:
        click.echo(f"note: {note}", err=True)
    if len(result.notes) > MAX_NOTES_SHOWN:
        click.echo(f"note: … {len(result.notes) - MAX_NOTES_SHOWN} more notes", err=True)
    for err in result.errors:
        click.echo(f"sealbox: error: {err}", err=True)

    if fmt == "json":
        text = report.to_json(result, findings)
    elif fmt == "sarif":
        text = report.to_sarif(result, findings, _tool_version())
    else:
        text = None
    try:
        if output is not None:
            with open(output, "w", encoding="utf-8") as fh:
                if text is None:
                    report.write_table(result, findings, fh)
                else:
                    fh.write(text)
        elif text is None:
            report.write_table(result, findings, sys.stdout)
        else:
            sys.stdout.write(text)
    except OSError as exc:
        raise errors.InvalidInput(f"cannot write report {output}: {exc.strerror}") from exc
    if result.errors:
        return 2
    return 1 if findings else 0
