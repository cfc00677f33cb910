"""``sealbox import``, ``export`` and ``example``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from sealbox.cli.common import (
    emit_json,
    info,
    json_option,
    open_vault,
    resolve_scope,
    scope_options,
    warn,
)
from sealbox.errors import InvalidInput


@click.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.option("--skip-invalid", is_flag=True, help="Import the good lines even if some are bad.")
@scope_options
@json_option
def import_cmd(
    file: Path, skip_invalid: bool, project: str | None, env: str | None, as_json: bool
) -> None:
    """Import NAME=value lines from a .env FILE (- for stdin).

    Nothing is written if any line is bad, unless --skip-invalid.
    """
    from sealbox.delivery.dotenv_io import parse_dotenv
    from sealbox.model import SecretRef, SecretValue

    p, e = resolve_scope(project, env)
    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"{file} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}") from None
    parsed = parse_dotenv(text, source=str(file))
    if parsed.errors:
        for err in parsed.errors:
            click.echo(f"sealbox: {err}", err=True)
        if not skip_invalid:
            raise InvalidInput(
                f"{len(parsed.errors)} bad line(s) in {file}; nothing imported",
                hint="fix them, or pass --skip-invalid to import the rest",
            )
    vault = open_vault()
    written = {}
    try:
        for name, value in parsed.values.items():
            written[name] = vault.set(SecretRef(p, e, name), SecretValue(value))
    finally:
        vault.close()
    if as_json:
        emit_json({"imported": written, "skipped_lines": len(parsed.errors)})
    else:
        info(f"Imported {len(written)} secret(s) into {p}/{e}")


@click.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["dotenv", "json", "shell"]),
    default="dotenv",
    show_default=True,
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write to a file (created 0600) instead of stdout.",
)
@click.option("--only", default=None, help="Only these secrets (comma-separated).")
@scope_options
def export_cmd(
    fmt: str, output: Path | None, only: str | None, project: str | None, env: str | None
) -> None:
    """Print (or write) the environment's secrets as dotenv, JSON or shell exports."""
    from sealbox.cli.scope import parse_only
    from sealbox.config import atomic_write
    from sealbox.delivery.dotenv_io import render

    p, e = resolve_scope(project, env)
    names = parse_only(only)
    vault = open_vault()
    try:
        values = vault.resolve(p, e, only=names, purpose="export")
    finally:
        vault.close()
    text = render(values, fmt)
    if output is None:
        if sys.stdout.isatty():
            warn("printing secret values to the terminal")
        # UTF-8 whatever the locale: the bytes a file written with --output would hold.
        sys.stdout.flush()
        sys.stdout.buffer.write(text.encode())
        sys.stdout.buffer.flush()
    else:
        atomic_write(output, text.encode(), mode=0o600)
        info(f"Wrote {len(values)} secret(s) to {output} (0600)")


@click.command("example")
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path(".env.example"),
    show_default=True,
)
@scope_options
def example_cmd(output: Path, project: str | None, env: str | None) -> None:
    """Write .env.example with every key of the environment and a placeholder only."""
    from sealbox.config import atomic_write
    from sealbox.delivery.dotenv_io import render_example

    p, e = resolve_scope(project, env)
    vault = open_vault()
    try:
        items = vault.list_secrets(p, e)
    finally:
        vault.close()
    comments = {s.ref.name: s.meta.purpose or "" for s in items}
    atomic_write(output, render_example([s.ref.name for s in items], comments).encode(), mode=0o644)
    info(f"Wrote {output} with {len(items)} key(s)")
