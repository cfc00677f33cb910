"""What ``sealbox run`` does once its arguments are parsed: check them, open the vault,
hand over to :mod:`sealbox.delivery`, and word what the user should hear.

Plain ``run`` replaces itself with the command (exec). With ``--watch`` or ``--mount``
sealbox stays as a supervising parent (:mod:`sealbox.delivery.supervise`).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from sealbox.cli.run_args import RunArgs
from sealbox.cli.scope import open_vault, parse_only, resolve_scope
from sealbox.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from sealbox.api import LeasesAPI
    from sealbox.model import SecretValue
    from sealbox.wire.leases import Credential


def run_command(args: RunArgs) -> int:
    from sealbox.delivery.process import child_environment, exec_command, parent_environment

    if not args.command:
        raise InvalidInput("no command given: use `sealbox run -- COMMAND [ARGS…]`")
    p, e = resolve_scope(args.project, args.env)
    names = parse_only(args.only)
    if not args.watch and (args.on_change is not None or args.grace is not None):
        raise InvalidInput("--on-change and --grace apply to --watch")
    if args.mount is None and (args.mount_format is not None or args.env_too):
        raise InvalidInput("--mount-format and --env-too apply to --mount")
    creds = parse_creds(args.creds)
    if args.watch or args.mount is not None or creds:
        # NOTE: with --creds sealbox must outlive the command, to revoke the lease after.
        return _supervised(args, p, e, names, creds)
    vault = open_vault(prefer_offline=args.prefer_offline)
    try:
        secrets = vault.resolve(p, e, only=names, purpose="run")
    finally:
        vault.close()
    from sealbox.model import as_variables

    child_env = child_environment(
        parent_environment(), as_variables(secrets), preserve_env=args.preserve_env
    )
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        exec_command(args.command, child_env)
    except NotFound as exc:
        print(f"sealbox: {exc.message}", file=sys.stderr)
        return 127
    except InvalidInput as exc:
        print(f"sealbox: {exc.message}", file=sys.stderr)
        return 126
    return 0  # pragma: no cover - exec does not return


def _report(message: str) -> None:
    print(f"sealbox: {message}", file=sys.stderr)


def parse_creds(text: str | None) -> list[tuple[str, str]]:
    """``--creds DB=payments/prod/db-readonly,RO=…`` as (variable prefix, role) pairs."""
    if text is None:
        return []
    from sealbox.model import NAME_RE

    pairs: list[tuple[str, str]] = []
    for item in (part.strip() for part in text.split(",")):
        var, eq, role = item.partition("=")
        if not eq or not NAME_RE.match(var) or not role:
            raise InvalidInput(
                f"invalid --creds {item[:80]!r}: use VAR=project/env/role (VAR a variable name)"
            )
        if var in {v for v, _ in pairs}:
            raise InvalidInput(f"--creds names {var} twice")
        pairs.append((var, role))
    return pairs


def _supervised(
    args: RunArgs,
    project: str,
    env: str,
    names: list[str] | None,
    creds: list[tuple[str, str]] | None = None,
) -> int:
    from sealbox.delivery.process import parent_environment
    from sealbox.delivery.supervise import Supervision, Supervisor

    options = Supervision(
        watch=args.watch,
        action=_parse_action(args.on_change or "restart"),
        grace=_parse_grace(args.grace or "10s"),
        mount=args.mount,
        mount_format=_parse_format(args.mount_format or "dotenv"),
        env_too=args.env_too,
        preserve_env=args.preserve_env,
    )
    vault = open_vault(prefer_offline=args.prefer_offline)
    issued: list[Credential] = []
    service: LeasesAPI | None = getattr(vault, "leases", None) if creds else None
    try:
        credentials: dict[str, SecretValue] = {}
        if creds:
            if service is None:
                raise InvalidInput("this vault does not serve dynamic credentials")
            for var, role in creds:
                cred = service.issue(role)
                issued.append(cred)
                credentials.update(_credential_env(var, cred))
        supervisor = Supervisor(
            vault,
            project,
            env,
            names,
            list(args.command),
            options,
            parent_env=parent_environment(),
            report=_report,
            credentials=credentials,
            tick=_Renewer(service, issued).tick if issued and service is not None else None,
        )
        return supervisor.run()
    finally:
        try:
            if service is not None:
                _revoke_all(service, issued)
        finally:
            vault.close()


class _Renewer:
    """Renews the command's leases while it runs (as Vault Agent does): each when two
    thirds of its time since the last renewal have passed, by its first TTL (less near
    the max TTL), until the max TTL is reached; then says once when the credentials stop
    working. Runs on the supervisor's thread (the vault is not shared between threads)."""

    def __init__(self, service: LeasesAPI, issued: list[Credential]) -> None:
        import time
        from datetime import datetime

        self.service = service
        now = time.monotonic()
        self.due: dict[str, float] = {}
        self.span: dict[str, float] = {}
        self.ends: dict[str, datetime] = {}
        for cred in issued:
            lease = cred.lease
            span = (
                datetime.fromisoformat(lease.expires_at) - datetime.fromisoformat(lease.issued_at)
            ).total_seconds()
            self.span[lease.id] = span
            self.ends[lease.id] = datetime.fromisoformat(lease.max_expires_at)
            self.due[lease.id] = now + max(1.0, span * 2 / 3)

    def tick(self, now: float) -> None:
        from datetime import UTC, datetime, timedelta

        from sealbox.errors import SealboxError

        for lease_id, at in list(self.due.items()):
            if now < at:
                continue
            # A second's margin under the max TTL, for clocks that differ a little.
            to_max = (self.ends[lease_id] - datetime.now(UTC)).total_seconds() - 1
            step = min(self.span[lease_id], to_max)
            if step < 1:
                del self.due[lease_id]
                _report(
                    f"note: lease {lease_id} reached its max TTL: the command's database"
                    f" credentials stop working at {self.ends[lease_id].isoformat()}"
                )
                continue
            try:
                self.service.renew(lease_id, increment=timedelta(seconds=int(step)))
            except SealboxError as exc:
                del self.due[lease_id]
                _report(
                    f"warning: lease {lease_id} could not be renewed ({exc.message}); the"
                    " command's database credentials stop working when it expires"
                )
                continue
            self.due[lease_id] = now + max(1.0, int(step) * 2 / 3)


