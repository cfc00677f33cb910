"""The one parser of ``sealbox run``'s arguments, free of click.

``sealbox run`` has a start-up budget (DESIGN.md: ≤ 100 ms for the whole process) and
importing click costs about 20 ms, so every line that runs a command is parsed here, by the
console script, without click. The options are declared once, in :data:`OPTIONS`; the click
command in :mod:`sealbox.cli.run_cmd` is generated from the same table (for ``--help`` and
for the usage line of an error) and hands its arguments to :func:`parse_run_args` too.

The grammar is click's for a command with ``allow_interspersed_args=False`` and
``ignore_unknown_options=True``: options come first; the first plain argument (or ``--``)
starts COMMAND; an unknown option is passed on to COMMAND; ``-pVALUE``, ``--opt=VALUE``
and a repeated option (the last wins) work as in click. ``tests/unit/cli/test_run_args.py``
checks this against click's own parser.
"""

from __future__ import annotations

from typing import NamedTuple


class Opt(NamedTuple):
    """One option of ``sealbox run``: its names, where its value goes, its help text."""

    names: tuple[str, ...]
    dest: str
    help: str
    takes_value: bool = True
    choices: tuple[str, ...] = ()


OPTIONS: tuple[Opt, ...] = (
    Opt(("--project", "-p"), "project", "Project (default: from sealbox.toml)."),
    Opt(("--env", "-e"), "env", "Environment (default: from sealbox.toml)."),
    Opt(("--only",), "only", "Inject only these secrets (comma-separated names)."),
    Opt(
        ("--preserve-env",),
        "preserve_env",
        "Variables already set in the environment win over secrets.",
        takes_value=False,
    ),
    Opt(
        ("--prefer-offline",),
        "prefer_offline",
        "Remote mode: use the encrypted offline copy first when it is recent enough "
        "(SEALBOX_OFFLINE_MAX_AGE, default 24h).",
        takes_value=False,
    ),
    Opt(
        ("--watch",),
        "watch",
        "Stay as a supervisor; act when a secret the command uses changes.",
        takes_value=False,
    ),
    Opt(
        ("--on-change",),
        "on_change",
        "With --watch: restart (default) or signal:NAME, e.g. signal:HUP.",
    ),
    Opt(("--grace",), "grace", "With --watch: time between SIGTERM and SIGKILL (default 10s)."),
    Opt(
        ("--mount",),
        "mount",
        "Deliver the secrets as a 0600 file instead of variables: a file name (placed on "
        "tmpfs) or an absolute path; its path is in SEALBOX_SECRETS_FILE.",
    ),
    Opt(
        ("--mount-format",),
        "mount_format",
        "Format of the --mount file (default dotenv).",
        choices=("dotenv", "json"),
    ),
    Opt(("--env-too",), "env_too", "With --mount: also set the variables.", takes_value=False),
    Opt(
        ("--creds",),
        "creds",
        "Dynamic database credentials: VAR=project/env/role[,…] sets VAR_USERNAME, "
        "VAR_PASSWORD, VAR_URL and VAR_LEASE_ID; the lease is renewed while the command "
        "runs and revoked when it exits.",
    ),
)
#: The help option's names (the CLI group's ``help_option_names``).
HELP_NAMES = ("-h", "--help")
#: The positional argument's name as click shows it in messages.
COMMAND_METAVAR = "COMMAND..."


class RunArgs(NamedTuple):
    """A parsed ``sealbox run`` line."""

    command: tuple[str, ...] = ()
    project: str | None = None
    env: str | None = None
    only: str | None = None
    preserve_env: bool = False
    prefer_offline: bool = False
    watch: bool = False
    on_change: str | None = None
    grace: str | None = None
    mount: str | None = None
    mount_format: str | None = None
    env_too: bool = False
    creds: str | None = None
    #: ``-h``/``--help`` was given: show the help instead of running anything.
    help: bool = False


class RunUsageError(Exception):
    """A malformed ``run`` line; the message is click's wording for the same mistake."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


_HELP = Opt(HELP_NAMES, "help", "Show this message and exit.", takes_value=False)
_BY_NAME: dict[str, Opt] = {name: opt for opt in (*OPTIONS, _HELP) for name in opt.names}


def parse_run_args(args: list[str]) -> RunArgs:
    """``run ARGS`` as :class:`RunArgs`; raises :class:`RunUsageError` for a malformed line."""
    values, command = _split(args)
    # Then click's order: help first, then each value's check, then the missing command.
    if values.get("help"):
        return RunArgs(help=True)
    for opt in OPTIONS:
        value = values.get(opt.dest)
        if opt.choices and value is not None and value not in opt.choices:
            shown = ", ".join(repr(c) for c in opt.choices)
            raise RunUsageError(
                f"Invalid value for {opt.names[0]!r}: {value!r} is not one of {shown}."
            )
    if not command:
        raise RunUsageError(f"Missing argument {COMMAND_METAVAR!r}.")
    # Each dest is a RunArgs field of the option's kind (checked by the tests).
    fields = {**RunArgs._field_defaults, **values, "command": command}
    return RunArgs._make(fields[name] for name in RunArgs._fields)


def _split(args: list[str]) -> tuple[dict[str, str | bool], tuple[str, ...]]:
    """The options' values (by dest) and the command, as click's parser splits them."""
    rest = list(args)
    passed_on: list[str] = []  # unknown options, handed to the command
    values: dict[str, str | bool] = {}

    def take_value(name: str) -> str:
        if not rest:
            raise RunUsageError(f"Option {name!r} requires an argument.")
        return rest.pop(0)

    def short_cluster(arg: str) -> None:
        # "-pVALUE", "-p VALUE"; unknown letters are passed on as one "-xy".
        unknown = []
        for i, letter in enumerate(arg[1:], start=2):
            opt = _BY_NAME.get(f"-{letter}")
            if opt is None:
                unknown.append(letter)
            elif not opt.takes_value:
                values[opt.dest] = True
            else:
                values[opt.dest] = arg[i:] if i < len(arg) else take_value(f"-{letter}")
                break
        if unknown:
            passed_on.append("-" + "".join(unknown))

    while rest:
        arg = rest.pop(0)
        if arg == "--":
            break
        if not arg.startswith("-") or arg == "-":
            rest.insert(0, arg)
            break
        name, eq, explicit = arg.partition("=")
        opt = _BY_NAME.get(name) if name.startswith("--") else None
        if opt is None:
            if arg.startswith("--"):
                passed_on.append(arg)
            else:
                short_cluster(arg)
        elif opt.takes_value:
            values[opt.dest] = explicit if eq else take_value(name)
        elif eq:
            raise RunUsageError(f"Option {name!r} does not take a value.")
        else:
            values[opt.dest] = True
    return values, (*passed_on, *rest)
