"""Starting a command with secrets in its environment.

The command replaces the sealbox process (``execvpe``): signals reach it directly, its
exit status is the exit status, and no sealbox process stays resident holding values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from sealbox.errors import InvalidInput, NotFound
from sealbox.model import SecretValue

#: Never handed to the child: each of these can open the whole vault.
WITHHELD = ("SEALBOX_SESSION", "SEALBOX_PASSPHRASE", "SEALBOX_NEW_PASSPHRASE")
#: Never handed to the child in remote mode: each can read every secret the caller can.
WITHHELD_REMOTE = ("SEALBOX_TOKEN", "SEALBOX_PASSWORD")


def parent_environment() -> dict[str, str]:
    """This process's environment without the remote-mode credentials."""
    return {k: v for k, v in os.environ.items() if k not in WITHHELD_REMOTE}


def child_environment(
    parent: Mapping[str, str], secrets: Mapping[str, SecretValue], *, preserve_env: bool = False
) -> dict[str, str]:
    env = {k: v for k, v in parent.items() if k not in WITHHELD}
    for name, value in secrets.items():
        if preserve_env and name in env:
            continue
        text = value.reveal()
        if "\x00" in text:
            raise InvalidInput(
                f"secret {name} contains a NUL byte and cannot be an environment variable"
            )
        env[name] = text
    return env


def exec_command(argv: Sequence[str], env: Mapping[str, str]) -> None:
    """Replace this process with ``argv``; returns only by raising."""
    if not argv:
        raise InvalidInput(
            "no command given", hint="give the command to run", hint_key="run_command"
        )
    try:
        os.execvpe(argv[0], list(argv), dict(env))
    except FileNotFoundError:
        raise NotFound(f"command not found: {argv[0]}") from None
    except PermissionError:
        raise InvalidInput(f"command is not executable: {argv[0]}") from None
