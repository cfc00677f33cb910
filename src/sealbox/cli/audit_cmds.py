"""``sealbox audit …``: query, verify and checkpoint the tamper-evident audit trail."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import click

from sealbox.cli.common import emit_json, info, json_option, secret_ref, table, warn
from sealbox.cli.scope import open_vault
from sealbox.errors import IntegrityError, InvalidInput


@click.group()
def audit() -> None:
    """Query, verify and checkpoint the audit trail (admin on sys/audit)."""


def _when(text: str | None, option: str) -> datetime | None:
    """An ISO time, or a duration (``24h``, ``7d``) meaning that long ago."""
    if text is None:
        return None
    from sealbox.model import parse_duration

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            return datetime.now(UTC) - parse_duration(text)
        except InvalidInput:
            raise InvalidInput(
                f"{option} {text!r}: use an ISO time (2026-01-31T12:00) or a duration (24h)"
            ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _identity_cell(e: dict[str, Any]) -> str:
    extra = e.get("auth_method")
    return f"{e['identity']} ({extra})" if extra and extra != "local" else str(e["identity"])


def _source_cell(e: dict[str, Any]) -> str:
    parts = [e["source"]]
    for key in ("remote_addr", "hostname"):
        if e.get(key):
            parts.append(str(e[key]))
    if e.get("pid"):
        parts.append(f"pid {e['pid']}")
    return " ".join(parts)


def _versions_cell(e: dict[str, Any]) -> str:
    if e["versions"]:
        if len(e["versions"]) == 1:
            return str(e["versions"][0]["version"])
        return f"{len(e['versions'])} secrets"
    return "" if e["version"] is None else str(e["version"])


@audit.command("log")
@click.option("--secret", "secret", default=None, help="project/env/NAME (incl. runs/exports).")
@click.option("--identity", default=None, help="Identity name.")
@click.option("--since", default=None, help="ISO time or duration ago (24h, 7d).")
@click.option("--until", default=None, help="ISO time or duration ago.")
@click.option("--operation", "operations", multiple=True, help="read, reveal, write, … (repeat).")
@click.option("--denied", is_flag=True, help="Only denied attempts.")
@click.option("--source", default=None, help="cli, api, sdk, scheduler, ci …")
@click.option("--limit", type=int, default=100, show_default=True)
@json_option
def log_cmd(
    secret: str | None,
    identity: str | None,
    since: str | None,
    until: str | None,
    operations: tuple[str, ...],
    denied: bool,
    source: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Events, newest first, matching every filter given."""
    from sealbox.model import SecretRef

    if limit < 1:
        raise InvalidInput("--limit must be at least 1")
    ref = SecretRef.parse(secret) if secret else None
    vault = open_vault()
    try:
        events = vault.audit.log(
            secret=ref,
            identity=identity,
            since=_when(since, "--since"),
            until=_when(until, "--until"),
            operations=list(operations) or None,
            denied=denied,
            source=source,
            limit=limit,
        )
    finally:
        vault.close()
    if as_json:
        emit_json(events)
        return
    table(
        ["time", "identity", "source", "operation", "path", "version", "outcome", "reason"],
        [
            [
                e["time"][:19],
                _identity_cell(e),
                _source_cell(e),
                e["operation"],
                e["path"],
                _versions_cell(e),
                e["outcome"],
                e["reason"],
            ]
            for e in events
        ],
    )


def _read_stdin_value(keep_newline: bool) -> bytes:
    if sys.stdin.isatty():
        from sealbox.cli.common import tty_prompt

        prompt = tty_prompt()
        if prompt is None:
            raise InvalidInput("no value: pipe it on stdin")
        return prompt("Value").encode()
    data = sys.stdin.buffer.read()
    if not keep_newline:
        data = data.removesuffix(b"\n").removesuffix(b"\r") if data.endswith(b"\n") else data
    return data


