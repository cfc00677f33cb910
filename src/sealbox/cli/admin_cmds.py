"""``sealbox policy``, ``identity`` and ``token``: access administration."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from sealbox.cli.common import emit_json, info, json_option, open_vault, table, tty_prompt
from sealbox.errors import InvalidInput


def _duration(text: str | None) -> Any:
    if text is None:
        return None
    from sealbox.model import parse_duration

    return parse_duration(text)


def force_option(func: Any) -> Any:
    """``--force``: the core refuses to remove the last admin (or root holder) without it."""
    return click.option(
        "--force",
        is_flag=True,
        help="Allow the change even if it leaves no admin (audited; recovery needs the"
        " master key: `sealbox identity recover-admin`).",
    )(func)


# -- policies ----------------------------------------------------------------------------------
@click.group()
def policy() -> None:
    """Apply, list, show, delete and explain access policies."""


@policy.command("apply")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["toml", "yaml", "json"]),
    default=None,
    help="Default: from the file name.",
)
@force_option
def policy_apply(file: Path, fmt: str | None, force: bool) -> None:
    """Create or replace a policy from a TOML, YAML or JSON FILE."""
    import sys

    from sealbox.auth.policy import parse_policy_text

    if fmt is None:
        suffix = file.suffix.lstrip(".").lower()
        fmt = (
            {"yml": "yaml"}.get(suffix, suffix)
            if suffix in ("toml", "yaml", "yml", "json")
            else None
        )
        if fmt is None:
            raise InvalidInput(f"cannot tell the format of {file}: pass --format toml|yaml|json")
    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}") from None
    parsed = parse_policy_text(text, fmt=fmt, source=str(file))
    vault = open_vault()
    try:
        vault.accounts.apply_policy(parsed, force=force)
    finally:
        vault.close()
    info(f"Applied policy {parsed.name} ({len(parsed.rules)} rules)")


@policy.command("list")
@json_option
def policy_list(as_json: bool) -> None:
    """List policies."""
    vault = open_vault()
    try:
        policies = vault.accounts.list_policies()
    finally:
        vault.close()
    if as_json:
        emit_json([p.to_dict() for p in policies])
    else:
        table(
            ["policy", "rules", "description"],
            [[p.name, len(p.rules), p.description] for p in policies],
        )


@policy.command("show")
@click.argument("name")
def policy_show(name: str) -> None:
    """Print a policy as JSON."""
    vault = open_vault()
    try:
        found = vault.accounts.get_policy(name)
    finally:
        vault.close()
    emit_json(found.to_dict())


@policy.command("delete")
@click.argument("name")
@force_option
def policy_delete(name: str, force: bool) -> None:
    """Delete a policy (identities holding it lose what it granted at once)."""
    vault = open_vault()
    try:
        vault.accounts.delete_policy(name, force=force)
    finally:
        vault.close()
    info(f"Deleted policy {name}")


@policy.command("explain")
@click.option("--identity", required=True)
@click.option("--path", "path", required=True, help="project/env/NAME, or sys/<area>.")
@click.option("--capability", required=True, help="read, list, write, delete, rotate or admin.")
@json_option
def policy_explain(identity: str, path: str, capability: str, as_json: bool) -> int:
    """Print the decision for IDENTITY on PATH and the rule that made it (exit 4 if denied)."""
    vault = open_vault()
    try:
        decision = vault.accounts.explain(identity, path, capability)
    finally:
        vault.close()
    if as_json:
        emit_json(
            {
                "allowed": decision.allowed,
                "reason": decision.reason,
                "policy": decision.policy,
                "rule": decision.rule.to_dict() if decision.rule else None,
            }
        )
    else:
        click.echo(decision.explain())
    return 0 if decision.allowed else 4


def _new_password(label: str) -> str:
    """A person's password: SEALBOX_IDENTITY_PASSWORD, or typed twice at a prompt."""
    password = os.environ.get("SEALBOX_IDENTITY_PASSWORD")
    if password:
        return password
    prompt = tty_prompt()
    if prompt is None:
        raise InvalidInput("set SEALBOX_IDENTITY_PASSWORD or run in a terminal")
    password = prompt(label)
    if prompt("Repeat the password") != password:
        raise InvalidInput("the passwords do not match")
    return password


# -- identities ------------------------------------------------------------------------------
@click.group()
def identity() -> None:
    """People (password) and machines (role id + secret id)."""


@identity.command("create")
@click.argument("name")
@click.option(
    "--kind", type=click.Choice(["person", "machine"]), default="machine", show_default=True
)
@click.option("--policy", "policies", multiple=True, help="A policy to attach (repeatable).")
@json_option
def identity_create(name: str, kind: str, policies: tuple[str, ...], as_json: bool) -> None:
    """Create an identity. A person's password comes from SEALBOX_IDENTITY_PASSWORD or a prompt."""
    vault = open_vault()
    try:
        if kind == "person":
            password = _new_password(f"Password for {name}")
            created = vault.accounts.create_person(name, password, list(policies))
        else:
            created = vault.accounts.create_machine(name, list(policies))
    finally:
        vault.close()
    if as_json:
        emit_json(created.__dict__)
        return
    attached = ", ".join(created.policies) or "(none)"
    info(f"Created {created.kind} {created.name} with policies {attached}")
    if created.role_id:
        click.echo(f"role_id: {created.role_id}")
        info(f"Issue a secret id with: sealbox identity secret-id {name}")


