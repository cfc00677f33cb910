"""``sealbox creds`` and ``sealbox lease``: dynamic database credentials under leases.

``sealbox creds ROLE`` makes a new database user and prints it with its lease;
``sealbox creds role …`` defines the roles; ``sealbox lease …`` lists, renews and revokes
leases and runs the reaper. Defining, showing and deleting roles, and issuing, listing (by
role), renewing, showing and revoking leases, work in remote mode too (the SDK's
``client.leases``); the role listing and the reaper run on the vault's host (the server
does not serve them yet), and in remote mode those say so.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sealbox.cli.common import emit_json, info, json_option, open_vault, table, warn
from sealbox.errors import InvalidInput, UpstreamError

if TYPE_CHECKING:
    from datetime import timedelta

    from sealbox.api import LeaseAdminAPI, LeasesAPI
    from sealbox.wire.leases import Credential, CredRole, LeaseInfo


def _duration(text: str | None, what: str) -> timedelta | None:
    if text is None:
        return None
    from sealbox.model import parse_duration

    try:
        return parse_duration(text)
    except InvalidInput as exc:
        raise InvalidInput(f"{what}: {exc.message}") from None


@contextlib.contextmanager
def leases() -> Iterator[LeasesAPI]:
    """The vault's (or the server's) lease service, closed afterwards."""
    vault = open_vault()
    try:
        service: LeasesAPI = getattr(vault, "leases")  # noqa: B009 - not in VaultAPI
        yield service
    finally:
        vault.close()


@contextlib.contextmanager
def lease_admin() -> Iterator[LeaseAdminAPI]:
    """The embedded vault's lease service with roles, listings and the reaper."""
    vault = open_vault()
    try:
        service = getattr(vault, "leases")  # noqa: B009 - not in VaultAPI
        if not hasattr(service, "reap"):
            raise InvalidInput(
                "the listing of credentials roles and the reaper are not served over HTTP"
                " yet: run this on the vault's host (unset SEALBOX_ADDR)"
            )
        admin: LeaseAdminAPI = service
        yield admin
    finally:
        vault.close()


def _statements(value: str | None, what: str) -> str:
    """Statements as given, or read from a file (``@FILE``) or stdin (``-``)."""
    if value is None:
        return ""
    if value == "-":
        return sys.stdin.read()
    if value.startswith("@"):
        path = Path(value[1:])
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"{what}: cannot read {path}: {exc.strerror}") from None
    return value


def _span(seconds: int) -> str:
    from datetime import timedelta as td

    from sealbox.auth.service import human_duration

    return human_duration(td(seconds=seconds))


