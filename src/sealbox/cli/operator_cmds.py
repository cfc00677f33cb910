"""``sealbox operator init | unseal | seal | status``: unseal shares and the seal (Vault's
``operator`` commands), on the embedded vault or, with SEALBOX_ADDR, a server."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import click

from sealbox.cli.common import info, tty_prompt, warn
from sealbox.errors import InvalidInput


@click.group()
def operator() -> None:
    """Unseal shares: init, unseal, seal, status (embedded, or a server with SEALBOX_ADDR)."""


def _options(pairs: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--option takes key=value, not {pair[:40]!r}")
        out[key] = value
    return out


@operator.command("init")
@click.option("--shares", type=int, default=5, show_default=True, help="Shares to make (1-16).")
@click.option(
    "--threshold", type=int, default=3, show_default=True, help="Shares needed to unseal."
)
@click.option(
    "--auto-unseal",
    "auto_unseal",
    default=None,
    metavar="NAME",
    help="Also make key provider NAME that opens the vault unattended (the shares recover it).",
)
@click.option("--kind", default=None, help="The auto-unseal provider's kind (pkcs11, transit …).")
@click.option(
    "--option", "option", multiple=True, metavar="KEY=VALUE", help="An auto-unseal option."
)
@click.option("--storage", default=None, help="Storage URL for a new vault (default: SQLite).")
def init(
    shares: int,
    threshold: int,
    auto_unseal: str | None,
    kind: str | None,
    option: tuple[str, ...],
    storage: str | None,
) -> None:
    """Split a new key into unseal shares and print them ONCE.

    With no vault here: create one that opens only with THRESHOLD of SHARES shares (or,
    with --auto-unseal, unattended through that provider, the shares as its recovery).
    On an existing vault: add the shares as a `recovery` key provider.
    """
    from sealbox.factory import operator_init

    made = operator_init(
        shares=shares,
        threshold=threshold,
        auto_unseal=auto_unseal,
        kind=kind,
        options=_options(option),
        storage=storage,
        prompt=tty_prompt(),
    )
    what = "Recovery share" if (made.existing or made.auto_unseal) else "Unseal share"
    for i, share in enumerate(made.shares, 1):
        click.echo(f"{what} {i}: {share}")
    warn(
        f"these {len(made.shares)} shares are shown once and stored nowhere: give one to each"
        f" operator now. Any {made.threshold} of them open the vault; fewer reveal nothing."
    )
    if made.existing:
        info("Added key provider 'recovery' to the vault (every key-encryption key wrapped).")
    elif made.auto_unseal:
        info(f"Vault created in {made.home}: opens unattended by {made.auto_unseal!r}.")
    else:
        info(f"Vault created in {made.home}: sealed until {made.threshold} shares are given.")


def _share_reader(prompt_label: str) -> Iterator[str]:
    """Shares from the terminal (hidden), else one per line of stdin."""
    prompt = tty_prompt()
    if prompt is not None and sys.stdin.isatty():
        n = 1
        while True:
            yield prompt(f"{prompt_label} {n} (hidden)")
            n += 1
    for line in sys.stdin:
        if line.strip():
            yield line.strip()


def _progress(status: Mapping[str, Any]) -> str:
    if not status.get("sealed"):
        return "Unsealed."
    return f"Unseal progress: {status.get('progress', 0)}/{status.get('t', 0)}"


@operator.command("unseal")
@click.option("--reset", is_flag=True, help="Forget the shares given so far (a server).")
@click.option(
    "--for",
    "duration",
    default="8h",
    show_default=True,
    help="Embedded: how long the unlock session started from the shares lasts.",
)
def unseal(reset: bool, duration: str) -> None:
    """Give unseal shares (hidden prompt, or one per line on stdin).

    Embedded: takes shares until the threshold, then prints `export SEALBOX_SESSION=…`
    like `sealbox unlock`. Remote (SEALBOX_ADDR): sends one share to the server and shows
    its progress; each operator runs it with their own share.
    """
    from sealbox.model import parse_duration

    addr = os.environ.get("SEALBOX_ADDR")
    if addr:
        from sealbox.client.seal import submit_unseal

        if reset:
            info(_progress(submit_unseal(addr, reset=True)) + " (reset)")
            return
        share = next(_share_reader("Unseal share"), None)
        if not share:
            raise InvalidInput("no share given")
        info(_progress(submit_unseal(addr, share)))
        return
    if reset:
        raise InvalidInput("--reset is for a server (SEALBOX_ADDR): here shares live one run")
    from sealbox.factory import operator_unseal

    env = {k: v for k, v in os.environ.items() if k != "SEALBOX_SESSION"}

    def show(status: Any) -> None:
        info("Unsealed." if not status.sealed else
             f"Unseal progress: {status.progress}/{status.threshold}")  # fmt: skip

    token, expires = operator_unseal(
        _share_reader("Unseal share"), ttl=parse_duration(duration), env=env, progress=show
    )
    click.echo(f"export SEALBOX_SESSION={token}")
    info(f'Unlocked until {expires}. Use: eval "$(sealbox operator unseal)"')


@operator.command("seal")
def seal() -> None:
    """Seal: a server drops its keys from memory (admin token); the embedded vault ends
    every unlock session (as `sealbox lock`)."""
    addr = os.environ.get("SEALBOX_ADDR")
    if addr:
        from sealbox.client.credentials import load_token
        from sealbox.client.seal import seal as _seal
        from sealbox.config import default_home
        from sealbox.errors import AuthenticationFailed

        token = os.environ.get("SEALBOX_TOKEN") or load_token(default_home(os.environ), addr)
        if not token:
            raise AuthenticationFailed(f"no token for {addr[:100]}", hint_key="login_addr",
                                       hint_args={"addr": addr[:100]})  # fmt: skip
        _seal(addr, token)
        info(f"Sealed {addr}: its keys left its memory; unseal it with its shares.")
        return
    from sealbox.factory import lock

    count = lock()
    info(f"Sealed: {count} unlock session(s) ended. Run `unset SEALBOX_SESSION` in your shell.")


@operator.command("status")
def status() -> int:
    """Seal status (exit 2 when sealed, as `bao status`)."""
    addr = os.environ.get("SEALBOX_ADDR")
    if addr:
        from sealbox.client.seal import seal_status

        data = seal_status(addr)
        sealed, t, n, progress = data["sealed"], data["t"], data["n"], data["progress"]
        kind = data.get("type", "shamir")
    else:
        from sealbox.factory import seal_status as _status

        st = _status()
        sealed, t, n, progress, kind = st.sealed, st.threshold, st.shares, st.progress, "shamir"
    click.echo(f"Seal type      {kind}")
    click.echo(f"Sealed         {str(sealed).lower()}")
    click.echo(f"Total shares   {n}")
    click.echo(f"Threshold      {t}")
    click.echo(f"Unseal progress {progress}/{t}")
    return 2 if sealed else 0
