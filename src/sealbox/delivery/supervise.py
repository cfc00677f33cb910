"""Running a command under a supervising sealbox (``run --watch`` and ``run --mount``).

The supervisor forwards SIGINT, SIGTERM and SIGHUP to the child, exits with the child's
status, removes a mounted secrets file when the child ends, and (``watch``) restarts or
signals the child when a secret it uses changes. It prints nothing itself: what the user
should hear goes to ``report`` (the CLI adds its prefix).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from sealbox.errors import InvalidInput, NotFound, SealboxError

if TYPE_CHECKING:
    import subprocess

    from sealbox.api import VaultAPI
    from sealbox.delivery.mounts import MountedFile
    from sealbox.model import SecretValue

POLL_SECONDS = 1.0
TICK_SECONDS = 0.5
DEBOUNCE_SECONDS = 0.3

Report = Callable[[str], None]


class Supervision(NamedTuple):
    """How to supervise: validated options of ``sealbox run``."""

    watch: bool = False
    #: On a change: None restarts the command, else the signal number to send it.
    action: int | None = None
    #: Seconds between SIGTERM and SIGKILL when the command is stopped.
    grace: float = 10.0
    #: A file name or absolute path for the secrets file, or None for variables only.
    mount: str | None = None
    mount_format: str = "dotenv"
    #: With ``mount``: set the variables too.
    env_too: bool = False
    preserve_env: bool = False


def exit_status(returncode: int) -> int:
    """A child's ``returncode`` as a shell reports it (killed by signal N: 128 + N)."""
    return 128 - returncode if returncode < 0 else returncode


class Child:
    """The supervised command: start, forward signals, stop with a grace period."""

    def __init__(self, command: list[str], grace: float, report: Report) -> None:
        self.command = command
        self.grace = grace
        self.report = report
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[bytes, bytes]) -> None:
        import subprocess

        sys.stdout.flush()
        sys.stderr.flush()
        try:
            self.proc = subprocess.Popen(self.command, env=env)
        except FileNotFoundError:
            raise NotFound(f"command not found: {self.command[0]}") from None
        except PermissionError:
            raise InvalidInput(f"command is not executable: {self.command[0]}") from None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

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
            self.report(f"the command did not stop within {self.grace:g} s; killing it")
            self.proc.kill()
            self.proc.wait()


