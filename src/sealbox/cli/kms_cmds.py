"""``sealbox kms``: the key providers that protect the vault's KEKs.

Operator commands on the vault's own storage (embedded, or on a server's host with
SEALBOX_ADDR unset): list, status, add, remove here; rotate and migrate in
``kms_rotate_cmds``. Subcommands load lazily, like the top-level ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from sealbox.cli.common import emit_json, info, json_option, table, tty_prompt, warn
from sealbox.cli.lazy import lazy_group
from sealbox.errors import InvalidInput

if TYPE_CHECKING:
    from sealbox.model import KmsStatus
    from sealbox.vault import Vault

#: name -> ("module:attribute", summary); loaded on first use.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "list": ("sealbox.cli.kms_cmds:list_cmd", "The key providers and KEK versions."),
    "status": ("sealbox.cli.kms_cmds:status", "What each provider can open now; problems."),
    "add": ("sealbox.cli.kms_cmds:add", "Wrap every KEK under a new key provider."),
    "remove": (
        "sealbox.cli.kms_cmds:remove",
        "Drop a key provider (never the last that opens a key).",
    ),
    "per-version": (
        "sealbox.cli.kms_per_version_cmd:per_version",
        "A provider wraps each version of the most sensitive secrets itself.",
    ),
    "rotate": (
        "sealbox.cli.kms_rotate_cmds:rotate",
        "A new KEK version; re-wrap every data key (values untouched).",
    ),
    "migrate": (
        "sealbox.cli.kms_rotate_cmds:migrate",
        "Move the vault onto another key provider.",
    ),
}


@click.group(cls=lazy_group(SUBCOMMANDS, sort=False))
def kms() -> None:
    """Key providers: where the root of trust lives (a passphrase, an HSM, Transit, a cloud
    KMS). Each KEK is wrapped under every provider, and any one opens the vault. A KEK
    operation never re-encrypts values: rotating a key is not rotating a secret."""


def open_local() -> Vault:
    """The embedded vault (refused in remote mode: these commands act on its storage)."""
    from sealbox.factory import open_vault

    return open_vault(prompt=tty_prompt())


def options_of(pairs: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--option takes KEY=VALUE (not {pair[:40]!r})")
        out[key.strip()] = value
    return out


@click.command("list")
@json_option
def list_cmd(as_json: bool) -> None:
    """The key providers (in the order they are tried) and the KEK versions."""
    vault = open_local()
    try:
        providers, keks = vault.kms.providers(), vault.kms.keks()
    finally:
        vault.close()
    if as_json:
        emit_json(
            {
                "providers": [p._asdict() for p in providers],
                "keks": [k._asdict() for k in keks],
            }
        )
        return
    table(
        ["provider", "kind", "position", "config", "added"],
        [(p.name, p.kind, p.position, _config_text(p.config), p.created_at) for p in providers],
    )
    table(
        ["kek", "active", "data keys", "created"],
        [(k.kek_id, "yes" if k.active else "", k.versions, k.created_at) for k in keks],
    )


def _config_text(config: Any) -> str:
    shown = {k: v for k, v in dict(config).items() if k not in ("kdf", "public_key")}
    return ", ".join(f"{k}={v}" for k, v in sorted(shown.items()) if v not in (None, ""))


def status_json(found: KmsStatus) -> dict[str, Any]:
    return {
        "keks": [k._asdict() for k in found.keks],
        "providers": [p._asdict() for p in found.providers],
        "problems": list(found.problems),
    }


@click.command("status")
@click.option("--no-probe", is_flag=True, help="Compare stored wrappings only; call no provider.")
@json_option
def status(no_probe: bool, as_json: bool) -> None:
    """Each provider's reach and which KEKs it opens (each wrapping is unwrapped and compared).
    Exits 1 when a provider cannot open every KEK or cannot be reached. In remote mode
    (SEALBOX_ADDR) it asks the server (admin on sys/kms)."""
    from sealbox.cli.common import open_vault

    vault = open_vault()
    try:
        found = vault.kms_status(probe=not no_probe)
    finally:
        vault.close()
    if as_json:
        emit_json(status_json(found))
    else:
        rows = []
        for p in found.providers:
            reach = {True: "yes", False: "NO", None: "not tried"}[p.reachable]
            rows.append(
                (p.name, p.kind, p.key_id, reach, f"{len(p.opens)}/{len(found.keks)}"
                 if p.reachable else f"{len(p.wraps)}/{len(found.keks)} wrapped", p.error)
            )  # fmt: skip
        table(["provider", "kind", "key", "reachable", "opens", "error"], rows)
        for problem in found.problems:
            warn(problem)
        if not found.problems:
            info("every key provider opens every key-encryption key")
    if found.problems:
        raise click.exceptions.Exit(1)


@click.command("add")
@click.argument("name")
@click.option("--kind", required=True, help="local, shamir, pkcs11, transit, aws-kms, gcp-kms, …")
@click.option("--option", "option", multiple=True, help="KEY=VALUE for the provider (repeatable).")
@click.option("--position", type=int, default=None, help="Try order (default: last).")
@json_option
def add(name: str, kind: str, option: tuple[str, ...], position: int | None, as_json: bool) -> None:
    """Wrap every KEK under a new key provider NAME and store it (each wrapping is unwrapped
    again first). Needs the vault's keys open (any existing provider)."""
    options = options_of(option)
    vault = open_local()
    try:
        added = vault.kms.add(name, kind, options, position=position)
    finally:
        vault.close()
    if as_json:
        emit_json(
            {
                "provider": added.provider._asdict(),
                "shares": [s.reveal() for s in added.shares],
            }
        )
        return
    info(f"key provider {added.provider.name!r} ({added.provider.kind}) added: it opens every KEK")
    if added.shares:
        warn("these recovery shares are shown ONCE: give each to a different person")
        for i, share in enumerate(added.shares, 1):
            click.echo(f"share {i}: {share.reveal()}")


@click.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def remove(name: str, yes: bool) -> None:
    """Drop key provider NAME and its wrappings. Refused when it is the only one that can
    open some KEK: add another first."""
    if not yes and not click.confirm(f"Remove key provider {name!r}?", default=False):
        raise click.exceptions.Exit(1)
    vault = open_local()
    try:
        vault.kms.remove(name)
    finally:
        vault.close()
    info(f"key provider {name!r} removed")
