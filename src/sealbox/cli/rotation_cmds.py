"""``sealbox rotate`` and ``sealbox rotation …``: rotate now (or rehearse), the due ones,
settings, status, resume, cancel, history, revoke. Thin calls to ``vault.rotations``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click

from sealbox.cli.common import emit_json, info, json_option, open_vault, scope_options
from sealbox.cli.exit_codes import EXIT_STATUS
from sealbox.cli.scope import secret_ref
from sealbox.errors import InvalidInput, RotationFailed, UpstreamError
from sealbox.model import RotationInfo, RotationState, SecretRef, parse_duration

_ID_PREFIX = "rot_"


def _rotations(vault: Any) -> Any:
    rotations = getattr(vault, "rotations", None)
    if rotations is None:
        vault.close()
        raise InvalidInput(
            "rotations run on the embedded vault for now, not through a server",
            hint="run the command on the vault's host (unset SEALBOX_ADDR)",
        )
    return rotations


def _duration(text: str, what: str) -> timedelta:
    if text.strip() in ("0", "0s", "0m", "0h", "0d"):
        return timedelta(0)
    try:
        return parse_duration(text)
    except InvalidInput as exc:
        raise InvalidInput(f"{what}: {exc.message}") from None


def _target(target: str, project: str | None, env: str | None) -> str | SecretRef:
    """A rotation id (``rot_…``) or a secret's NAME / path."""
    return target if target.startswith(_ID_PREFIX) else secret_ref(target, project, env)


def exit_for(rotation: RotationInfo) -> int:
    """0 for a rotation that did what was asked; RotationFailed's or UpstreamError's
    status for one that waits on a failure (or a rehearsal whose test failed)."""
    if rotation.state == RotationState.PENDING:
        return EXIT_STATUS[UpstreamError.code]
    if rotation.state == RotationState.FAILED or (
        rotation.state == RotationState.REHEARSED and rotation.tested != "passed"
    ):
        return EXIT_STATUS[RotationFailed.code]
    return 0


def _report(rotation: RotationInfo) -> None:
    path, rid = rotation.ref.path, rotation.id
    versions = f"version {rotation.from_version or 0} -> {rotation.pending_version or '?'}"
    if rotation.state == RotationState.SUCCEEDED:
        info(f"{path}: rotation {rid} succeeded ({versions}, test passed)")
    elif rotation.state == RotationState.REHEARSED:
        test = {"passed": "passed", "failed": "FAILED"}.get(rotation.tested, "did not run")
        info(
            f"{path}: rehearsal {rid} ({rotation.method}): a rotation would replace version"
            f" {rotation.from_version or 0} with a new value; create, set and test ran and"
            f" were undone, current untouched. Test {test}."
        )
        if rotation.error:
            info(f"  why: {rotation.error}")
    elif rotation.state == RotationState.CANCELLED:
        info(f"{path}: rotation {rid} cancelled; version {rotation.from_version} stays current")
    else:
        info(f"{path}: rotation {rid} {rotation.state.value} at {rotation.step}: {rotation.error}")
        info(
            f"hint: fix the cause, then `sealbox rotation resume {rid}`;"
            f" or `sealbox rotation cancel {rid}` to restore the old state"
        )
    for note in rotation.notes:
        info(f"  {note}")


def _show(rotation: RotationInfo, as_json: bool) -> int:
    if as_json:
        emit_json(rotation.to_json())
    else:
        _report(rotation)
    return exit_for(rotation)


