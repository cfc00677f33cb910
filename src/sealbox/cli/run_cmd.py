"""``sealbox run -- CMD`` for click (the common forms take the fast path in ``entry``)."""

from __future__ import annotations

import click

from sealbox.cli.common import scope_options


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@scope_options
@click.option("--only", default=None, help="Inject only these secrets (comma-separated names).")
@click.option(
    "--preserve-env",
    is_flag=True,
    help="Variables already set in the environment win over secrets.",
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
def run(
    project: str | None,
    env: str | None,
    only: str | None,
    preserve_env: bool,
    command: tuple[str, ...],
) -> int:
    """Run COMMAND with the environment's secrets as environment variables.

    The command replaces sealbox (signals go straight to it; its exit status is
    sealbox's). SEALBOX_SESSION and SEALBOX_PASSPHRASE are not passed on.

    Example: sealbox run --env prod -- python app.py
    """
    from sealbox.cli.run_core import run_command

    return run_command(
        project=project, env=env, only=only, preserve_env=preserve_env, command=list(command)
    )
