"""``sealbox server`` (run the HTTP server) and ``sealbox server init`` (first admin)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from sealbox.cli.common import info, tty_prompt
from sealbox.errors import InvalidInput


@click.group(invoke_without_command=True)
@click.option("--address", default=None, help="HOST:PORT to listen on (default 127.0.0.1:8200).")
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="TOML settings file (see docs/server.md); SEALBOX_* variables override it.",
)
@click.option(
    "--tls-cert",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="TLS certificate (PEM).",
)
@click.option(
    "--tls-key",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="TLS private key (PEM).",
)
@click.option(
    "--workers", type=int, default=None, help="Worker processes (default: one per CPU, at most 4)."
)
@click.pass_context
def server(
    ctx: click.Context,
    address: str | None,
    config_file: Path | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    workers: int | None,
) -> None:
    """Serve the vault over HTTP: native API under /v1 and a Vault KV v2 compatible API.

    The vault is opened as the CLI opens it (key file, keyring, SEALBOX_PASSPHRASE or
    SEALBOX_SESSION); a sealed vault is refused at start. Create the first admin with
    `sealbox server init`.
    """
    if ctx.invoked_subcommand is not None:
        return
    from sealbox.server.run import serve
    from sealbox.server.settings import load_settings

    settings = load_settings(
        config_file=config_file,
        env=os.environ,
        overrides={
            "address": address,
            "tls_cert": tls_cert,
            "tls_key": tls_key,
            "workers": workers,
        },
    )
    serve(settings, announce=info)


@server.command("init")
@click.option("--admin", default="admin", show_default=True, help="Name of the first admin.")
def init(admin: str) -> None:
    """Create the first admin identity (root policy) and print its token once.

    The password comes from SEALBOX_ADMIN_PASSWORD or a hidden prompt (twice).
    """
    from sealbox.factory import bootstrap_server

    password = os.environ.get("SEALBOX_ADMIN_PASSWORD")
    if not password:
        prompt = tty_prompt()
        if prompt is None:
            raise InvalidInput("no admin password: set SEALBOX_ADMIN_PASSWORD or use a terminal")
        password = prompt(f"Password for {admin}")
        if prompt("Repeat the password") != password:
            raise InvalidInput("the passwords do not match")
    identity, token = bootstrap_server(admin=admin, password=password)
    info(f"Created admin identity {identity.name!r} with the root policy.")
    info("Its token follows; it is shown only this once. Keep it like a password:")
    click.echo(token.value)
    info(f"(token accessor {token.accessor}; log in again with `POST /v1/auth/login`)")
