"""Starting a command with secrets in its environment.

The command replaces the sealbox process (``execvpe``): signals reach it directly, its
exit status is the exit status, and no sealbox process stays resident holding values.

A POSIX environment is bytes, and so is a secret's value: the child's environment is
built from ``os.environb`` and :meth:`~sealbox.model.SecretValue.reveal_bytes`, so a
value that is not UTF-8 reaches the command byte for byte (never decoded, re-encoded in
the locale's encoding or replaced by U+FFFD). The one byte an environment variable cannot
carry is NUL: a value holding one is refused, naming the variable, never truncated.
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

#: An environment as ``execve`` takes it: bytes names and bytes values.
Environ = dict[bytes, bytes]


def parent_environment() -> Environ:
    """This process's environment (as bytes) without the remote-mode credentials."""
    withheld = {name.encode() for name in WITHHELD_REMOTE}
    return {k: v for k, v in os.environb.items() if k not in withheld}


def environ_bytes(parent: Mapping[str, str] | Mapping[bytes, bytes]) -> Environ:
    """An environment with text names or values as ``execve`` takes it (``os.fsencode``)."""
    return {
        (k if isinstance(k, bytes) else os.fsencode(k)): (
            v if isinstance(v, bytes) else os.fsencode(v)
        )
        for k, v in parent.items()
    }


def env_key(name: str) -> bytes:
    """``name`` as an environment variable's name (400 if no environment can hold it)."""
    key = name.encode("utf-8", errors="surrogateescape")
    if not key or b"=" in key or b"\x00" in key:
        raise InvalidInput(
            f"secret {name[:80]!r} cannot be an environment variable: a variable's name "
            "cannot be empty or hold '=' or a NUL byte"
        )
    return key


def child_environment(
    parent: Mapping[str, str] | Mapping[bytes, bytes],
    secrets: Mapping[str, SecretValue],
    *,
    preserve_env: bool = False,
) -> Environ:
    """The command's environment: ``parent`` without the vault's credentials, plus every
    secret's exact bytes (``preserve_env``: a variable already set keeps its value)."""
    withheld = {name.encode() for name in WITHHELD}
    env = {k: v for k, v in environ_bytes(parent).items() if k not in withheld}
    for name, value in secrets.items():
        key = env_key(name)
        if preserve_env and key in env:
            continue
        raw = value.reveal_bytes()
        if b"\x00" in raw:
            raise InvalidInput(
                f"secret {name} holds a NUL byte, which an environment variable cannot "
                "carry (it would be cut short there); nothing was run. Deliver it as a "
                "file instead (a mount in the JSON format carries it)"
            )
        env[key] = raw
    return env


def exec_command(argv: Sequence[str], env: Mapping[bytes, bytes]) -> None:
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
