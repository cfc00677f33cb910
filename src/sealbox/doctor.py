"""Hygiene checks for a working directory and the vault (``sealbox doctor``).

Each check returns findings with a level (ok, warn, fail) and a message naming files,
keys and secret paths, never values.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sealbox.config import find_binding, load_config
from sealbox.errors import SealboxError
from sealbox.factory import open_vault, resolve_home
from sealbox.kms.master import PassphrasePrompt

if TYPE_CHECKING:
    from sealbox.vault import Vault


@dataclass(frozen=True)
class Finding:
    level: str  # ok | warn | fail
    check: str
    message: str


def _git_ignored(directory: Path, files: list[Path]) -> set[Path] | None:
    """Which files git ignores; None when the directory is not in a git work tree."""
    try:
        inside = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "--is-inside-work-tree"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        return None
    if not files:
        return set()
    proc = subprocess.run(
        ["git", "-C", str(directory), "check-ignore", "--no-index", "--stdin"],
        input="\n".join(str(f) for f in files),
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return {Path(line) for line in proc.stdout.splitlines() if line}


def _dotenv_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.name.startswith(".env") and p.is_file())


def check_dotenv_files(directory: Path) -> list[Finding]:
    from sealbox.delivery.dotenv_io import parse_dotenv

    findings = []
    candidates = [p for p in _dotenv_files(directory) if p.name != ".env.example"]
    with_values = []
    for path in candidates:
        try:
            parsed = parse_dotenv(
                path.read_text(encoding="utf-8", errors="replace"), source=path.name
            )
        except OSError:
            continue
        if any(v for v in parsed.values.values()):
            with_values.append(path)
    ignored = _git_ignored(directory, with_values)
    for path in with_values:
        if ignored is None:
            findings.append(
                Finding(
                    "warn",
                    "dotenv",
                    f"{path.name} holds values and this is not a git work tree;"
                    " keep it out of version control",
                )
            )
        elif path not in ignored:
            findings.append(
                Finding(
                    "fail",
                    "dotenv",
                    f"{path.name} holds values but is not git-ignored: add it to .gitignore"
                    f" (then move its values into sealbox: `sealbox import {path.name}`)",
                )
            )
        else:
            findings.append(Finding("ok", "dotenv", f"{path.name} is git-ignored"))
    return findings


def check_key_files(env: Mapping[str, str]) -> list[Finding]:
    findings = []
    home = resolve_home(None, env)
    cfg = load_config(home)
    if cfg is None:
        return [Finding("fail", "vault", f"no vault configured in {home}: run `sealbox init`")]
    paths = [cfg.path]
    if cfg.key_file is not None:
        paths.append(cfg.key_file)
    if "://" not in cfg.storage:
        paths.append(Path(cfg.storage.removeprefix("sqlite:")).expanduser())
    for path in paths:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            findings.append(Finding("fail", "files", f"{path} is missing"))
            continue
        if mode & 0o077:
            findings.append(
                Finding("fail", "files", f"{path} is mode {mode:o}; run chmod 600 {path}")
            )
        else:
            findings.append(Finding("ok", "files", f"{path} is private ({mode:o})"))
    return findings


def check_vault(
    directory: Path, env: Mapping[str, str], prompt: PassphrasePrompt | None
) -> list[Finding]:
    findings: list[Finding] = []
    try:
        vault = open_vault(env=env, prompt=prompt, source="doctor")
    except SealboxError as exc:
        return [Finding("fail", "vault", f"vault unreachable: {exc.message}")]
    try:
        binding = find_binding(directory)
        if binding is None:
            findings.append(
                Finding(
                    "warn",
                    "binding",
                    "no sealbox.toml here: run `sealbox setup --project P --env E`",
                )
            )
        elif binding.project not in vault.list_projects():
            findings.append(
                Finding(
                    "fail",
                    "binding",
                    f"{binding.path} names project {binding.project!r},"
                    " which the vault does not have",
                )
            )
        elif binding.env not in vault.list_envs(binding.project):
            findings.append(
                Finding(
                    "fail",
                    "binding",
                    f"{binding.path} names environment {binding.project}/{binding.env},"
                    " which does not exist",
                )
            )
        else:
            findings.append(Finding("ok", "binding", f"bound to {binding.project}/{binding.env}"))
        try:
            problems = vault.inventory.verify()
        except SealboxError as exc:
            findings.append(Finding("warn", "integrity", f"integrity not checked: {exc.message}"))
            return findings
        if problems:
            findings.extend(Finding("fail", "integrity", p) for p in problems)
        else:
            findings.append(Finding("ok", "integrity", "every version decrypts and authenticates"))
        # Events a stopped server spooled and did not store, or a spool kept as evidence.
        findings.extend(Finding("warn", "audit", n) for n in vault.audit.spool_notices())
        findings.extend(_check_example(vault, directory / ".env.example"))
        findings.extend(check_rotations(vault))
        findings.extend(check_leases(vault))
        findings.extend(check_key_providers(vault))
    finally:
        vault.close()
    return findings


def check_key_providers(vault: Vault) -> list[Finding]:
    """The key providers against their stored wrappings: one that cannot be reached, or
    holds no (or a stale) wrapping of some KEK, is a warning — the vault still opens
    through the others, but losing them would lose it (issue 13)."""
    try:
        found = vault.kms.status()
    except SealboxError as exc:
        return [Finding("warn", "kms", f"key providers not checked: {exc.message}")]
    findings = [Finding("warn", "kms", p) for p in found.problems]
    usable = [p.name for p in found.providers if p.reachable is not False and not p.missing]
    if len(found.providers) == 1:
        only = found.providers[0]
        findings.append(
            Finding(
                "ok" if not found.problems else "warn",
                "kms",
                f"one key provider ({only.name}, {only.kind}): losing its key loses the vault;"
                " `sealbox kms add` another (recovery shares, an HSM) for redundancy",
            )
        )
    elif not found.problems:
        findings.append(Finding("ok", "kms", f"{len(usable)} key providers, each opens every KEK"))
    old = [k for k in found.keks if not k.active and k.versions]
    if old:
        count = sum(k.versions for k in old)
        findings.append(
            Finding(
                "warn",
                "kms",
                f"{count} data key(s) still wrapped by {len(old)} older KEK version(s): finish"
                " with `sealbox kms rotate`",
            )
        )
    return findings


def check_rotations(vault: Any) -> list[Finding]:
    """Rotations that wait on a failure, and scheduled ones that are overdue (``vault``:
    the embedded vault or a server's client, both with ``rotations``)."""
    findings: list[Finding] = []
    try:
        waiting = vault.rotations.status(failed_only=True)
        overdue = [d for d in vault.rotations.due() if d.overdue]
    except SealboxError as exc:
        return [Finding("warn", "rotation", f"rotations not checked: {exc.message}")]
    for r in waiting:
        findings.append(
            Finding(
                "warn",
                "rotation",
                f"rotation {r.id} of {r.ref.path} {r.state.value} at {r.step}: {r.error};"
                f" run `sealbox rotation resume {r.id}` or `sealbox rotation cancel {r.id}`",
            )
        )
    for d in overdue:
        findings.append(
            Finding(
                "warn",
                "rotation",
                f"{d.ref.path} is overdue for rotation (due {d.due_at:%Y-%m-%d %H:%M} UTC);"
                f" run `sealbox rotate {d.ref.path}`",
            )
        )
    return findings


def check_leases(vault: Vault, now: datetime | None = None) -> list[Finding]:
    """Leases whose revocation keeps failing, or that expired and were not reaped (their
    database users still exist)."""
    from datetime import UTC

    at = (now or datetime.now(UTC)).isoformat()
    try:
        live = vault.leases.list_leases()
    except SealboxError as exc:
        return [Finding("warn", "leases", f"leases not checked: {exc.message}")]
    findings = [
        Finding(
            "warn",
            "leases",
            f"lease {x.id} (user {x.username}) could not be revoked after"
            f" {x.revoke_attempts} attempt(s): {x.last_error}; retried by `sealbox lease reap`,"
            f" or forget it with `sealbox lease revoke {x.id} --force`",
        )
        for x in live
        if x.revoke_attempts
    ]
    unreaped = [x for x in live if not x.revoke_attempts and x.expires_at <= at]
    if unreaped:
        findings.append(
            Finding(
                "warn",
                "leases",
                f"{len(unreaped)} lease(s) expired and were not revoked (their database"
                " users still exist): run `sealbox lease reap`, or `sealbox scheduler`",
            )
        )
    return findings


def _check_example(vault: Vault, example: Path) -> list[Finding]:
    """A ``.env.example`` must hold placeholders, never a value the vault stores."""
    from sealbox.delivery.dotenv_io import parse_dotenv

    if not example.is_file():
        return []
    parsed = parse_dotenv(
        example.read_text(encoding="utf-8", errors="replace"), source=example.name
    )
    keys = [k for k, v in parsed.values.items() if v]
    matches = vault.inventory.find_values([parsed.values[k] for k in keys])
    findings = [
        Finding(
            "fail",
            "example",
            f".env.example: {keys[m.candidate]} holds the real value of {m.path}"
            f" (version {m.version}); replace it with a placeholder",
        )
        for m in matches
    ]
    if not matches:
        findings.append(Finding("ok", "example", ".env.example holds no value stored in the vault"))
    return findings


def check_remote(directory: Path, env: Mapping[str, str]) -> list[Finding]:
    """Remote mode: the server answers, the token is live, the binding exists there."""
    from sealbox.factory import connect

    addr = env.get("SEALBOX_ADDR", "")
    findings: list[Finding] = []
    try:
        client = connect(env=env, source="doctor")
    except SealboxError as exc:
        return [Finding("fail", "server", f"cannot use {addr}: {exc.message}")]
    try:
        token_self = getattr(client, "token_self", None)
        if callable(token_self):
            try:
                me = token_self()
            except SealboxError as exc:
                return [Finding("fail", "server", f"{addr}: {exc.message}")]
            findings.append(
                Finding(
                    "ok",
                    "server",
                    f"{addr} answers; logged in as {me.get('identity')}"
                    f" (token expires {me.get('expires_at')})",
                )
            )
        binding = find_binding(directory)
        if binding is None:
            findings.append(Finding("warn", "binding", "no sealbox.toml here: run `sealbox setup`"))
        else:
            try:
                envs = client.list_envs(binding.project)
            except SealboxError as exc:
                findings.append(
                    Finding("fail", "binding", f"{binding.path}: {binding.project}: {exc.message}")
                )
            else:
                if binding.env in envs:
                    findings.append(
                        Finding("ok", "binding", f"bound to {binding.project}/{binding.env}")
                    )
                else:
                    findings.append(
                        Finding(
                            "fail",
                            "binding",
                            f"{binding.path} names {binding.project}/{binding.env},"
                            " which the server does not have",
                        )
                    )
        findings.append(
            Finding(
                "warn",
                "example",
                ".env.example values and vault integrity are checked on the embedded vault"
                " (on the server's host, unset SEALBOX_ADDR)",
            )
        )
        if getattr(client, "rotations", None) is not None:
            findings.extend(check_rotations(client))
    finally:
        client.close()
    return findings


def run_checks(
    directory: Path, *, env: Mapping[str, str] = os.environ, prompt: PassphrasePrompt | None = None
) -> list[Finding]:
    if env.get("SEALBOX_ADDR"):
        return [*check_dotenv_files(directory), *check_remote(directory, env)]
    return [
        *check_dotenv_files(directory),
        *check_key_files(env),
        *check_vault(directory, env, prompt),
    ]
