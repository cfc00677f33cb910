"""What ``sealbox run`` does once its arguments are parsed (shared by both parsers).

Plain ``run`` replaces itself with the command (exec). With ``--watch`` or ``--mount``
sealbox stays as a supervising parent: it forwards SIGINT, SIGTERM and SIGHUP to the
child, exits with the child's status, removes a mounted secrets file when the child ends,
and (``--watch``) restarts or signals the child when a secret it uses changes.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sealbox.cli.scope import open_vault, parse_only, resolve_scope
from sealbox.errors import InvalidInput, NotFound, SealboxError

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

    from sealbox.api import VaultAPI
    from sealbox.model import SecretValue

#: Never handed to the child in remote mode: each can read every secret the caller can.
WITHHELD_REMOTE = ("SEALBOX_TOKEN", "SEALBOX_PASSWORD")
MOUNT_FORMATS = ("dotenv", "json")
POLL_SECONDS = 1.0
DEBOUNCE_SECONDS = 0.3


def run_command(
    *,
    project: str | None,
    env: str | None,
    only: str | None,
    preserve_env: bool,
    command: list[str],
    prefer_offline: bool = False,
    watch: bool = False,
    on_change: str | None = None,
    grace: str | None = None,
    mount: str | None = None,
    mount_format: str | None = None,
    env_too: bool = False,
) -> int:
    from sealbox.delivery.process import child_environment, exec_command

    if not command:
        raise InvalidInput("no command given: use `sealbox run -- COMMAND [ARGS…]`")
    p, e = resolve_scope(project, env)
    names = parse_only(only)
    if not watch and (on_change is not None or grace is not None):
        raise InvalidInput("--on-change and --grace apply to --watch")
    if mount is None and (mount_format is not None or env_too):
        raise InvalidInput("--mount-format and --env-too apply to --mount")
    if watch or mount is not None:
        return _supervised(
            p,
            e,
            names,
            preserve_env=preserve_env,
            command=command,
            prefer_offline=prefer_offline,
            watch=watch,
            action=_parse_action(on_change or "restart"),
            grace=_parse_grace(grace or "10s"),
            mount=mount,
            mount_format=_parse_format(mount_format or "dotenv"),
            env_too=env_too,
        )
    vault = open_vault(prefer_offline=prefer_offline)
    try:
        secrets = vault.resolve(p, e, only=names, purpose="run")
    finally:
        vault.close()
    child_env = child_environment(_parent_env(), secrets, preserve_env=preserve_env)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        exec_command(command, child_env)
    except NotFound as exc:
        print(f"sealbox: {exc.message}", file=sys.stderr)
        return 127
    except InvalidInput as exc:
        print(f"sealbox: {exc.message}", file=sys.stderr)
        return 126
    return 0  # pragma: no cover - exec does not return


def _parent_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in WITHHELD_REMOTE}


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
    from sealbox.vault import parse_duration

    return parse_duration(text).total_seconds()


def _parse_format(text: str) -> str:
    if text not in MOUNT_FORMATS:
        raise InvalidInput(f"invalid --mount-format {text[:40]!r}: use dotenv or json")
    return text


# -- the mounted secrets file --------------------------------------------------------------------
def _tmpfs_base() -> tuple[Path, bool]:
    """A directory in memory where there is one (/dev/shm, then $XDG_RUNTIME_DIR)."""
    import tempfile
    from pathlib import Path

    for candidate in ("/dev/shm", os.environ.get("XDG_RUNTIME_DIR") or ""):  # noqa: S108
        if candidate and os.path.isdir(candidate) and os.access(candidate, os.W_OK | os.X_OK):
            return Path(candidate), True
    return Path(tempfile.gettempdir()), False


class MountedFile:
    """The secrets as a 0600 file that exists only while the child runs."""

    def __init__(self, spec: str, fmt: str) -> None:
        import tempfile
        from pathlib import Path

        self.fmt = fmt
        self._dir: Path | None = None
        if os.path.isabs(spec):
            self.path = Path(spec)
        else:
            if "/" in spec or spec in ("", ".", ".."):
                raise InvalidInput(
                    f"--mount {spec[:80]!r}: give a file name (placed on tmpfs) or an absolute path"
                )
            base, in_memory = _tmpfs_base()
            if not in_memory:
                print(
                    f"sealbox: warning: no tmpfs here (/dev/shm, $XDG_RUNTIME_DIR); the secrets "
                    f"file is on disk in {base} while the command runs",
                    file=sys.stderr,
                )
            # A private directory: no collisions, no symlink games in a shared /dev/shm.
            self._dir = Path(tempfile.mkdtemp(prefix="sealbox-", dir=base))
            self.path = self._dir / spec

    def write(self, secrets: Mapping[str, SecretValue]) -> None:
        from sealbox.config import atomic_write
        from sealbox.delivery.dotenv_io import render

        try:
            atomic_write(self.path, render(secrets, self.fmt).encode(), mode=0o600)
        except OSError as exc:
            raise InvalidInput(f"cannot write {self.path}: {exc.strerror}") from None

    def remove(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            print(f"sealbox: warning: could not remove {self.path}: {exc}", file=sys.stderr)
        if self._dir is not None:
            with contextlib.suppress(OSError):
                self._dir.rmdir()


# -- supervision ---------------------------------------------------------------------------------
def _exit_status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


class _Child:
    """The supervised command: start, forward signals, stop with a grace period."""

    def __init__(self, command: list[str], grace: float) -> None:
        self.command = command
        self.grace = grace
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str]) -> None:
        import subprocess

        sys.stdout.flush()
        sys.stderr.flush()
        try:
            self.proc = subprocess.Popen(self.command, env=env)
        except FileNotFoundError:
            raise NotFound(f"command not found: {self.command[0]}") from None
        except PermissionError:
            raise InvalidInput(f"command is not executable: {self.command[0]}") from None

    def signal(self, signum: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signum)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after the grace period."""
        import signal
        import subprocess

        if self.proc is None or self.proc.poll() is not None:
            return
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=self.grace)
        except subprocess.TimeoutExpired:
            print(
                f"sealbox: the command did not stop within {self.grace:g} s; killing it",
                file=sys.stderr,
            )
            self.proc.kill()
            self.proc.wait()


