"""Console-script entry point, and the one place the CLI turns errors into exit statuses.

``sealbox run`` is the everyday path and has a start-up budget (DESIGN.md: ≤ 100 ms for
the whole process), so a ``run`` line is parsed here by :mod:`sealbox.cli.run_args` (the
only parser of ``run``) without importing click (about 20 ms). Help and a malformed line
go to the full click CLI, which shows them from the same option table.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


def guarded(action: Callable[[], int]) -> int:
    """``action()``'s exit status; a :class:`~sealbox.errors.SealboxError` becomes its
    message on stderr and its status (:mod:`sealbox.cli.exit_codes`), Ctrl-C becomes 130."""
    from sealbox.errors import SealboxError

    try:
        return action()
    except SealboxError as exc:
        from sealbox.cli.exit_codes import exit_status
        from sealbox.cli.hints import CLI_HINTS

        print(f"sealbox: error: {exc.diagnostics(CLI_HINTS)}", file=sys.stderr)
        return exit_status(exc)
    except KeyboardInterrupt:
        print("sealbox: interrupted", file=sys.stderr)
        return 130


def fast_run(args: list[str]) -> int | None:
    """``sealbox run ARGS`` without click, or None when click must show help or an error."""
    from sealbox.cli.run_args import RunUsageError, parse_run_args

    try:
        parsed = parse_run_args(args)
    except RunUsageError:
        return None
    if parsed.help:
        return None
    from sealbox.cli.run_core import run_command

    return guarded(lambda: run_command(parsed))


def entrypoint() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["run"]:
        status = fast_run(argv[1:])
        if status is not None:
            sys.exit(status)
    from sealbox.cli.main import main

    sys.exit(main(argv))
