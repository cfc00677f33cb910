"""Entry point and command group of the ``sealbox`` CLI.

Subcommands are loaded lazily so that the everyday ``sealbox run`` imports only what it
needs (start-up time is part of its budget). Errors become exit statuses and messages in
one place, :func:`sealbox.cli.entry.guarded`, with the table of :mod:`sealbox.cli.exit_codes`
and the CLI's hints (:mod:`sealbox.cli.hints`).
"""

from __future__ import annotations

from typing import Any

import click

from sealbox.cli.entry import guarded
from sealbox.cli.exit_codes import EXIT_STATUS, exit_status
from sealbox.cli.lazy import lazy_group

__all__ = ["EXIT_STATUS", "cli", "exit_status", "main"]

# name -> "module:attribute"; loaded on first use.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("sealbox.cli.vault_cmds:init", "Create a new vault."),
    "unlock": (
        "sealbox.cli.session_cmds:unlock",
        "Unlock the vault for a while; prints export SEALBOX_SESSION=…",
    ),
    "lock": ("sealbox.cli.session_cmds:lock", "End every unlock session."),
    "passphrase": ("sealbox.cli.session_cmds:passphrase", "Change the vault passphrase."),
    "login": ("sealbox.cli.session_cmds:login", "Log in to a sealbox server; saves the token."),
    "logout": ("sealbox.cli.session_cmds:logout", "Revoke and forget a saved server token."),
    "setup": ("sealbox.cli.vault_cmds:setup", "Bind this directory to a project and environment."),
    "project": ("sealbox.cli.vault_cmds:project", "Create and list projects."),
    "env": ("sealbox.cli.vault_cmds:env", "Create and list environments of a project."),
    "secret": ("sealbox.cli.secret_cmds:secret", "Set, get, list and version secrets."),
    "run": ("sealbox.cli.run_cmd:run", "Run a command with the environment's secrets injected."),
    "import": ("sealbox.cli.dotenv_cmds:import_cmd", "Import secrets from a .env file."),
    "export": ("sealbox.cli.dotenv_cmds:export_cmd", "Export secrets as dotenv, JSON or shell."),
    "example": (
        "sealbox.cli.dotenv_cmds:example_cmd",
        "Write .env.example with every key and a placeholder.",
    ),
    "doctor": (
        "sealbox.cli.doctor_cmd:doctor",
        "Check this directory and the vault for hygiene problems.",
    ),
    "scan": (
        "sealbox.cli.scan:scan_command",
        "Find leaked secrets in files, git history or stdin.",
    ),
    "server": (
        "sealbox.cli.server_cmds:server",
        "Serve the vault over HTTP; `server init` bootstraps.",
    ),
    "policy": ("sealbox.cli.admin_cmds:policy", "Apply, list and explain access policies."),
    "identity": ("sealbox.cli.admin_cmds:identity", "Manage people and machine identities."),
    "token": ("sealbox.cli.admin_cmds:token", "Create, list and revoke tokens."),
    "incident": (
        "sealbox.cli.incident_cmd:incident",
        "A suspected leak: who received a secret, whom to tell, what to redeploy.",
    ),
    "rotate": (
        "sealbox.cli.rotation_cmds:rotate",
        "Rotate a secret now (--dry-run rehearses), or the due ones (--due).",
    ),
    "scheduler": (
        "sealbox.cli.scheduler_cmd:scheduler",
        "Run due rotations and reap expired leases until stopped (one node at a time).",
    ),
    "rotation": (
        "sealbox.cli.rotation_cmds:rotation",
        "Configure rotations; status, resume, cancel, history, revoke.",
    ),
    "creds": (
        "sealbox.cli.creds_cmds:creds",
        "Dynamic database credentials under a lease; `creds role` defines roles.",
    ),
    "lease": ("sealbox.cli.creds_cmds:lease", "List, renew and revoke leases; reap expired ones."),
    "kms": (
        "sealbox.cli.kms_cmds:kms",
        "Key providers (HSM, Transit, cloud KMS): add, remove, status, rotate.",
    ),
    "operator": (
        "sealbox.cli.operator_cmds:operator",
        "Unseal shares: init, unseal, seal, status (Vault's operator commands).",
    ),
    "audit": (
        "sealbox.cli.audit_cmds:audit",
        "Query, verify and checkpoint the tamper-evident audit trail.",
    ),
}


LazyGroup = lazy_group(COMMANDS)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sealbox")
@click.option(
    "--audit-fail-open",
    is_flag=True,
    help="UNSAFE, development only: run operations even when no audit sink accepts them.",
)
def cli(audit_fail_open: bool) -> None:
    """sealbox: keep secrets out of source control and deliver them to your processes.

    Start with `sealbox init`, then `sealbox setup`, `sealbox secret set NAME` and
    `sealbox run -- your-command`.
    """
    if audit_fail_open:
        import os

        # NOTE: the factory reads it from the environment; open_vault warns on every use.
        os.environ["SEALBOX_AUDIT_FAIL_OPEN"] = "1"


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit status (used by tests and the console script)."""
    return guarded(lambda: _click_main(argv))


def _click_main(argv: list[str] | None) -> int:
    try:
        result: Any = cli.main(args=argv, prog_name="sealbox", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("sealbox: aborted", err=True)
        return 130
    return result if isinstance(result, int) else 0


def entrypoint() -> None:
    """Console-script entry point (see :mod:`sealbox.cli.entry` for the fast path)."""
    from sealbox.cli.entry import entrypoint as _entrypoint

    _entrypoint()
