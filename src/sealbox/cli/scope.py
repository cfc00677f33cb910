"""Scope and vault helpers for commands, free of click so the fast `run` path can use them."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from sealbox.errors import InvalidInput
from sealbox.model import SecretRef
from sealbox.vault import Vault


def tty_prompt() -> Callable[[str], str] | None:
    """A hidden prompt on the controlling terminal, or None when there is none."""
    try:
        with open("/dev/tty"):
            pass
    except OSError:
        return None

    def prompt(label: str) -> str:
        import getpass

        return getpass.getpass(f"{label}: ")

    return prompt


def open_vault(source: str = "cli") -> Vault:
    from sealbox.factory import open_vault as _open

    return _open(prompt=tty_prompt(), source=source)


def resolve_scope(project: str | None, env: str | None) -> tuple[str, str]:
    project = project or os.environ.get("SEALBOX_PROJECT") or None
    env = env or os.environ.get("SEALBOX_ENV") or None
    if project is None or env is None:
        from sealbox.config import find_binding

        binding = find_binding(Path.cwd())
        if binding is not None:
            project = project or binding.project
            env = env or binding.env
    if project is None or env is None:
        raise InvalidInput(
            "no project/environment selected",
            hint="pass --project and --env, or run `sealbox setup --project P --env E` here",
        )
    return project, env


def secret_ref(name: str, project: str | None, env: str | None) -> SecretRef:
    """NAME in the selected scope, or a full ``project/env/NAME`` path."""
    if "/" in name:
        return SecretRef.parse(name)
    p, e = resolve_scope(project, env)
    return SecretRef(p, e, name)