class ChangeSource:
    """Tells the supervisor that the environment changed: the server's event stream in
    remote mode, else polling ``versions()`` every second."""

    def __init__(
        self, vault: VaultAPI, project: str, env: str, names: list[str] | None, report: Report
    ) -> None:
        import threading

        self.vault, self.project, self.env, self.names = vault, project, env, names
        self.report = report
        self.flag = threading.Event()
        self._watch: Any = None
        self._known: dict[str, int] | None = None
        self._next_poll = 0.0
        self._warned = False
        watch = getattr(vault, "watch", None)
        if callable(watch):
            self._watch = watch(project, env, self._event)
            if not self._watch.wait_ready(5.0) and self._watch.error is not None:
                report(
                    f"warning: no live updates ({self._watch.error.message}); "
                    "polling every second instead"
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
                self.report(f"warning: cannot check for changes: {exc.message}")
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


class Supervisor:
    """One supervised run of ``command`` with the secrets of ``project/env``."""

    def __init__(
        self,
        vault: VaultAPI,
        project: str,
        env: str,
        names: list[str] | None,
        command: list[str],
        options: Supervision,
        *,
        parent_env: Mapping[str, str] | Mapping[bytes, bytes],
        report: Report,
        credentials: Mapping[str, SecretValue] | None = None,
        tick: Callable[[float], None] | None = None,
    ) -> None:
        self.vault, self.project, self.env, self.names = vault, project, env, names
        #: Variables of dynamic credentials (``run --creds``), set whatever the mount.
        self.credentials: Mapping[str, SecretValue] = dict(credentials or {})
        #: Called with ``time.monotonic()`` about every TICK_SECONDS while the command runs,
        #: on this thread (``run --creds`` renews its leases from it).
        self.tick = tick
        self.options = options
        from sealbox.delivery.process import environ_bytes

        #: The parent's environment as bytes (a POSIX environment is bytes).
        self.parent = environ_bytes(parent_env)
        self.report = report
        self.child = Child(command, options.grace, report)
        self.mounted: MountedFile | None = None
        self.changes: ChangeSource | None = None
        self.stopping = False  # set from the signal handler
        self.secrets: Mapping[str, SecretValue] = {}

    def _forward(self, signum: int, frame: object) -> None:
        import signal

        if signum != signal.SIGHUP:
            self.stopping = True
        self.child.signal(signum)

    def _read(self) -> Mapping[str, SecretValue]:
        return self.vault.resolve(self.project, self.env, only=self.names, purpose="run")

    def _child_env(self) -> dict[bytes, bytes]:
        from sealbox.delivery.process import child_environment
        from sealbox.model import as_variables

        opts = self.options
        inject = opts.mount is None or opts.env_too
        values = {**(as_variables(self.secrets) if inject else {}), **self.credentials}
        return child_environment(self.parent, values, preserve_env=opts.preserve_env)

    def run(self) -> int:
        """Supervise until the command ends; its exit status."""
        import signal

        opts = self.options
        previous: dict[int, Any] = {}
        try:
            if opts.watch:
                # Before the first read: a change after it is then always noticed.
                self.changes = ChangeSource(
                    self.vault, self.project, self.env, self.names, self.report
                )
            self.secrets = self._read()
            if opts.mount is not None:
                from sealbox.delivery.mounts import MountedFile

                self.mounted = MountedFile(opts.mount, opts.mount_format, self.report)
                self.mounted.write(self.secrets)
                self.parent[b"SEALBOX_SECRETS_FILE"] = bytes(self.mounted.path)
            if opts.watch and opts.action is not None and opts.mount is None:
                self.report(
                    "note: a signal cannot change the command's environment; "
                    "it sees new values after a restart, or through --mount"
                )
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                previous[sig] = signal.signal(sig, self._forward)
            self.child.start(self._child_env())
            return self._wait()
        finally:
            if self.child.running():
                self.child.stop()  # sealbox itself failed: never leave the command orphaned
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            if self.changes is not None:
                self.changes.close()
            if self.mounted is not None:
                self.mounted.remove()

    def _wait(self) -> int:
        import subprocess
        import time

        proc = self.child.proc
        while True:
            assert proc is not None
            code = proc.poll()
            if code is not None:
                return exit_status(code)
            if self.tick is not None:
                self.tick(time.monotonic())
            if self.changes is None:
                if self.tick is None:
                    # Signals interrupt the wait, run `_forward`, and the wait resumes (PEP 475).
                    proc.wait()
                else:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(TICK_SECONDS)
                continue
            self.changes.poll(time.monotonic())
            if not self.changes.flag.wait(0.2) or self.stopping:
                continue
            time.sleep(DEBOUNCE_SECONDS)  # a burst of writes is one change
            self.changes.flag.clear()
            self._changed()
            proc = self.child.proc

    def _changed(self) -> None:
        """The environment may have changed: re-read, then restart or signal the command."""
        import signal

        try:
            fresh = self._read()
        except SealboxError as exc:
            self.report(
                f"warning: secrets changed but could not be read ({exc.message}); "
                "the command keeps running with the old values"
            )
            return
        if _same(fresh, self.secrets):
            return
        self.secrets = fresh
        if self.mounted is not None:
            self.mounted.write(self.secrets)
        action = self.options.action
        if action is None:
            self.report("secrets changed; restarting the command")
            self.child.stop()
            if not self.stopping:
                self.child.start(self._child_env())
        else:
            self.report(f"secrets changed; sending {signal.Signals(action).name}")
            self.child.signal(action)
