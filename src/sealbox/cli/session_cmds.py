"""``sealbox unlock``, ``lock`` and ``passphrase change``."""

from __future__ import annotations

import os

import click

from sealbox.cli.common import info, tty_prompt
from sealbox.errors import InvalidInput


@click.command()
@click.option(
    "--for",
    "duration",
    default="8h",
    show_default=True,
    help="How long the session lasts (e.g. 30m, 8h, 2d).",
)
def unlock(duration: str) -> None:
    """Unlock the vault for a while.

    Prints `export SEALBOX_SESSION=…`; use it as `eval "$(sealbox unlock)"`. While it is
    set and unexpired, commands need no passphrase. `sealbox lock` ends every session.
    """
    from sealbox.factory import unlock as _unlock
    from sealbox.vault import parse_duration

    env = {k: v for k, v in os.environ.items() if k != "SEALBOX_SESSION"}
    token, expires = _unlock(ttl=parse_duration(duration), env=env, prompt=tty_prompt())
    click.echo(f"export SEALBOX_SESSION={token}")
    info(f'Unlocked until {expires}. Use: eval "$(sealbox unlock)"')


@click.command()
def lock() -> None:
    """End every unlock session of the vault."""
    from sealbox.factory import lock as _lock

    count = _lock()
    info(f"Locked: {count} session(s) ended. Run `unset SEALBOX_SESSION` in your shell.")


@click.group()
def passphrase() -> None:
    """Manage the vault passphrase."""


@passphrase.command("change")
def passphrase_change() -> None:
    """Change the passphrase (re-wraps the key-encryption key; values are untouched).

    Reads SEALBOX_PASSPHRASE and SEALBOX_NEW_PASSPHRASE when set, else prompts.
    """
    from sealbox.factory import change_passphrase

    prompt = tty_prompt()
    old = os.environ.get("SEALBOX_PASSPHRASE")
    new = os.environ.get("SEALBOX_NEW_PASSPHRASE")
    if (not old or not new) and prompt is None:
        raise InvalidInput(
            "set SEALBOX_PASSPHRASE and SEALBOX_NEW_PASSPHRASE, or run in a terminal"
        )
    if not old:
        assert prompt is not None
        old = prompt("Current passphrase")
    if not new:
        assert prompt is not None
        new = prompt("New passphrase")
        if prompt("Repeat the new passphrase") != new:
            raise InvalidInput("the passphrases do not match")
    change_passphrase(old=old, new=new)
    info("Passphrase changed. Every unlock session has ended.")
