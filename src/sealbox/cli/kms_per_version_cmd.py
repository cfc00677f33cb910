"""``sealbox kms per-version``: a KMS call per version for the most sensitive secrets
(a subcommand of ``sealbox kms``, loaded lazily: cli/kms_cmds.py SUBCOMMANDS)."""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from sealbox.cli.common import emit_json, info, json_option, table
from sealbox.errors import InvalidInput

CLASSIFICATIONS = ("low", "medium", "high", "critical")


@click.command("per-version")
@click.option("--provider", help="The key provider that wraps each qualifying version's key.")
@click.option(
    "--classification",
    type=click.Choice(CLASSIFICATIONS),
    default="critical",
    show_default=True,
    help="Secrets classified at or above this have their versions wrapped by the provider.",
)
@click.option(
    "--cache-age",
    default="5m",
    show_default=True,
    help="How long a data key the provider unwrapped serves reads from memory (30s, 5m…).",
)
@click.option(
    "--cache-uses",
    type=int,
    default=1000,
    show_default=True,
    help="Reads one unwrap may serve before the provider is asked again.",
)
@click.option(
    "--cache-entries",
    type=int,
    default=10000,
    show_default=True,
    help="Data keys held in memory at most.",
)
@click.option("--no-cache", is_flag=True, help="Call the provider on every read.")
@click.option("--off", is_flag=True, help="New versions are wrapped by the vault's keys again.")
@click.option(
    "--migrate-to",
    metavar="PROVIDER|kek",
    help="Re-wrap every version a provider wraps itself under PROVIDER (or the vault's keys:"
    " `kek`); resumable, values untouched.",
)
@json_option
def per_version(
    provider: str | None,
    classification: str,
    cache_age: str,
    cache_uses: int,
    cache_entries: int,
    no_cache: bool,
    off: bool,
    migrate_to: str | None,
    as_json: bool,
) -> None:
    """Have a key provider wrap each version of the most sensitive secrets itself.

    By default every data key is wrapped by the vault's key-encryption keys in memory and
    a read never calls a key provider. With --provider, each new version of a secret
    classified at or above --classification costs one call to that provider to write,
    and reads unwrap through it via a cache bounded by --cache-age and --cache-uses.
    Losing that provider loses those versions. Without options: the current state.
    """
    from sealbox.factory import open_vault
    from sealbox.kms_per_version import PerVersionSetting
    from sealbox.model import Classification, parse_duration

    if sum((provider is not None, off, migrate_to is not None)) > 1:
        raise InvalidInput("give one of --provider, --off or --migrate-to")
    vault = open_vault()
    try:
        ops = vault.kms_per_version
        if provider is not None:
            age = 0.0 if no_cache else parse_duration(cache_age).total_seconds()
            setting = PerVersionSetting(
                provider,
                Classification(classification),
                age,
                1 if no_cache else cache_uses,
                0 if no_cache else cache_entries,
            )
            ops.configure(setting)
            cache = "no cache" if no_cache else f"cache {cache_age}, {cache_uses} uses"
            info(
                f"New versions of {classification}+ secrets are wrapped by key provider"
                f" {provider!r} ({cache})."
            )
        elif off:
            ops.configure(None)
            info("Off: new versions are wrapped by the vault's keys; existing ones stay readable.")
        elif migrate_to is not None:
            target = None if migrate_to == "kek" else migrate_to
            bar = _Progress()
            moved = ops.rewrap(target, progress=bar)
            bar.done()
            info(f"Re-wrapped {moved} version(s) under {migrate_to}.")
        status = ops.status()
    finally:
        vault.close()
    data: dict[str, Any] = {
        "setting": status.setting.to_dict() if status.setting else None,
        "versions": status.versions,
    }
    if as_json:
        emit_json(data)
        return
    if provider is None and not off and migrate_to is None:
        s = status.setting
        info("Per-version KMS wrapping: " + (f"on, provider {s.provider!r}" if s else "off"))
        if s:
            info(
                f"  threshold {s.min_classification.value}; cache {s.cache_max_age:g}s,"
                f" {s.cache_max_uses} uses, {s.cache_max_entries} entries"
            )
        table(("wrapped by", "versions"), sorted(status.versions.items()))


class _Progress:
    """A one-line progress report with an ETA on stderr."""

    def __init__(self) -> None:
        self._start = time.monotonic()
        self._shown = False

    def __call__(self, p: Any) -> None:
        elapsed = time.monotonic() - self._start
        eta = elapsed / p.done * (p.total - p.done) if p.done else 0.0
        sys.stderr.write(f"\rre-wrapped {p.done}/{p.total}  ETA {eta:.0f}s ")
        sys.stderr.flush()
        self._shown = True

    def done(self) -> None:
        if self._shown:
            sys.stderr.write("\n")
