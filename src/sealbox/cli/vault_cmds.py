"""``sealbox init``, ``setup``, ``project`` and ``env``."""

from __future__ import annotations

import os
from pathlib import Path

import click

from sealbox.cli.common import emit_json, info, json_option, open_vault, table, tty_prompt
from sealbox.errors import InvalidInput, NotFound


@click.command()
@click.option(
    "--storage",
    default=None,
    help="SQLite path or postgresql://… DSN (default: SEALBOX_HOME/vault.db).",
)
@click.option(
    "--key-file",
    "key_file",
    type=click.Path(path_type=Path),
    default=None,
    help="Protect the vault with a key file created here (0600).",
)
@click.option(
    "--keyring", "use_keyring", is_flag=True, help="Keep the master key in the OS keyring."
)
def init(storage: str | None, key_file: Path | None, use_keyring: bool) -> None:
    """Create a new vault (passphrase-protected unless --key-file or --keyring)."""
    from sealbox.factory import init_vault

    if key_file and use_keyring:
        raise InvalidInput("choose one of --key-file and --keyring")
    passphrase = None
    if key_file:
        method = "keyfile"
    elif use_keyring:
        method = "keyring"
    else:
        method = "passphrase"
        passphrase = os.environ.get("SEALBOX_PASSPHRASE")
        if not passphrase:
            prompt = tty_prompt()
            if prompt is None:
                raise InvalidInput(
                    "no passphrase: set SEALBOX_PASSPHRASE, or use --key-file or --keyring"
                )
            passphrase = prompt("New vault passphrase")
            if prompt("Repeat the passphrase") != passphrase:
                raise InvalidInput("the passphrases do not match")
    result = init_vault(storage=storage, method=method, passphrase=passphrase, key_file=key_file)
    info(f"Created vault {result.vault_id} ({result.method.value}) in {result.home}")
    if result.key_file:
        info(
            f"Master key file: {result.key_file} (0600). Back it up: without it the vault is lost."
        )
    info("Next: sealbox setup --project NAME --env dev")


@click.command()
@click.option("--project", "-p", required=True, help="Project name (created if missing).")
@click.option("--env", "-e", "env", default="dev", show_default=True, help="Environment.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=".",
    help="Directory to bind.",
)
def setup(project: str, env: str, directory: Path) -> None:
    """Bind a directory to a project and environment (writes sealbox.toml, no secrets)."""
    from sealbox.config import write_binding

    vault = open_vault()
    try:
        if project not in vault.list_projects():
            vault.create_project(project)
            info(f"Created project {project} with environments dev, staging, prod")
        if env not in vault.list_envs(project):
            raise NotFound(
                f"environment {project}/{env} does not exist",
                hint=f"create it with `sealbox env create {env} --project {project}`",
            )
    finally:
        vault.close()
    path = write_binding(directory.resolve(), project, env)
    info(f"Bound {path.parent} to {project}/{env} ({path.name})")


@click.group()
def project() -> None:
    """Create and list projects."""


@project.command("create")
@click.argument("name")
@click.option(
    "--env", "envs", multiple=True, help="Environments to create (default: dev, staging, prod)."
)
def project_create(name: str, envs: tuple[str, ...]) -> None:
    """Create a project with its environments."""
    vault = open_vault()
    try:
        if envs:
            vault.create_project(name, environments=envs)
        else:
            vault.create_project(name)
    finally:
        vault.close()
    info(f"Created project {name}")


@project.command("list")
@json_option
def project_list(as_json: bool) -> None:
    """List projects."""
    vault = open_vault()
    try:
        names = vault.list_projects()
    finally:
        vault.close()
    if as_json:
        emit_json(names)
    else:
        for n in names:
            click.echo(n)


@click.group("env")
def env() -> None:
    """Create and list environments of a project."""


def _project(project: str | None) -> str:
    if project:
        return project
    import os

    from sealbox.config import find_binding

    from_env = os.environ.get("SEALBOX_PROJECT")
    if from_env is not None:
        return from_env
    binding = find_binding(Path.cwd())
    if binding is None:
        raise InvalidInput(
            "no project selected", hint="pass --project, or run `sealbox setup` in this directory"
        )
    return binding.project


@env.command("create")
@click.argument("name")
@click.option("--project", "-p", default=None, help="Project (default: from sealbox.toml).")
def env_create(name: str, project: str | None) -> None:
    """Create an environment."""
    p = _project(project)
    vault = open_vault()
    try:
        vault.create_env(p, name)
    finally:
        vault.close()
    info(f"Created environment {p}/{name}")


@env.command("list")
@click.option("--project", "-p", default=None, help="Project (default: from sealbox.toml).")
@json_option
def env_list(project: str | None, as_json: bool) -> None:
    """List a project's environments."""
    p = _project(project)
    vault = open_vault()
    try:
        names = vault.list_envs(p)
    finally:
        vault.close()
    if as_json:
        emit_json(names)
    else:
        table(["environment"], [[n] for n in names], title=p)
