"""Console-script entry point.

``sealbox run`` is the everyday path and has a start-up budget (DESIGN.md: ≤ 100 ms for
the whole process), so its common forms are parsed here without importing click (about
20 ms). Anything else — help, an unknown option, a malformed line — goes to the full
click CLI, which gives the same behaviour and the usual error messages.
"""

from __future__ import annotations

import sys

_VALUE_OPTS = {
    "--project": "project",
    "-p": "project",
    "--env": "env",
    "-e": "env",
    "--only": "only",
    "--on-change": "on_change",
    "--grace": "grace",
    "--mount": "mount",
    "--mount-format": "mount_format",
}
_FLAG_OPTS = {
    "--preserve-env": "preserve_env",
    "--prefer-offline": "prefer_offline",
    "--watch": "watch",
    "--env-too": "env_too",
}


def parse_run_args(args: list[str]) -> dict[str, object] | None:
    """Options and command of ``run ARGS``, or None to let click handle the line."""
    opts: dict[str, object] = {key: None for key in _VALUE_OPTS.values()}
    opts.update({key: False for key in _FLAG_OPTS.values()})
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            command = args[i + 1 :]
            if not command:
                return None
            opts["command"] = command
            return opts
        if arg in _FLAG_OPTS:
            opts[_FLAG_OPTS[arg]] = True
            i += 1
            continue
        key, sep, value = arg.partition("=")
        if key in _VALUE_OPTS and key.startswith("--") and sep:
            opts[_VALUE_OPTS[key]] = value
            i += 1
            continue
        if arg in _VALUE_OPTS and i + 1 < len(args) and not args[i + 1].startswith("-"):
            opts[_VALUE_OPTS[arg]] = args[i + 1]
            i += 2
            continue
        return None
    return None


def fast_run(args: list[str]) -> int | None:
    parsed = parse_run_args(args)
    if parsed is None:
        return None
    from sealbox.cli.run_core import run_command
    from sealbox.errors import SealboxError

    try:
        return run_command(
            project=parsed["project"],  # type: ignore[arg-type]
            env=parsed["env"],  # type: ignore[arg-type]
            only=parsed["only"],  # type: ignore[arg-type]
            preserve_env=bool(parsed["preserve_env"]),
            command=list(parsed["command"]),  # type: ignore[call-overload]
            prefer_offline=bool(parsed["prefer_offline"]),
            watch=bool(parsed["watch"]),
            on_change=parsed["on_change"],  # type: ignore[arg-type]
            grace=parsed["grace"],  # type: ignore[arg-type]
            mount=parsed["mount"],  # type: ignore[arg-type]
            mount_format=parsed["mount_format"],  # type: ignore[arg-type]
            env_too=bool(parsed["env_too"]),
        )
    except SealboxError as exc:
        from sealbox.cli.exit_codes import exit_status
        from sealbox.cli.hints import CLI_HINTS

        print(f"sealbox: error: {exc.diagnostics(CLI_HINTS)}", file=sys.stderr)
        return exit_status(exc)
    except KeyboardInterrupt:
        print("sealbox: interrupted", file=sys.stderr)
        return 130


def entrypoint() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["run"]:
        status = fast_run(argv[1:])
        if status is not None:
            sys.exit(status)
    from sealbox.cli.main import main

    sys.exit(main(argv))
