"""Helpers shared by CLI commands: opening the vault, scope resolution, output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import click

from sealbox.cli.scope import open_vault, resolve_scope, secret_ref, tty_prompt

__all__ = ["open_vault", "resolve_scope", "secret_ref", "tty_prompt"]

F = TypeVar("F", bound=Callable[..., Any])


def scope_options(func: F) -> F:
    """``--project/-p`` and ``--env/-e`` (else SEALBOX_PROJECT/ENV, else sealbox.toml)."""
    func = click.option(
        "--env", "-e", "env", default=None, help="Environment (default: from sealbox.toml)."
    )(func)
    func = click.option(
        "--project", "-p", "project", default=None, help="Project (default: from sealbox.toml)."
    )(func)
    return func


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")(
        func
    )


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, show_edge=False, header_style="bold")
    for col in columns:
        t.add_column(col)
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    Console().print(t)


def warn(message: str) -> None:
    click.echo(f"sealbox: warning: {message}", err=True)


def info(message: str) -> None:
    click.echo(message, err=True)


def stdin_is_tty() -> bool:
    return sys.stdin.isatty()