class _ChangeSource:
    """Tells the supervisor that the environment changed: the server's event stream in
    remote mode, else polling ``versions()`` every second."""

    def __init__(self, vault: VaultAPI, project: str, env: str, names: list[str] | None) -> None:
        import threading

        self.vault, self.project, self.env, self.names = vault, project, env, names
        self.flag = threading.Event()
        self._watch: Any = None
        self._known: dict[str, int] | None = None
        self._next_poll = 0.0
        self._warned = False
        watch = getattr(vault, "watch", None)
        if callable(watch):
            self._watch = watch(project, env, self._event)
            if not self._watch.wait_ready(5.0) and self._watch.error is not None:
                print(
                    f"sealbox: warning: no live updates ({self._watch.error.message}); "
                    "polling every second instead",
                    file=sys.stderr,
                )
                self._watch.stop()
                self._watch = None

    def _relevant(self, name: str) -> bool:
        return self.names is None or name in self.names

    def _event(self, event: Any) -> None:
        if self._relevant(event.name):
            self.flag.set()

    def poll(self, now: float) -> None:
        if self._watch is not None or now < self._next_poll:
            return
        self._next_poll = now + POLL_SECONDS
        versions_of = getattr(self.vault, "versions", None)
        if versions_of is None:
            return
        try:
            versions = versions_of(self.project, self.env)
        except SealboxError as exc:
            if not self._warned:
                print(f"sealbox: warning: cannot check for changes: {exc.message}", file=sys.stderr)
                self._warned = True
            return
        current = {k: v for k, v in versions.items() if self._relevant(k)}
        if self._known is not None and current != self._known:
            self.flag.set()
        self._known = current

    def close(self) -> None:
        if self._watch is not None:
            self._watch.stop()


def _same(a: Mapping[str, SecretValue], b: Mapping[str, SecretValue]) -> bool:
    return a.keys() == b.keys() and all(a[k] == b[k] for k in a)


def _supervised(
    project: str,
    env: str,
    names: list[str] | None,
    *,
    preserve_env: bool,
    command: list[str],
    prefer_offline: bool,
    watch: bool,
    action: int | None,
    grace: float,
    mount: str | None,
    mount_format: str,
    env_too: bool,
) -> int:
    import signal
    import time

    from sealbox.delivery.process import child_environment

    vault = open_vault(prefer_offline=prefer_offline)
    mounted: MountedFile | None = None
    changes: _ChangeSource | None = None
    child = _Child(command, grace)
    stopping = [False]  # set from the signal handler
    forwarded = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous: dict[int, Any] = {}

    def forward(signum: int, frame: object) -> None:
        if signum != signal.SIGHUP:
            stopping[0] = True
        child.signal(signum)

    def is_stopping() -> bool:
        return stopping[0]

    try:
        if watch:
            # Before the first read: a change after it is then always noticed.
            changes = _ChangeSource(vault, project, env, names)
        secrets = vault.resolve(project, env, only=names, purpose="run")
        parent = _parent_env()
        if mount is not None:
            mounted = MountedFile(mount, mount_format)
            mounted.write(secrets)
            parent["SEALBOX_SECRETS_FILE"] = str(mounted.path)
        inject = mount is None or env_too
        if watch and action is not None and inject and mount is None:
            print(
                "sealbox: note: a signal cannot change the command's environment; "
                "it sees new values after a restart, or through --mount",
                file=sys.stderr,
            )

        def child_env(values: Mapping[str, SecretValue]) -> dict[str, str]:
            return child_environment(parent, values if inject else {}, preserve_env=preserve_env)

        for sig in forwarded:
            previous[sig] = signal.signal(sig, forward)
        child.start(child_env(secrets))
        assert child.proc is not None
        while True:
            code = child.proc.poll()
            if code is not None:
                return _exit_status(code)
            if changes is None:
                # Signals interrupt the wait, run `forward`, and the wait resumes (PEP 475).
                child.proc.wait()
                continue
            changes.poll(time.monotonic())
            if not changes.flag.wait(0.2) or is_stopping():
                continue
            time.sleep(DEBOUNCE_SECONDS)  # a burst of writes is one change
            changes.flag.clear()
            try:
                fresh = vault.resolve(project, env, only=names, purpose="run")
            except SealboxError as exc:
                print(
                    f"sealbox: warning: secrets changed but could not be read ({exc.message}); "
                    "the command keeps running with the old values",
                    file=sys.stderr,
                )
                continue
            if _same(fresh, secrets):
                continue
            secrets = fresh
            if mounted is not None:
                mounted.write(secrets)
            if action is None:
                print("sealbox: secrets changed; restarting the command", file=sys.stderr)
                child.stop()
                if is_stopping():
                    continue
                child.start(child_env(secrets))
            else:
                print(
                    f"sealbox: secrets changed; sending {signal.Signals(action).name}",
                    file=sys.stderr,
                )
                child.signal(action)
    finally:
        if child.proc is not None and child.proc.poll() is None:
            child.stop()  # sealbox itself failed: never leave the command orphaned
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if changes is not None:
            changes.close()
        vault.close()
        if mounted is not None:
            mounted.remove()