@audit.command("hash")
@click.option("--keep-newline", is_flag=True, help="Keep a trailing newline read from stdin.")
def hash_cmd(keep_newline: bool) -> None:
    """Print the HMAC that audit events carry for the value given on stdin."""
    from sealbox.model import SecretValue

    value = SecretValue(_read_stdin_value(keep_newline))
    vault = open_vault()
    try:
        digest = vault.audit.value_hmac(value)
    finally:
        vault.close()
    click.echo(digest)


@audit.command("who-read")
@click.argument("path", required=False)
@click.option("--version", "version", type=int, default=None, help="Only this version.")
@click.option("--value-hmac", default=None, help="Only reads of the value with this HMAC.")
@click.option(
    "--value", "value_src", default=None, help="'-': the value on stdin (hashed, never stored)."
)
@click.option("--since", default=None, help="ISO time or duration ago (24h, 7d).")
@click.option("--until", default=None, help="ISO time or duration ago.")
@json_option
def who_read_cmd(
    path: str | None,
    version: int | None,
    value_hmac: str | None,
    value_src: str | None,
    since: str | None,
    until: str | None,
    as_json: bool,
) -> None:
    """Who received PATH's value (a version, or an exact leaked value): identities,
    sources and times. Exit 0 with an empty answer when nobody did."""
    from sealbox.model import SecretValue

    if value_src is not None and value_src != "-":
        raise InvalidInput("--value takes '-' (read the value from stdin), never the value")
    if value_src is not None and value_hmac is not None:
        raise InvalidInput("give --value - or --value-hmac, not both")
    ref = secret_ref(path, None, None) if path else None
    vault = open_vault()
    try:
        if value_src is not None:
            value_hmac = vault.audit.value_hmac(SecretValue(_read_stdin_value(False)))
        events = vault.audit.who_read(
            ref,
            version=version,
            value_hmac=value_hmac,
            since=_when(since, "--since"),
            until=_when(until, "--until"),
        )
    finally:
        vault.close()
    if as_json:
        emit_json(events)
        return
    if not events:
        info("nobody read it (no matching allowed read, reveal, run or export)")
        return
    table(
        ["time", "identity", "source", "operation", "secret", "version"],
        [
            [
                e["time"][:19],
                _identity_cell(e),
                _source_cell(e),
                e["operation"],
                v["path"],
                v["version"],
            ]
            for e in events
            for v in e["versions"]
        ],
    )


@audit.command("verify")
@click.option(
    "--file",
    "files",
    multiple=True,
    help="Also verify this JSONL file (configured file sinks are always verified).",
)
@click.option(
    "--accept-rejected",
    "accept",
    multiple=True,
    metavar="FILE",
    help="Record (audited) that you reviewed this rejected or missing spool, then verify.",
)
@json_option
def verify_cmd(files: tuple[str, ...], accept: tuple[str, ...], as_json: bool) -> None:
    """Walk every chain, check versions against write events and account for server
    spools; exit 7 naming the first tampered position (or an unaccepted rejected or
    missing spool), 0 when intact."""
    vault = open_vault()
    try:
        for name in accept:
            info(f"accepted {vault.audit.accept_rejected(name)} (recorded as audit.accept)")
        result = vault.audit.verify(files)
    finally:
        vault.close()
    if as_json:
        emit_json(result._asdict())
    else:
        for line in result.summary:
            info(line)
        for notice in result.notices:
            warn(notice)
    if result.findings:
        raise IntegrityError(
            f"audit trail tampered: {result.findings[0]}",
            hint=f"{len(result.findings)} finding(s); run with --json for all",
        )
    if not as_json:
        info("audit trail intact")


@audit.command("checkpoint")
@json_option
def checkpoint_cmd(as_json: bool) -> None:
    """Sign every chain head now (Ed25519, key wrapped by the key provider)."""
    vault = open_vault()
    try:
        rows = vault.audit.checkpoint()
    finally:
        vault.close()
    if as_json:
        emit_json([r._asdict() for r in rows])
    else:
        for r in rows:
            info(f"checkpoint: node {r.node} seq {r.seq} hash {r.hash[:16]}… key {r.key_id}")
