"""``sealbox scheduler``: run due rotations until stopped, on one node at a time."""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType

import click

from sealbox.cli.common import emit_json, info, json_option, tty_prompt
from sealbox.errors import InvalidInput


def _seconds(text: str, option: str) -> float:
    from sealbox.model import parse_duration

    try:
        seconds = parse_duration(text).total_seconds()
    except InvalidInput:
        raise InvalidInput(f"{option}: use a duration such as 30s, 5m or 1h") from None
    if not 1 <= seconds <= 3600:
        raise InvalidInput(f"{option} must be between 1s and 1h")
    return seconds


@click.command("scheduler")
@click.option("--once", is_flag=True, help="One round of every job, then exit (for cron).")
@click.option(
    "--rotate-every",
    default="60s",
    show_default=True,
    help="How often due rotations run (and stalled ones are resumed).",
)
@click.option(
    "--reap-every",
    default="30s",
    show_default=True,
    help="How often expired leases are revoked (their database users dropped).",
)
@click.option(
    "--per-round",
    type=click.IntRange(1, 1000),
    default=25,
    show_default=True,
    help="At most this many rotations start in a round (a burst is spread over rounds).",
)
@json_option
def scheduler(
    once: bool, rotate_every: str, reap_every: str, per_round: int, as_json: bool
) -> None:
    """Run the vault's periodic jobs: start due rotations, resume those a crashed process
    left or an unreachable upstream held up, and revoke expired leases. Safe on several nodes of one
    PostgreSQL vault: each job runs on the node that holds its lock, and another node takes
    over when that one stops or dies. Stops cleanly on SIGTERM or Ctrl-C."""
    from sealbox.factory import open_vault
    from sealbox.scheduler import Scheduler, default_jobs

    every = _seconds(rotate_every, "--rotate-every")
    reap = _seconds(reap_every, "--reap-every")
    addr = os.environ.get("SEALBOX_ADDR")
    if addr:
        # NOTE: a scheduler is a node of the vault (it takes locks in its database): it
        # cannot run through a server's API; `scheduler = true` runs one in the server.
        raise InvalidInput(
            "sealbox scheduler runs on the vault's own storage, and this shell is in remote"
            f" mode (SEALBOX_ADDR={addr[:100]})",
            hint="run it on the server's host with SEALBOX_ADDR unset, or set"
            " scheduler = true in the server's settings",
        )
    vault = open_vault(source="scheduler", prompt=tty_prompt())
    try:
        vault.open_keys()  # fail now, not at the first due rotation
        node = Scheduler(
            vault.locks,
            default_jobs(vault, rotate_every=every, reap_every=reap, per_round=per_round),
        )
        if once:
            rounds = node.tick()
            node.release()
            if as_json:
                emit_json([r._asdict() for r in rounds])
            for r in rounds:
                if not as_json:
                    state = r.summary if r.ran else f"not run here: {r.holder} holds it"
                    click.echo(f"{r.job}: {r.error or state}")
            if any(r.error for r in rounds):
                raise SystemExit(1)
            return
        stop = threading.Event()

        def stopping(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, stopping)
        signal.signal(signal.SIGINT, stopping)
        info(
            f"sealbox scheduler running as {node.owner}"
            f" (rotations every {every:g} s, leases reaped every {reap:g} s)"
        )
        node.run(
            stop,
            on_round=lambda r: (
                info(f"{r.job}: {r.error}" if r.error else f"{r.job}: {r.summary}")
                if r.ran and (r.error or r.summary)
                else None
            ),
        )
        info("sealbox scheduler stopped; its locks are free")
    finally:
        vault.close()
