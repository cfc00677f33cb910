"""``sealbox secret …``: set, get, list, history, rollback, delete, undelete, purge, meta."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from sealbox.cli.common import (
    emit_json,
    info,
    json_option,
    open_vault,
    resolve_scope,
    scope_options,
    secret_ref,
    stdin_is_tty,
    table,
    tty_prompt,
    warn,
)
from sealbox.errors import InvalidInput
from sealbox.model import SecretInfo, SecretMeta, SecretValue, value_json


@click.group()
def secret() -> None:
    """Set, get, list and version secrets."""


def _read_value(value: str | None, from_file: Path | None, keep_newline: bool) -> SecretValue:
    if value is not None and from_file is not None:
        raise InvalidInput(
            "give the value on stdin, as an argument or with --from-file, not several"
        )
    if value is not None:
        warn("a value on the command line can end up in shell history; prefer stdin or the prompt")
        # The argument's own bytes (Python decoded them with surrogateescape).
        return SecretValue(os.fsencode(value))
    if from_file is not None:
        try:
            return SecretValue(from_file.read_bytes())
        except OSError as exc:
            raise InvalidInput(f"cannot read {from_file}: {exc.strerror}") from None
    if not stdin_is_tty():
        data = sys.stdin.buffer.read()
        if not keep_newline:
            if data.endswith(b"\r\n"):
                data = data[:-2]
            elif data.endswith(b"\n"):
                data = data[:-1]
        return SecretValue(data)
    prompt = tty_prompt()
    if prompt is None:
        raise InvalidInput("no value: pipe it on stdin or use --from-file")
    first = prompt("Value")
    if prompt("Repeat the value") != first:
        raise InvalidInput("the values do not match")
    return SecretValue(first)


@secret.command("set")
@click.argument("name")
@click.argument("value", required=False)
@click.option(
    "--from-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Read the value from a file, byte for byte.",
)
@click.option("--keep-newline", is_flag=True, help="Keep a trailing newline read from stdin.")
@click.option(
    "--if-version",
    type=int,
    default=None,
    help="Only write if the current version is N (0: only if new).",
)
@scope_options
@json_option
def set_cmd(
    name: str,
    value: str | None,
    from_file: Path | None,
    keep_newline: bool,
    if_version: int | None,
    project: str | None,
    env: str | None,
    as_json: bool,
) -> None:
    """Write a new version of NAME. The value comes from stdin or a hidden prompt."""
    ref = secret_ref(name, project, env)
    secret_value = _read_value(value, from_file, keep_newline)
    vault = open_vault()
    try:
        version = vault.set(ref, secret_value, if_version=if_version)
    finally:
        vault.close()
    if as_json:
        emit_json({"path": ref.path, "version": version})
    else:
        info(f"{ref.path}: version {version}")


@secret.command("get")
@click.argument("name")
@click.option(
    "--version", "version", type=int, default=None, help="A specific version (default: current)."
)
@click.option(
    "--stage",
    type=click.Choice(["current", "pending", "previous"]),
    default=None,
    help="By stage: pending (being rotated in), previous (during its grace window).",
)
@scope_options
@json_option
def get_cmd(
    name: str,
    version: int | None,
    stage: str | None,
    project: str | None,
    env: str | None,
    as_json: bool,
) -> None:
    """Print the value of NAME (recorded in the audit trail as a reveal).

    Into a pipe or a file the value is written byte for byte, with no newline added (a
    terminal gets one). --json carries a value that is not UTF-8 text as value_base64.
    """
    ref = secret_ref(name, project, env)
    vault = open_vault()
    try:
        if stage is None or (stage == "current" and version is None):
            found = vault.get(ref, version=version, reveal=True)
        else:
            found = vault.get(ref, version=version, reveal=True, stage=stage)
    finally:
        vault.close()
    if as_json:
        emit_json(
            {
                "path": ref.path,
                "version": found.version,
                **value_json(found.value),
                "created_at": found.created_at.isoformat(),
            }
        )
        return
    # NOTE: byte-exact into a pipe or a file (as `bao kv get -field` writes), so
    # `sealbox secret get X > file` gives back the bytes `secret set X --from-file` took;
    # only a terminal gets a newline after the value.
    data = found.value.reveal_bytes()
    if sys.stdout.isatty():
        data += b"\n"
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _info_dict(s: SecretInfo) -> dict[str, Any]:
    return {
        "path": s.ref.path,
        "name": s.ref.name,
        "version": s.current_version,
        "created_at": s.created_at.isoformat(),
        "updated_at": s.updated_at.isoformat(),
        "deleted_at": s.deleted_at.isoformat() if s.deleted_at else None,
        "meta": s.meta.to_dict(),
    }


@secret.command("list")
@click.option("--reveal", is_flag=True, help="Also show values (recorded as a reveal).")
@click.option("--deleted", is_flag=True, help="Include soft-deleted secrets.")
@scope_options
@json_option
def list_cmd(
    reveal: bool, deleted: bool, project: str | None, env: str | None, as_json: bool
) -> None:
    """List names and metadata; values only with --reveal."""
    p, e = resolve_scope(project, env)
    vault = open_vault()
    try:
        items = vault.list_secrets(p, e, include_deleted=deleted)
        values = vault.resolve(p, e, purpose="reveal") if reveal else {}
    finally:
        vault.close()
    if as_json:
        out = []
        for s in items:
            d = _info_dict(s)
            if reveal and s.ref.name in values:
                d.update(value_json(values[s.ref.name]))
            out.append(d)
        emit_json(out)
        return
    cols = ["name", "version", "updated", "owner", "classification"]
    if deleted:
        cols.append("deleted")
    if reveal:
        cols.append("value")
    rows = []
    for s in items:
        row: list[Any] = [
            s.ref.name,
            s.current_version,
            s.updated_at.strftime("%Y-%m-%d %H:%M"),
            s.meta.owner,
            s.meta.classification.value if s.meta.classification else None,
        ]
        if deleted:
            row.append("yes" if s.deleted_at else "")
        if reveal:
            row.append(values[s.ref.name].reveal() if s.ref.name in values else "")
        rows.append(row)
    table(cols, rows, title=f"{p}/{e}")


@secret.command("history")
@click.argument("name")
@scope_options
@json_option
def history_cmd(name: str, project: str | None, env: str | None, as_json: bool) -> None:
    """Versions of NAME, oldest first (no values)."""
    ref = secret_ref(name, project, env)
    vault = open_vault()
    try:
        versions = vault.history(ref)
    finally:
        vault.close()
    if as_json:
        emit_json([v.to_json() for v in versions])
        return
    table(
        ["version", "stage", "created", "by", "note"],
        [
            [
                v.version,
                v.stage.value if v.stage else "",
                v.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                v.created_by,
                f"rollback to {v.rollback_of}" if v.rollback_of else "",
            ]
            for v in versions
        ],
        title=ref.path,
    )


@secret.command("rollback")
@click.argument("name")
@click.argument("version", type=int)
@click.option("--if-version", type=int, default=None, help="Only if the current version is N.")
@scope_options
def rollback_cmd(
    name: str, version: int, if_version: int | None, project: str | None, env: str | None
) -> None:
    """Make a new version of NAME with the content of VERSION."""
    ref = secret_ref(name, project, env)
    vault = open_vault()
    try:
        new = vault.rollback(ref, version, if_version=if_version)
    finally:
        vault.close()
    info(f"{ref.path}: version {new} (content of version {version})")


@secret.command("delete")
@click.argument("name")
@scope_options
def delete_cmd(name: str, project: str | None, env: str | None) -> None:
    """Soft-delete NAME (kept, hidden; `undelete` restores it)."""
    ref = secret_ref(name, project, env)
    vault = open_vault()
    try:
        vault.delete(ref)
    finally:
        vault.close()
    info(f"{ref.path}: deleted (restore with `sealbox secret undelete {ref.name}`)")


@secret.command("undelete")
@click.argument("name")
@scope_options
def undelete_cmd(name: str, project: str | None, env: str | None) -> None:
    """Restore a soft-deleted secret."""
    ref = secret_ref(name, project, env)
    vault = open_vault()
    try:
        vault.undelete(ref)
    finally:
        vault.close()
    info(f"{ref.path}: restored")


@secret.command("purge")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@scope_options
def purge_cmd(name: str, yes: bool, project: str | None, env: str | None) -> None:
    """Destroy NAME and every version, irreversibly."""
    ref = secret_ref(name, project, env)
    if not yes:
        if not stdin_is_tty():
            raise InvalidInput("purge is irreversible: pass --yes to confirm")
        click.confirm(f"Destroy {ref.path} and all its versions?", abort=True)
    vault = open_vault()
    try:
        count = vault.purge(ref)
    finally:
        vault.close()
    info(f"{ref.path}: purged ({count} versions destroyed)")


def _parse_date(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"invalid date {text!r}: use YYYY-MM-DD or an ISO 8601 time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@secret.command("meta")
@click.argument("name")
@click.option("--owner", default=None, help="Owning team.")
@click.option("--purpose", default=None, help="What the secret is for.")
@click.option(
    "--classification", type=click.Choice(["low", "medium", "high", "critical"]), default=None
)
@click.option("--rotate-every", default=None, help="Rotation interval, e.g. 90d.")
@click.option(
    "--rotation-method", default=None, help="How it is rotated (manual, a rotator name…)."
)
@click.option("--expires", default=None, help="Expiry date (YYYY-MM-DD).")
@click.option("--depends-on", multiple=True, help="A downstream system using it (repeatable).")
@click.option("--contact", default=None, help="Emergency contact.")
@click.option("--upstream", default=None, help="The system that issued it.")
@click.option("--tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option("--clear", "clear", multiple=True, help="Clear a field (repeatable).")
@scope_options
@json_option
def meta_cmd(
    name: str,
    owner: str | None,
    purpose: str | None,
    classification: str | None,
    rotate_every: str | None,
    rotation_method: str | None,
    expires: str | None,
    depends_on: tuple[str, ...],
    contact: str | None,
    upstream: str | None,
    tags: tuple[str, ...],
    clear: tuple[str, ...],
    project: str | None,
    env: str | None,
    as_json: bool,
) -> None:
    """Show or change NAME's inventory metadata (not secret)."""
    from sealbox.model import parse_duration

    ref = secret_ref(name, project, env)
    changes: dict[str, Any] = {}
    if owner is not None:
        changes["owner"] = owner
    if purpose is not None:
        changes["purpose"] = purpose
    if classification is not None:
        changes["classification"] = classification
    if rotate_every is not None:
        changes["rotate_every_days"] = max(1, parse_duration(rotate_every).days)
    if rotation_method is not None:
        changes["rotation_method"] = rotation_method
    if expires is not None:
        changes["expires"] = _parse_date(expires)
    if depends_on:
        changes["depends_on"] = tuple(depends_on)
    if contact is not None:
        changes["contact"] = contact
    if upstream is not None:
        changes["upstream"] = upstream
    if tags:
        changes["tags"] = tuple(tags)
    aliases = {
        "rotate-every": "rotate_every_days",
        "rotate_every": "rotate_every_days",
        "depends-on": "depends_on",
        "rotation-method": "rotation_method",
    }
    defaults = SecretMeta()
    for field_name in clear:
        key = aliases.get(field_name, field_name)
        changes[key] = getattr(defaults, key, None)
    vault = open_vault()
    try:
        meta = vault.update_meta(ref, **changes) if changes else vault.info(ref).meta
    finally:
        vault.close()
    data = meta.to_dict()
    if as_json:
        emit_json({"path": ref.path, "meta": data})
    else:
        table(
            ["field", "value"],
            [[k, ", ".join(v) if isinstance(v, list) else v] for k, v in data.items()],
            title=ref.path,
        )
