"""``sealbox run`` as a click command, for ``--help``, usage errors and the in-process CLI.

Its options are generated from :data:`sealbox.cli.run_args.OPTIONS` and its arguments are
parsed by :func:`sealbox.cli.run_args.parse_run_args`, the same parser the console script
uses without click (see :mod:`sealbox.cli.entry`).
"""

from __future__ import annotations

import click

from sealbox.cli.run_args import OPTIONS, RunArgs, RunUsageError, parse_run_args


class RunCommand(click.Command):
    """A command whose declared options only describe it; ``parse_run_args`` parses."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            parsed = parse_run_args(args)
        except RunUsageError as exc:
            if ctx.resilient_parsing:  # shell completion: never fail
                return []
            raise click.UsageError(exc.message, ctx) from None
        if parsed.help and not ctx.resilient_parsing:
            click.echo(ctx.get_help(), color=ctx.color)
            ctx.exit()
        ctx.params = {"parsed": parsed}
        return []


def _run(parsed: RunArgs) -> int:
    """Run COMMAND with the environment's secrets as environment variables.

    The command replaces sealbox (signals go straight to it; its exit status is
    sealbox's). SEALBOX_SESSION, SEALBOX_PASSPHRASE and SEALBOX_TOKEN are not passed on.
    With --watch or --mount sealbox stays as a supervising parent: it forwards SIGINT,
    SIGTERM and SIGHUP, exits with the command's status, and removes the --mount file
    when the command ends.

    Example: sealbox run --env prod -- python app.py
    """
    from sealbox.cli.run_core import run_command

    return run_command(parsed)


def _params() -> list[click.Parameter]:
    params: list[click.Parameter] = []
    for opt in OPTIONS:
        if not opt.takes_value:
            params.append(click.Option([*opt.names, opt.dest], is_flag=True, help=opt.help))
            continue
        kind = click.Choice(opt.choices) if opt.choices else click.STRING
        params.append(click.Option([*opt.names, opt.dest], type=kind, help=opt.help))
    params.append(click.Argument(["command"], nargs=-1, type=click.UNPROCESSED, required=True))
    return params


run = RunCommand(
    "run",
    callback=_run,
    params=_params(),
    help=_run.__doc__,
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
