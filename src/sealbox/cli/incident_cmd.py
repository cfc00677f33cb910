"""``sealbox incident``: a suspected leak of one secret — who received it, who else holds
the value, whom to tell, what to redeploy."""

from __future__ import annotations

import click

from sealbox.cli.audit_cmds import _read_stdin_value
from sealbox.cli.common import emit_json, info, json_option, open_vault, secret_ref, table
from sealbox.errors import InvalidInput


@click.command("incident")
@click.argument("path")
@click.option("--reason", required=True, help="Why (the ticket, what was seen); audited.")
@click.option(
    "--value",
    "value_src",
    default=None,
    help="'-': the leaked value on stdin (compared and hashed, never stored or printed).",
)
@click.option(
    "--rotate",
    is_flag=True,
    help="Then act: rotate now, revoke every older version and the leases it issued.",
)
@json_option
def incident(path: str, reason: str, value_src: str | None, rotate: bool, as_json: bool) -> None:
    """Who received PATH's versions (or an exact leaked value, with --value -), which
    other secrets hold the value, the secret's owner, contact and dependents, and the
    redeploy list; recorded in the audit trail with the reason. Changes nothing unless
    --rotate: then PATH is rotated now (its configured rotator), its older versions are
    revoked (unreadable by any stage or number), and so are the live leases of every
    credentials role whose admin login PATH is; the report lists each action."""
    from sealbox.model import SecretValue

    if value_src is not None and value_src != "-":
        raise InvalidInput("--value takes '-' (read the value from stdin), never the value")
    if not reason.strip():
        raise InvalidInput("--reason must say why (a ticket, what was seen)")
    ref = secret_ref(path, None, None)
    value = SecretValue(_read_stdin_value(False)) if value_src is not None else None
    # The embedded vault, or the server's in remote mode (SEALBOX_ADDR): `vault.incident`
    # and `Client.incident` take the same call, so one command serves both.
    vault = open_vault()
    try:
        report = vault.incident(ref, reason=reason, value=value, rotate=rotate)
    finally:
        vault.close()
    if as_json:
        emit_json(report.to_json())
        return
    meta = report.meta
    click.echo(f"Incident: {report.ref} — {report.reason}")
    for label, field in (
        ("owner", meta.owner),
        ("contact", meta.contact),
        ("upstream", meta.upstream),
        ("classification", meta.classification),
    ):
        click.echo(f"  {label + ':':<16}{field or '(not set)'}")
    stages = ", ".join(f"{v} ({s or 'no stage'})" for v, s in report.versions)
    click.echo(f"  {'versions:':<16}{stages} — current {report.current_version}")
    if report.value_matched is None:
        click.echo(f"  {'affected:':<16}every version ({len(report.affected)})")
    elif report.value_matched:
        click.echo(
            f"  {'affected:':<16}the leaked value is version(s) "
            f"{', '.join(map(str, report.affected))}"
        )
    else:
        click.echo(f"  {'affected:':<16}the leaked value is not a version of {report.ref}")
    if report.also_holding:
        held = ", ".join(f"{p} v{v}" for p, v in report.also_holding)
        click.echo(f"  {'also held by:':<16}{held}")
    if report.readers:
        table(
            ["identity", "source", "host / address", "reads", "first", "last", "versions"],
            [
                [
                    r.identity,
                    r.source,
                    " ".join(x for x in (r.hostname, r.remote_addr) if x),
                    r.reads,
                    r.first_at[:19],
                    r.last_at[:19],
                    ", ".join(map(str, r.versions)),
                ]
                for r in report.readers
            ],
            title="Received the affected value",
        )
    else:
        click.echo("  nobody received an affected version (no allowed read, run or export)")
    for action in report.actions:
        click.echo(f"  {'done:':<16}{action}")
    click.echo(f"  {'redeploy:':<16}{', '.join(report.redeploy) or '(nobody on record)'}")
    if not rotate:
        info(f"next: sealbox incident {report.ref} --rotate --reason … (rotate and revoke)")
