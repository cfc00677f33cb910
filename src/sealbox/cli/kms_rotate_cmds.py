"""``sealbox kms rotate`` and ``sealbox kms migrate``: a new KEK version (every data key
re-wrapped under it, values untouched), and moving the vault onto another key provider.

Progress goes to stderr: a bar with an ETA on a terminal, a plain line every few seconds
otherwise. Ctrl-C stops after the batch being stored; ``kms rotate --resume`` continues.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import click

from sealbox.cli.common import emit_json, info, json_option, warn
from sealbox.cli.kms_cmds import open_local, options_of
from sealbox.model import RewrapProgress

#: Seconds between two plain progress lines (stderr not a terminal).
PLAIN_EVERY = 5.0
EXIT_INTERRUPTED = 130


class _Interrupt:
    """SIGINT asks the re-wrap to stop after its batch (a second one stops at once)."""

    def __init__(self) -> None:
        self.asked = False

    def __call__(self) -> bool:
        return self.asked

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        def handler(signum: int, frame: FrameType | None) -> None:
            if self.asked:
                raise KeyboardInterrupt
            self.asked = True
            click.echo("stopping after this batch (Ctrl-C again to stop now)", err=True)

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _progress() -> Iterator[Callable[[RewrapProgress], None]]:
    """A progress callback: a rich bar with an ETA on a terminal, plain lines otherwise."""
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        task = bar.add_task("re-wrapping data keys", total=None)

        def show(p: RewrapProgress) -> None:
            what = {"wait": "waiting for servers to see the new key"}.get(
                p.phase, f"re-wrapping data keys ({p.phase})"
            )
            bar.update(task, completed=p.done, total=p.total or None, description=what)

        with bar:
            yield show
        return

    last = [0.0]
    start = time.monotonic()

    def plain(p: RewrapProgress) -> None:
        now = time.monotonic()
        if p.phase != "wait" and now - last[0] < PLAIN_EVERY and p.done < p.total:
            return
        last[0] = now
        if p.phase == "wait":
            click.echo("waiting for running servers to see the new key-encryption key", err=True)
            return
        rate = p.done / max(now - start, 1e-6)
        eta = (p.total - p.done) / rate if rate > 0 else 0.0
        click.echo(
            f"re-wrapped {p.done}/{p.total} data keys under {p.kek_id} ({p.phase}; eta {eta:.0f}s)",
            err=True,
        )

    yield plain


@click.command("rotate")
@click.option("--resume", is_flag=True, help="Finish an unfinished rotation (no new KEK).")
@click.option("--retire-old", is_flag=True, help="Then delete the old KEKs nothing uses.")
@click.option("--batch", type=int, default=2000, show_default=True,
              help="Data keys re-wrapped per transaction.")  # fmt: skip
@json_option
def rotate(resume: bool, retire_old: bool, batch: int, as_json: bool) -> None:
    """Make a new KEK version (wrapped under every key provider) and re-wrap every data key
    under it. Values are never re-encrypted: to change a secret's value, use `sealbox rotate`.

    Resumable: an interrupted or killed rotation is finished with --resume (plain
    `kms rotate` refuses while one is unfinished, rather than making yet another KEK). Old
    KEKs stay, so every version still opens, until --retire-old (which first waits until
    running servers have had time to see the new KEK)."""
    vault = open_local()
    stop = _Interrupt()
    try:
        with stop.installed(), _progress() as show:
            done = vault.kms_rotation.rotate(
                resume=resume, retire_old=retire_old, batch=batch, progress=show, stop=stop
            )
    finally:
        vault.close()
    if as_json:
        emit_json(done._asdict())
    else:
        made = "new key-encryption key" if done.created else "key-encryption key"
        info(f"{made} {done.kek_id} is active; {done.rewrapped} data key(s) re-wrapped under it")
        if done.providers_rewrapped:
            names = ", ".join(done.providers_rewrapped)
            info(f"re-wrapped under each provider's newest key: {names}")
        if done.retired:
            info(f"retired old key-encryption key(s): {', '.join(done.retired)}")
    if not done.complete:
        warn(f"stopped: {done.remaining} data key(s) left; `sealbox kms rotate --resume` continues")
        raise click.exceptions.Exit(EXIT_INTERRUPTED)


@click.command("migrate")
@click.option("--to", "to", required=True, help="The key provider to move onto.")
@click.option("--kind", default=None, help="Its kind, to add it when it is not there yet.")
@click.option("--option", "option", multiple=True, help="KEY=VALUE for a provider to add.")
@click.option("--keep", multiple=True, help="A provider to keep (e.g. recovery shares).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
def migrate(
    to: str, kind: str | None, option: tuple[str, ...], keep: tuple[str, ...], yes: bool,
    as_json: bool,
) -> None:  # fmt: skip
    """Move the vault onto key provider TO: add it (with --kind/--option) unless it is
    there, check that it opens every KEK, then remove every other provider but --keep.
    Nothing is removed before TO is proven; a rerun continues where it stopped."""
    options = options_of(option)
    if not yes and not click.confirm(
        f"Move the vault onto {to!r} and remove every other key provider"
        f"{' but ' + ', '.join(keep) if keep else ''}?",
        default=False,
    ):
        raise click.exceptions.Exit(1)
    vault = open_local()
    try:
        done = vault.kms_rotation.migrate(to, kind=kind, options=options, keep=keep)
    finally:
        vault.close()
    if as_json:
        out: dict[str, Any] = done._asdict()
        out["shares"] = [s.reveal() for s in done.shares]
        emit_json(out)
        return
    if done.added:
        info(f"key provider {to!r} added: it opens every KEK")
    info(f"the vault is on {to!r}; removed: {', '.join(done.removed) or 'none'}")
    if done.shares:
        warn("these recovery shares are shown ONCE: give each to a different person")
        for i, share in enumerate(done.shares, 1):
            click.echo(f"share {i}: {share.reveal()}")
