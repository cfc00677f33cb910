"""``sealbox doctor``."""

from __future__ import annotations

from pathlib import Path

import click

from sealbox.cli.common import emit_json, json_option, tty_prompt

MARKS = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[red]FAIL[/]"}


@click.command()
@click.option(
    "--dir", "directory", type=click.Path(path_type=Path, file_okay=False, exists=True), default="."
)
@json_option
def doctor(directory: Path, as_json: bool) -> int:
    """Check .env files, key file permissions, the project binding and vault integrity."""
    from sealbox.doctor import run_checks

    findings = run_checks(directory.resolve(), prompt=tty_prompt())
    failed = any(f.level == "fail" for f in findings)
    if as_json:
        emit_json([{"level": f.level, "check": f.check, "message": f.message} for f in findings])
    else:
        from rich.console import Console
        from rich.markup import escape

        console = Console()
        for f in findings:
            console.print(f"{MARKS[f.level]:>6}  {f.check:<10} {escape(f.message)}")
    return 1 if failed else 0
