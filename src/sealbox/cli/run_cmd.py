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
@click.option(
    "--prefer-offline",
    is_flag=True,
    help="Remote mode: use the encrypted offline copy first when it is recent enough "
    "(SEALBOX_OFFLINE_MAX_AGE, default 24h).",
)
@click.option(
    "--watch",
    is_flag=True,
    help="Stay as a supervisor; act when a secret the command uses changes.",
)
@click.option(
    "--on-change",
    default=None,
    help="With --watch: restart (default) or signal:NAME, e.g. signal:HUP.",
)
@click.option(
    "--grace", default=None, help="With --watch: time between SIGTERM and SIGKILL (default 10s)."
)
@click.option(
    "--mount",
    default=None,
    help="Deliver the secrets as a 0600 file instead of variables: a file name (placed on "
    "tmpfs) or an absolute path; its path is in SEALBOX_SECRETS_FILE.",
)
@click.option(
    "--mount-format",
    type=click.Choice(["dotenv", "json"]),
    default=None,
    help="Format of the --mount file (default dotenv).",
)
@click.option("--env-too", is_flag=True, help="With --mount: also set the variables.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
def run(
    project: str | None,
    env: str | None,
    only: str | None,
    preserve_env: bool,
    prefer_offline: bool,
    watch: bool,
    on_change: str | None,
    grace: str | None,
    mount: str | None,
    mount_format: str | None,
    env_too: bool,
    command: tuple[str, ...],
) -> int:
    """Run COMMAND with the environment's secrets as environment variables.

    The command replaces sealbox (signals go straight to it; its exit status is
    sealbox's). SEALBOX_SESSION, SEALBOX_PASSPHRASE and SEALBOX_TOKEN are not passed on.
    With --watch or --mount sealbox stays as a supervising parent: it forwards SIGINT,
    SIGTERM and SIGHUP, exits with the command's status, and removes the --mount file
    when the command ends.

    Example: sealbox run --env prod -- python app.py
    """
    from sealbox.cli.run_core import run_command

    return run_command(
        project=project,
        env=env,
        only=only,
        preserve_env=preserve_env,
        command=list(command),
        prefer_offline=prefer_offline,
        watch=watch,
        on_change=on_change,
        grace=grace,
        mount=mount,
        mount_format=mount_format,
        env_too=env_too,
    )