@identity.command("list")
@json_option
def identity_list(as_json: bool) -> None:
    """List identities."""
    vault = open_vault()
    try:
        items = vault.accounts.list_identities()
    finally:
        vault.close()
    if as_json:
        emit_json([i.__dict__ for i in items])
    else:
        table(
            ["name", "kind", "policies", "created", "disabled"],
            [
                [
                    i.name,
                    i.kind,
                    ", ".join(i.policies),
                    i.created_at[:16],
                    "yes" if i.disabled else "",
                ]
                for i in items
            ],
        )


@identity.command("delete")
@click.argument("name")
@force_option
def identity_delete(name: str, force: bool) -> None:
    """Delete an identity and every token and secret id it has."""
    vault = open_vault()
    try:
        vault.accounts.delete_identity(name, force=force)
    finally:
        vault.close()
    info(f"Deleted identity {name}")


@identity.command("policies")
@click.argument("name")
@click.option(
    "--policy", "policies", multiple=True, help="The full new list (repeatable; none = no policy)."
)
@force_option
def identity_policies(name: str, policies: tuple[str, ...], force: bool) -> None:
    """Replace an identity's policies (takes effect on its live tokens at once)."""
    vault = open_vault()
    try:
        vault.accounts.set_policies(name, list(policies), force=force)
    finally:
        vault.close()
    info(f"{name}: policies {', '.join(policies) or '(none)'}")


@identity.command("recover-admin")
@click.argument("name")
def identity_recover_admin(name: str) -> None:
    """Give person NAME the root policy and a new password (creating it if need be).

    The way back from a lost admin: run it on the vault's host, embedded (SEALBOX_ADDR
    unset); it unlocks the vault with the master key first and is audited. The password
    comes from SEALBOX_IDENTITY_PASSWORD or a prompt (twice).
    """
    from sealbox.factory import recover_admin

    password = _new_password(f"New password for {name}")
    recovered = recover_admin(name=name, password=password, prompt=tty_prompt())
    info(
        f"{recovered.name}: policies {', '.join(recovered.policies)}; log in with the new password"
    )


@identity.command("secret-id")
@click.argument("name")
@click.option(
    "--uses", type=int, default=None, help="How many logins it allows (default: unlimited)."
)
@click.option("--ttl", default=None, help="How long it is valid (e.g. 1h).")
def identity_secret_id(name: str, uses: int | None, ttl: str | None) -> None:
    """Issue a secret id for a machine identity; printed once."""
    vault = open_vault()
    try:
        value = vault.accounts.new_secret_id(name, uses=uses, ttl=_duration(ttl))
    finally:
        vault.close()
    click.echo(value)


# -- tokens ----------------------------------------------------------------------------------
@click.group()
def token() -> None:
    """Create, list and revoke tokens (listed by accessor, never by value)."""


@token.command("create")
@click.option("--identity", default=None, help="Whose token (default: your own).")
@click.option("--ttl", default=None, help="Lifetime, e.g. 1h (default 1h).")
@click.option("--max-ttl", default=None, help="Longest lifetime with renewals (default 24h).")
@click.option(
    "--policy", "policies", multiple=True, help="Limit to these of the identity's policies."
)
@click.option(
    "--orphan",
    is_flag=True,
    help="Not a child of your token: it outlives it (needs admin on sys/tokens).",
)
@json_option
def token_create(
    identity: str | None,
    ttl: str | None,
    max_ttl: str | None,
    policies: tuple[str, ...],
    orphan: bool,
    as_json: bool,
) -> None:
    """Create a token; the value is printed once.

    Made with a token (remote mode), it is that token's child: it expires no later than
    its parent, holds no policy the parent lacks, and is revoked with it. A TTL above
    what is allowed is an error naming the maximum.
    """
    vault = open_vault()
    try:
        new = vault.accounts.create_token(
            identity=identity,
            ttl=_duration(ttl),
            max_ttl=_duration(max_ttl),
            policies=list(policies) or None,
            orphan=orphan,
        )
    finally:
        vault.close()
    if as_json:
        emit_json({"token": new.value, "accessor": new.accessor})
    else:
        click.echo(new.value)
        info(f"accessor: {new.accessor}")


@token.command("list")
@click.option("--identity", default=None)
@json_option
def token_list(identity: str | None, as_json: bool) -> None:
    """List tokens by accessor."""
    vault = open_vault()
    try:
        items = vault.accounts.list_tokens(identity)
    finally:
        vault.close()
    if as_json:
        emit_json([t.__dict__ for t in items])
    else:
        table(
            ["accessor", "identity", "policies", "method", "expires", "revoked", "parent"],
            [
                [
                    t.accessor,
                    t.identity,
                    ", ".join(t.policies),
                    t.auth_method,
                    t.expires_at[:19],
                    "yes" if t.revoked else "",
                    t.parent or "",
                ]
                for t in items
            ],
        )


@token.command("revoke")
@click.argument("accessor", required=False)
@click.option("--identity", default=None, help="Revoke every token of this identity.")
def token_revoke(accessor: str | None, identity: str | None) -> None:
    """Revoke one token (by accessor) or all of an identity's, with every token below."""
    if (accessor is None) == (identity is None):
        raise InvalidInput("give an ACCESSOR or --identity, not both")
    vault = open_vault()
    try:
        if identity is not None:
            count = vault.accounts.revoke_identity_tokens(identity)
            info(f"Revoked {count} token(s) of {identity}")
        else:
            assert accessor is not None
            vault.accounts.revoke_token(accessor)
            info(f"Revoked {accessor}")
    finally:
        vault.close()
