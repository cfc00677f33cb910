"""``sealbox unlock``, ``lock``, ``passphrase change`` (embedded); ``login``, ``logout``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from sealbox.cli.common import info, tty_prompt, warn
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
    from sealbox.model import parse_duration

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


# -- remote mode: login and logout ------------------------------------------------------------
def _addr(addr: str | None) -> str:
    chosen = addr or os.environ.get("SEALBOX_ADDR")
    if not chosen:
        raise InvalidInput("which server? pass --addr URL or set SEALBOX_ADDR")
    return chosen


@click.command()
@click.option(
    "--addr",
    default=None,
    help="Server address, e.g. https://sealbox:8200 (default: SEALBOX_ADDR).",
)
@click.option(
    "--name",
    default=None,
    help="Log in as this person (password from SEALBOX_PASSWORD or a prompt).",
)
@click.option("--role-id", default=None, help="Log in as a machine with this role id.")
@click.option(
    "--secret-id-file",
    type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
    default=None,
    help="The machine's secret id, read from this file (- for stdin).",
)
def login(
    addr: str | None, name: str | None, role_id: str | None, secret_id_file: Path | None
) -> None:
    """Log in to a sealbox server and save the token (OS keyring, else a 0600 file).

    Then, with SEALBOX_ADDR set to the same address, every command works against the
    server. SEALBOX_TOKEN_STORE=file|keyring chooses where the token goes.
    """
    from sealbox.client.client import Client
    from sealbox.client.credentials import save_login
    from sealbox.config import default_home

    server = _addr(addr)
    options = {"cacert": os.environ.get("SEALBOX_CACERT") or None}
    if (name is None) == (role_id is None):
        raise InvalidInput(
            "log in with --name (a person) or --role-id and --secret-id-file (a machine)"
        )
    if name is not None:
        password = os.environ.get("SEALBOX_PASSWORD")
        if not password:
            prompt = tty_prompt()
            if prompt is None:
                raise InvalidInput("no password: set SEALBOX_PASSWORD or run in a terminal")
            password = prompt(f"Password for {name}")
        client = Client.login_password(server, name, password, **options)
    else:
        assert role_id is not None
        if secret_id_file is None:
            raise InvalidInput(
                "--role-id needs --secret-id-file (the secret id is never an argument)"
            )
        try:
            raw = sys.stdin.read() if str(secret_id_file) == "-" else secret_id_file.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(
                f"cannot read {secret_id_file}: {getattr(exc, 'strerror', None) or exc}"
            ) from None
        secret_id = raw.strip()
        if not secret_id:
            raise InvalidInput(f"{secret_id_file} holds no secret id")
        client = Client.login_approle(server, role_id, secret_id, **options)
    try:
        me = client.token_self()
        saved = save_login(
            default_home(os.environ),
            server,
            client.token.reveal(),
            identity=str(me.get("identity", "")),
            accessor=str(me.get("accessor", "")),
            expires_at=str(me.get("expires_at", "")),
        )
    finally:
        client.close()
    where = "the OS keyring" if saved.store == "keyring" else "a 0600 file in SEALBOX_HOME"
    info(
        f"Logged in to {saved.addr} as {saved.identity} (token accessor {saved.accessor}, "
        f"expires {saved.expires_at[:19]}); token saved in {where}."
    )
    if os.environ.get("SEALBOX_ADDR") != server:
        info(f"Use it with: export SEALBOX_ADDR={saved.addr}")


@click.command()
@click.option("--addr", default=None, help="Server address (default: SEALBOX_ADDR).")
def logout(addr: str | None) -> int:
    """Revoke the token `sealbox login` saved for a server, and forget it and its offline cache."""
    from sealbox.client.cache import cache_dir
    from sealbox.client.client import Client
    from sealbox.client.credentials import forget_login, load_token, normalise
    from sealbox.config import default_home
    from sealbox.errors import AuthenticationFailed, BackendUnavailable, NotFound

    server = normalise(_addr(addr))
    home = default_home(os.environ)
    token = load_token(home, server)
    if token is None:
        forget_login(home, server)
        raise NotFound(f"no saved login for {server}")
    client = Client(server, token, offline=True, cache_dir=cache_dir(home))
    status = 0
    try:
        client.revoke_self()
        revoked = "token revoked"
    except AuthenticationFailed:
        revoked = "token already invalid"
    except BackendUnavailable as exc:
        warn(f"could not revoke the token ({exc.message}); it stays valid until it expires")
        revoked = "token NOT revoked"
        status = 8
    finally:
        client.wipe_offline_cache()
        client.close()
    forget_login(home, server)
    info(f"Logged out of {server}: {revoked}, saved token and offline cache removed.")
    return status