def _show_role(role: CredRole) -> None:
    rows = [
        ("role", role.path),
        ("backend", role.backend),
        ("admin secret", role.admin),
        ("ttl", _span(role.ttl)),
        ("max ttl", _span(role.max_ttl)),
        ("max leases", "no limit" if role.max_leases is None else str(role.max_leases)),
        ("username template", role.username_template),
        ("creation", role.creation),
        ("revocation", role.revocation or "(default: drop the user, ending its sessions)"),
        ("renewal", role.renewal or "(default)"),
        ("created", f"{role.created_at[:19]} by {role.created_by}"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key:<{width}}  {value}")


def _lease_rows(items: list[LeaseInfo]) -> None:
    table(
        ["lease", "user", "identity", "expires", "state", "attempts", "last error"],
        [
            [
                x.id,
                x.username,
                x.identity,
                x.expires_at[:19],
                x.state,
                x.revoke_attempts or "",
                x.last_error if x.state != "live" else "",
            ]
            for x in items
        ],
    )


# -- sealbox creds -----------------------------------------------------------------------------
class CredsGroup(click.Group):
    """``creds ROLE`` issues; ``creds role …`` manages roles."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            return "issue", self.commands["issue"], args
        return super().resolve_command(ctx, args)


@click.group(cls=CredsGroup)
def creds() -> None:
    """Dynamic database credentials: `sealbox creds ROLE` makes a new database user under
    a lease (e.g. `sealbox creds payments/prod/db-readonly --ttl 30m`); `sealbox creds role`
    defines roles; `sealbox lease` renews and revokes."""


@creds.command("issue", hidden=True)
@click.argument("role")
@click.option("--ttl", default=None, help="Lease TTL (default: the role's), e.g. 30m.")
@json_option
def creds_issue(role: str, ttl: str | None, as_json: bool) -> None:
    """Make a new database user for ROLE and print it with its lease."""
    with leases() as service:
        cred = service.issue(role, ttl=_duration(ttl, "--ttl"))
    _print_credential(cred, as_json)


def _print_credential(cred: Credential, as_json: bool) -> None:
    from sealbox.wire.leases import encode_credential

    if as_json:
        emit_json(encode_credential(cred))
        return
    rows = [
        ("lease_id", cred.lease.id),
        ("expires", cred.lease.expires_at),
        ("max_expires", cred.lease.max_expires_at),
        ("username", cred.username),
        ("password", cred.password.reveal()),
    ]
    if cred.url is not None:
        rows.append(("url", cred.url.reveal()))
    for key, value in rows:
        click.echo(f"{key:<12} {value}")
    info("The password is shown once; revoke with `sealbox lease revoke LEASE_ID`.")


@creds.group("role")
def role_group() -> None:
    """Define, list, show and delete credentials roles."""


@role_group.command("create")
@click.argument("path")
@click.option(
    "--backend",
    "backend_name",
    default=None,
    type=click.Choice(["postgres", "mysql"]),
    help="Default: the admin URL's scheme (postgresql:// or mysql://).",
)
@click.option("--admin", required=True, help="The secret holding the admin URL (project/env/NAME).")
@click.option(
    "--creation",
    required=True,
    help="Statements making the user ({{name}}, {{password}}, {{expiration}}); @FILE or -.",
)
@click.option(
    "--revocation", default=None, help="Statements dropping it (default: drop, end sessions)."
)
@click.option(
    "--renewal", default=None, help="Statements run at renewal ({{name}}, {{expiration}})."
)
@click.option(
    "--username-template",
    default=None,
    help="Default v-{{identity}}-{{role}}-{{random}}; must use {{random}}.",
)
@click.option("--ttl", default="1h", show_default=True, help="Default lease TTL.")
@click.option("--max-ttl", default="24h", show_default=True, help="Longest life of a lease.")
@click.option("--max-leases", type=click.IntRange(min=1), default=None, help="Live lease quota.")
@click.option("--replace", is_flag=True, help="Redefine an existing role.")
def role_create(
    path: str,
    backend_name: str | None,
    admin: str,
    creation: str,
    revocation: str | None,
    renewal: str | None,
    username_template: str | None,
    ttl: str,
    max_ttl: str,
    max_leases: int | None,
    replace: bool,
) -> None:
    """Define credentials role PATH (project/env/role-name)."""
    ttl_span = _duration(ttl, "--ttl")
    max_span = _duration(max_ttl, "--max-ttl")
    assert ttl_span is not None and max_span is not None
    with leases() as service:
        role = service.define_role(
            path,
            backend_name=backend_name,
            admin=admin,
            creation=_statements(creation, "--creation"),
            revocation=_statements(revocation, "--revocation"),
            renewal=_statements(renewal, "--renewal"),
            username_template=username_template,
            ttl=ttl_span,
            max_ttl=max_span,
            max_leases=max_leases,
            replace=replace,
        )
    info(f"{'Replaced' if replace else 'Created'} credentials role {role.path}")


@role_group.command("list")
@click.option("--project", "-p", default=None)
@click.option("--env", "-e", default=None)
@json_option
def role_list(project: str | None, env: str | None, as_json: bool) -> None:
    """List the credentials roles you may see."""
    from sealbox.wire.leases import encode_role

    with lease_admin() as service:
        items = service.list_roles(project, env)
    if as_json:
        emit_json([encode_role(r) for r in items])
        return
    table(
        ["role", "backend", "admin secret", "ttl", "max ttl", "max leases"],
        [
            [r.path, r.backend, r.admin, _span(r.ttl), _span(r.max_ttl), r.max_leases or ""]
            for r in items
        ],
    )


@role_group.command("show")
@click.argument("path")
@json_option
def role_show(path: str, as_json: bool) -> None:
    """Show a credentials role."""
    from sealbox.wire.leases import encode_role

    with leases() as service:
        role = service.get_role(path)
    if as_json:
        emit_json(encode_role(role))
    else:
        _show_role(role)


@role_group.command("delete")
@click.argument("path")
def role_delete(path: str) -> None:
    """Delete a credentials role (refused while it has unrevoked leases)."""
    with leases() as service:
        service.delete_role(path)
    info(f"Deleted credentials role {path}")


# -- sealbox lease -----------------------------------------------------------------------------
@click.group()
def lease() -> None:
    """List, renew and revoke the leases of dynamic credentials; run the reaper."""


@lease.command("list")
@click.option("--role", default=None, help="Only this role's leases (project/env/role).")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked leases.")
@json_option
def lease_list(role: str | None, include_revoked: bool, as_json: bool) -> None:
    """List leases: yours, and those of roles you may list."""
    from sealbox.wire.leases import encode_lease

    with leases() as service:
        items = service.list_leases(role, include_revoked=include_revoked)
    if as_json:
        emit_json([encode_lease(x) for x in items])
    else:
        _lease_rows(items)


@lease.command("show")
@click.argument("lease_id")
@json_option
def lease_show(lease_id: str, as_json: bool) -> None:
    """Show one lease."""
    from sealbox.wire.leases import encode_lease

    with leases() as service:
        item = service.get_lease(lease_id)
    data = encode_lease(item)
    if as_json:
        emit_json(data)
        return
    for key, value in data.items():
        click.echo(f"{key:<16} {'' if value is None else value}")


@lease.command("renew")
@click.argument("lease_id")
@click.option("--increment", default=None, help="New TTL from now (default: the role's TTL).")
@json_option
def lease_renew(lease_id: str, increment: str | None, as_json: bool) -> None:
    """Extend a lease, up to its max TTL."""
    from sealbox.wire.leases import encode_lease

    with leases() as service:
        item = service.renew(lease_id, increment=_duration(increment, "--increment"))
    if as_json:
        emit_json(encode_lease(item))
    else:
        info(f"Renewed {item.id} until {item.expires_at} (max {item.max_expires_at})")


@lease.command("revoke")
@click.argument("lease_id", required=False)
@click.option("--prefix", default=None, help="Revoke every lease of this role (or id prefix).")
@click.option(
    "--force",
    is_flag=True,
    help="Forget the lease even if its database cannot be reached or refuses (admin).",
)
def lease_revoke(lease_id: str | None, prefix: str | None, force: bool) -> None:
    """Revoke a lease now: its database user is dropped."""
    if (lease_id is None) == (prefix is None):
        raise InvalidInput("give a LEASE_ID or --prefix ROLE, not both")
    with leases() as service:
        if prefix is not None:
            left = service.revoke_prefix(prefix, force=force)
            if left:
                for x in left:
                    warn(f"{x.id} not revoked: {x.last_error}; the reaper retries it")
                raise UpstreamError(
                    f"{len(left)} lease(s) of {prefix} could not be revoked (see above)"
                )
            info(f"Revoked the leases of {prefix}")
            return
        assert lease_id is not None
        item = service.revoke(lease_id, force=force)
    note = f" ({item.last_error})" if item.last_error else ""
    info(f"Revoked {item.id}{note}")


@lease.command("reap")
@json_option
def lease_reap(as_json: bool) -> None:
    """Revoke expired leases now (what the scheduler will do), retrying failed ones."""
    with lease_admin() as service:
        report = service.reap()
    if as_json:
        data: dict[str, Any] = {
            "revoked": list(report.revoked),
            "failed": [{"lease": lid, "error": why} for lid, why in report.failed],
            "more": report.more,
        }
        emit_json(data)
    else:
        info(f"Revoked {len(report.revoked)} lease(s)")
        for lid, why in report.failed:
            warn(f"{lid} not revoked: {why}; retried later")
        if report.more:
            info("More leases are due: run it again")
    if report.failed:
        raise UpstreamError(f"{len(report.failed)} lease(s) could not be revoked; retried later")
