"""Following a server's change stream (``GET /v1/events/{project}/{env}``, server-sent events).

A background thread keeps one streaming connection open, reconnecting with exponential
backoff (0.5 s doubling to 30 s, with jitter) when it drops. The stream starts with a
``snapshot`` of current versions; on a reconnection the snapshot is compared with what
the watcher knew, so changes made while it was disconnected are reported too. Events carry
names and versions, never values. A 401/403/404 ends the watch (retrying cannot help);
the error is kept in ``Watch.error``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import random
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

from sealbox.client.transport import Reply, Transport, path_of
from sealbox.errors import (
    AccessDenied,
    AuthenticationFailed,
    InvalidInput,
    NotFound,
    SealboxError,
)
from sealbox.model import ChangeEvent
from sealbox.wire import events as wire

log = logging.getLogger("sealbox.client")

#: The server sends a comment line at least this often; silence for 3x means a dead link.
HEARTBEAT = 15.0
READ_TIMEOUT = 3 * HEARTBEAT
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
FATAL = (AuthenticationFailed, AccessDenied, NotFound, InvalidInput)


def parse_sse(lines: Iterator[bytes]) -> Iterator[tuple[str, str]]:
    """(event, data) pairs from server-sent-event lines; comments and ids are skipped."""
    event, data = "message", list[str]()
    for raw in lines:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)


class Watch:
    """A running watch of one environment; ``stop()`` ends it."""

    def __init__(
        self,
        transport: Transport,
        token: str,
        project: str,
        env: str,
        on_change: Callable[[ChangeEvent], None],
    ) -> None:
        self._transport = transport
        self._token = token
        self.project, self.env = project, env
        self._on_change = on_change
        self._stop = threading.Event()
        #: Set once the first snapshot has arrived (the watch is live).
        self.ready = threading.Event()
        self.error: SealboxError | None = None
        self._known: dict[str, int] | None = None
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._run, name=f"sealbox-watch-{project}/{env}", daemon=True
        )

    def __repr__(self) -> str:
        return f"Watch({self.project}/{self.env}, server={self._transport.where!r})"

    def start(self) -> None:
        self._thread.start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the stream is live (or the watch failed); True when live."""
        deadline = timeout
        while not self.ready.wait(0.05 if deadline is None else min(0.05, deadline)):
            if self.error is not None or self._stop.is_set():
                return False
            if deadline is not None:
                deadline -= 0.05
                if deadline <= 0:
                    return False
        return True

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._lock:
            conn = self._conn
        if conn is not None and conn.sock is not None:
            # Unblocks the reader thread's recv().
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    # -- the reader thread --------------------------------------------------------------------
    def _run(self) -> None:
        backoff = FIRST_BACKOFF
        while not self._stop.is_set():
            try:
                self._follow()
                backoff = FIRST_BACKOFF  # a clean end of stream: reconnect promptly
            except FATAL as exc:
                self.error = exc
                log.error(
                    "watch of %s/%s on %s stopped: %s",
                    self.project,
                    self.env,
                    self._transport.where,
                    exc.message,
                )
                return
            except SealboxError as exc:
                if not self._stop.is_set():
                    log.warning(
                        "watch of %s/%s: %s; reconnecting in %.1f s",
                        self.project,
                        self.env,
                        exc.message,
                        backoff,
                    )
            except (OSError, http.client.HTTPException, ValueError) as exc:
                if not self._stop.is_set():
                    log.warning(
                        "watch of %s/%s: connection to %s lost (%s); reconnecting in %.1f s",
                        self.project,
                        self.env,
                        self._transport.where,
                        type(exc).__name__,
                        backoff,
                    )
            if self._stop.wait(backoff * (0.8 + 0.4 * random.random())):  # noqa: S311
                return
            backoff = min(backoff * 2, MAX_BACKOFF)

    def _follow(self) -> None:
        conn = self._transport.new_connection(timeout=READ_TIMEOUT)
        with self._lock:
            self._conn = conn
        try:
            headers = self._transport.headers(self._token, has_body=False)
            headers["Accept"] = "text/event-stream"
            headers["Cache-Control"] = "no-cache"
            url = self._transport.url(path_of("v1", "events", self.project, self.env))
            try:
                conn.request("GET", url, headers=headers)
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                raise self._transport.network_error(exc) from None
            if resp.status != 200:
                raise self._transport.error(Reply(resp.status, resp.read(), {}))
            for event, data in parse_sse(iter(resp.readline, b"")):
                if self._stop.is_set():
                    return
                self._handle(event, data)
        finally:
            with self._lock:
                self._conn = None
            conn.close()

    def _handle(self, event: str, data: str) -> None:
        try:
            payload: Any = json.loads(data)
            if event == "snapshot":
                self._snapshot(wire.decode_snapshot(payload))
            elif event == "change":
                self._change(wire.decode_change(payload))
            elif event == "error":
                # The server ends the stream (e.g. the token expired); treat as authentication.
                raise AuthenticationFailed(wire.decode_stream_error(payload))
        except ValueError:  # not JSON, or not an event the server sends (a WireError)
            log.warning("watch of %s/%s: ignored a malformed event", self.project, self.env)

    def _snapshot(self, current: dict[str, int]) -> None:
        previous, self._known = self._known, current
        self.ready.set()
        if previous is not None:
            self._replay(previous, current)

    def _change(self, change: ChangeEvent) -> None:
        if self._known is not None:
            if change.op in ("delete", "purge"):
                self._known.pop(change.name, None)
            elif change.version is not None:
                self._known[change.name] = change.version
        self._dispatch(change)

    def _replay(self, before: dict[str, int], after: dict[str, int]) -> None:
        """Report what changed while disconnected."""
        for name in sorted(set(before) | set(after)):
            if name not in after:
                self._dispatch(ChangeEvent(self.project, self.env, name, None, "delete"))
            elif before.get(name) != after[name]:
                self._dispatch(ChangeEvent(self.project, self.env, name, after[name], "write"))

    def _dispatch(self, event: ChangeEvent) -> None:
        try:
            self._on_change(event)
        except Exception as exc:
            # NOTE: only the exception's type: its message could carry anything.
            log.error("on_change callback for %s raised %s", event.path, type(exc).__name__)
