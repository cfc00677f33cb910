"""The server's listening socket, and worker processes that never outlive their parent.

:func:`bind` takes the address before anything starts, so a busy address is an
:class:`~sealbox.errors.AddressInUse` (exit status 10) at once, naming the process that
holds it when ``/proc`` tells (:func:`holder_of`; Linux, and only processes this user may
inspect); :func:`start_listening` opens it once the server can serve, and only then does
``sealbox server`` say it is listening.

:func:`die_with_parent` runs first in every worker process: uvicorn's supervisor starts
the workers, and a supervisor killed with SIGKILL cannot stop them, so without it they
kept serving unsupervised and held the address against every restart. On Linux the
kernel sends the worker SIGTERM when its parent dies (``PR_SET_PDEATHSIG``); elsewhere a
thread notices the parent is gone. Either way the worker shuts down as on a normal stop.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

from sealbox.errors import AddressInUse, InvalidInput

#: Environment variable naming the supervisor's pid, for the worker processes.
PARENT_VAR = "SEALBOX_SERVER_PARENT"
PR_SET_PDEATHSIG = 1
BACKLOG = 2048
_LISTEN = "0A"  # TCP state LISTEN in /proc/net/tcp


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (inheritable, for worker processes), not yet
    listening: an address another socket listens on is refused here already."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise _refused(exc, host, port) from None
    sock.set_inheritable(True)
    return sock


def start_listening(sock: socket.socket) -> None:
    """Accept connections on a :func:`bind` socket from now on (into the backlog)."""
    try:
        sock.listen(BACKLOG)
    except OSError as exc:  # another process began listening since the bind
        host, port = sock.getsockname()[:2]
        sock.close()
        raise _refused(exc, host, port) from None


def listen(host: str, port: int) -> socket.socket:
    """:func:`bind`, then :func:`start_listening`."""
    sock = bind(host, port)
    start_listening(sock)
    return sock


def _refused(exc: OSError, host: str, port: int) -> Exception:
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        holder = holder_of(port) or "another process"
        return AddressInUse(
            f"cannot listen on {where}: the address is in use by {holder}",
            hint="stop that process or choose another --address",
        )
    # Not ours to take (a privileged port, an address of no interface here).
    return InvalidInput(f"cannot listen on {where}: {exc.strerror or exc}")


def _listening_inodes(port: int, proc: Path) -> set[str]:
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _LISTEN:
                continue
            local_port = fields[1].rpartition(":")[2]
            if int(local_port, 16) == port:
                inodes.add(fields[9])
    return inodes


def holder_of(port: int, proc: Path = Path("/proc")) -> str | None:
    """``process <pid> (<name>)`` listening on TCP ``port``, if ``/proc`` shows one.

    Only the process's short name (``comm``) is shown: a command line may hold secrets.
    """
    inodes = _listening_inodes(port, proc)
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    try:
        pids = sorted((p for p in proc.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    except OSError:
        return None
    for pid_dir in pids:
        try:
            fds = list((pid_dir / "fd").iterdir())
        except OSError:
            continue  # another user's process, or gone
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target in wanted:
                try:
                    name = (pid_dir / "comm").read_text().strip()
                except OSError:
                    name = "?"
                return f"process {pid_dir.name} ({name})"
    return None


def die_with_parent(parent: int | None = None) -> None:
    """Make this worker process stop when its supervisor dies (see the module doc).

    ``parent`` is the supervisor's pid (default: :data:`PARENT_VAR`, else the current
    parent). A supervisor already gone by now stops the worker at once.
    """
    if parent is None:
        named = os.environ.get(PARENT_VAR, "")
        parent = int(named) if named.isdigit() else os.getppid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0:
                if os.getppid() != parent:  # died before prctl took effect
                    os.kill(os.getpid(), signal.SIGTERM)
                return
    threading.Thread(target=_watch_parent, args=(parent,), name="parent-watch", daemon=True).start()


def _watch_parent(parent: int, every: float = 0.5) -> None:
    while os.getppid() == parent:
        time.sleep(every)
    os.kill(os.getpid(), signal.SIGTERM)
