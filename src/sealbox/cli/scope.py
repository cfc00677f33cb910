"""Scope and vault helpers for commands, free of click so the fast `run` path can use them."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sealbox.errors import InvalidInput
from sealbox.model import SecretRef

if TYPE_CHECKING:
    from sealbox.api import VaultAPI


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


def open_vault(source: str = "cli", *, prefer_offline: bool = False) -> VaultAPI:
    """The embedded vault, or the server's when SEALBOX_ADDR is set (remote mode)."""
    from sealbox.factory import connect

    vault = connect(prompt=tty_prompt(), source=source, prefer_offline=prefer_offline)
    if getattr(vault, "audit_fail_open", False):
        import sys

        print(
            "sealbox: WARNING: audit fail-open is on (--audit-fail-open, SEALBOX_AUDIT_FAIL_OPEN"
            " or [audit] fail_open): operations run even if no audit sink records them."
            " Never use this outside development.",
            file=sys.stderr,
        )
    return vault


def resolve_scope(project: str | None, env: str | None) -> tuple[str, str]:
    from sealbox.config import select_scope

    return select_scope(
        project,
        env,
        os.environ,
        Path.cwd(),
        hint="pass --project and --env, or run `sealbox setup --project P --env E` here",
    )


def parse_only(only: str | None) -> list[str] | None:
    """``--only A,B``; an explicitly empty list is refused rather than meaning "all"."""
    if only is None:
        return None
    names = [n.strip() for n in only.split(",") if n.strip()]
    if not names:
        raise InvalidInput("--only names no secret; leave it out to use every secret")
    return names


def secret_ref(name: str, project: str | None, env: str | None) -> SecretRef:
    """NAME in the selected scope, or a full ``project/env/NAME`` path."""
    if "/" in name:
        return SecretRef.parse(name)
    p, e = resolve_scope(project, env)
    return SecretRef(p, e, name)