def _credential_env(var: str, cred: Credential) -> dict[str, SecretValue]:
    from sealbox.model import SecretValue

    env = {
        f"{var}_USERNAME": SecretValue(cred.username),
        f"{var}_PASSWORD": cred.password,
        f"{var}_LEASE_ID": SecretValue(cred.lease.id),
    }
    if cred.url is not None:
        env[f"{var}_URL"] = cred.url
    return env


def _revoke_all(service: LeasesAPI, issued: list[Credential]) -> None:
    """The command ended (or never started): its leases go now. One that cannot be
    revoked now expires, and the reaper drops it."""
    from sealbox.errors import SealboxError

    for cred in issued:
        try:
            service.revoke(cred.lease.id)
        except SealboxError as exc:
            _report(
                f"warning: lease {cred.lease.id} was not revoked ({exc.message}); it expires"
                f" at {cred.lease.expires_at} and the reaper drops its user"
            )


def _parse_action(text: str) -> int | None:
    """``restart`` (None) or ``signal:NAME`` (the signal number)."""
    import signal

    if text == "restart":
        return None
    kind, _, name = text.partition(":")
    if kind == "signal" and name:
        sig_name = name.upper() if name.upper().startswith("SIG") else f"SIG{name.upper()}"
        sig = getattr(signal, sig_name, None)
        if isinstance(sig, signal.Signals) and sig_name.isalnum():
            return int(sig)
    raise InvalidInput(
        f"invalid --on-change {text[:40]!r}: use restart or signal:NAME (e.g. signal:HUP)"
    )


def _parse_grace(text: str) -> float:
    from sealbox.model import parse_duration

    return parse_duration(text).total_seconds()


def _parse_format(text: str) -> str:
    from sealbox.delivery.mounts import MOUNT_FORMATS

    if text not in MOUNT_FORMATS:
        raise InvalidInput(f"invalid --mount-format {text[:40]!r}: use dotenv or json")
    return text