@click.command("rotate")
@click.argument("name", required=False)
@click.option("--dry-run", is_flag=True, help="Rehearse: create, set and test, then undo.")
@click.option("--due", is_flag=True, help="Rotate every secret whose scheduled rotation is due.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="With --due: at most N.")
@click.option("--id", "rotation_id", default=None, help="The rotation's id (a retry resumes it).")
@scope_options
@json_option
def rotate(
    name: str | None,
    dry_run: bool,
    due: bool,
    limit: int | None,
    rotation_id: str | None,
    project: str | None,
    env: str | None,
    as_json: bool,
) -> int:
    """Rotate NAME now (or rehearse it with --dry-run), or the due ones with --due."""
    if due == (name is not None):
        raise InvalidInput("name one secret to rotate, or pass --due (not both)")
    if due and (dry_run or rotation_id):
        raise InvalidInput("--due starts real rotations: --dry-run and --id need a NAME")
    if limit is not None and not due:
        raise InvalidInput("--limit goes with --due")
    vault = open_vault()
    try:
        rotations = _rotations(vault)
        if name is not None:
            ref = secret_ref(name, project, env)
            rotation = rotations.start(ref, dry_run=dry_run, rotation_id=rotation_id)
            return _show(rotation, as_json)
        outcomes = rotations.rotate_due(limit=limit)
    finally:
        vault.close()
    status = max((exit_for(o.rotation) for o in outcomes if o.rotation), default=0)
    if as_json:
        emit_json([o.to_json() for o in outcomes])
        return status
    if not outcomes:
        info("no rotation is due")
    for o in outcomes:
        if o.rotation is not None:
            _report(o.rotation)
        else:
            info(f"{o.ref.path}: skipped: {o.skipped}")
    return status


@click.group("rotation")
def rotation() -> None:
    """Configure rotations and follow them: status, resume, cancel, history, revoke."""


def _options(pairs: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--option takes KEY=VALUE (not {pair[:40]!r})")
        out[key.strip()] = value
    return out


@rotation.command("configure")
@click.argument("name")
@click.option("--method", required=True, help="The rotator: random, or one a package adds.")
@click.option("--option", "option", multiple=True, help="KEY=VALUE for the rotator (repeatable).")
@click.option("--grace", default="1d", show_default=True, help="How long previous stays readable.")
@click.option("--window", default="", help="UTC window for scheduled rotations, e.g. 02:00-04:00.")
@click.option("--offset", default="0", help="Start this long after the window opens, e.g. 10m.")
@click.option("--notify", default="", help="URL to POST each rotation's outcome to (JSON).")
@scope_options
@json_option
def configure_cmd(
    name: str,
    method: str,
    option: tuple[str, ...],
    grace: str,
    window: str,
    offset: str,
    notify: str,
    project: str | None,
    env: str | None,
    as_json: bool,
) -> None:
    """How NAME is rotated (the rotator checks its options now)."""
    ref = secret_ref(name, project, env)
    options = _options(option)
    grace_td = _duration(grace, "--grace")
    offset_td = _duration(offset, "--offset")
    vault = open_vault()
    try:
        cfg = _rotations(vault).configure(
            ref,
            method,
            options=options,
            grace=grace_td,
            window=window,
            start_offset=offset_td,
            notify_url=notify,
        )
    finally:
        vault.close()
    if as_json:
        emit_json(cfg.to_json())
        return
    where = f", window {cfg.window} UTC + {cfg.start_offset}" if cfg.window else ""
    info(f"{ref.path}: rotated by {cfg.method}, previous readable for {cfg.grace}{where}")


def _listing(rotations: list[RotationInfo]) -> None:
    """One rotation a line, in aligned columns, never truncated (an id is copied from it)."""
    rows = [
        ["ID", "SECRET", "METHOD", "STATE", "STEP", "VERSIONS", "STARTED (UTC)", "ERROR"],
        *(
            [
                r.id,
                r.ref.path,
                r.method + (" (dry run)" if r.dry_run else ""),
                r.state.value,
                r.step,
                f"{r.from_version or 0}->{r.pending_version or '?'}",
                r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                r.error,
            ]
            for r in rotations
        ),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, row[-1]]).rstrip())


@rotation.command("status")
@click.option("--failed", is_flag=True, help="Only rotations waiting on a failure.")
@json_option
def status_cmd(failed: bool, as_json: bool) -> int:
    """Unfinished rotations first, then recent ones; exits 12 if any failed."""
    vault = open_vault()
    try:
        found = _rotations(vault).status(failed_only=failed)
    finally:
        vault.close()
    if as_json:
        emit_json([r.to_json() for r in found])
    elif not found:
        info("no rotations" + (" waiting on a failure" if failed else ""))
    else:
        _listing(found)
    waiting = [r for r in found if r.state in (RotationState.FAILED, RotationState.PENDING)]
    return EXIT_STATUS[RotationFailed.code] if failed and waiting else 0


@rotation.command("resume")
@click.argument("target")
@scope_options
@json_option
def resume_cmd(target: str, project: str | None, env: str | None, as_json: bool) -> int:
    """Run an unfinished rotation (ID, or a secret's NAME) on from where it stopped."""
    vault = open_vault()
    try:
        done = _rotations(vault).resume(_target(target, project, env))
    finally:
        vault.close()
    return _show(done, as_json)


@rotation.command("cancel")
@click.argument("target")
@scope_options
@json_option
def cancel_cmd(target: str, project: str | None, env: str | None, as_json: bool) -> int:
    """Stop a rotation (ID or NAME) and restore the old state upstream and in the vault."""
    vault = open_vault()
    try:
        done = _rotations(vault).cancel(_target(target, project, env))
    finally:
        vault.close()
    return _show(done, as_json)


@rotation.command("history")
@click.argument("name")
@scope_options
@json_option
def history_cmd(name: str, project: str | None, env: str | None, as_json: bool) -> None:
    """The rotations of NAME, newest first."""
    ref = secret_ref(name, project, env)
    vault = open_vault()
    try:
        found = _rotations(vault).history(ref)
    finally:
        vault.close()
    if as_json:
        emit_json([r.to_json() for r in found])
    elif not found:
        info(f"{ref.path} was never rotated")
    else:
        _listing(found)


@rotation.command("revoke")
@click.argument("name")
@click.argument("version", type=int)
@scope_options
def revoke_cmd(name: str, version: int, project: str | None, env: str | None) -> None:
    """Make VERSION of NAME unreadable by anyone (a leaked value): not current or pending."""
    ref = secret_ref(name, project, env)
    vault = open_vault()
    try:
        _rotations(vault).revoke(ref, version)
    finally:
        vault.close()
    info(f"{ref.path}: version {version} revoked")
