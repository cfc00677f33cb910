"""What ``sealbox run`` does once its arguments are parsed (shared by both parsers)."""

from __future__ import annotations

import os
import sys

from sealbox.cli.scope import open_vault, parse_only, resolve_scope
from sealbox.errors import InvalidInput, NotFound


def run_command(
    *,
    project: str | None,
    env: str | None,
    only: str | None,
    preserve_env: bool,
    command: list[str],
) -> int:
    from sealbox.delivery.process import child_environment, exec_command

    if not command:
        raise InvalidInput("no command given: use `sealbox run -- COMMAND [ARGS…]`")
    p, e = resolve_scope(project, env)
    names = parse_only(only)
    vault = open_vault()
    try:
        secrets = vault.resolve(p, e, only=names, purpose="run")
    finally:
        vault.close()
    child_env = child_environment(os.environ, secrets, preserve_env=preserve_env)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        exec_command(command, child_env)
    except NotFound as exc:
        print(f"sealbox: {exc.message}", file=sys.stderr)
        return 127
    except InvalidInput as exc:
        print(f"sealbox: {exc.message}", file=sys.stderr)
        return 126
    return 0  # pragma: no cover - exec does not return
