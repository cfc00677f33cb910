"""The HTTP/1.1 protocol the server runs: httptools (llhttp) plus Vault's ``LIST`` verb,
bounded request heads and deadlines for slow clients.

llhttp parses requests several times faster than h11 (the pure-Python parser was ~40 % of
a read's CPU time under load) but rejects methods it does not know, and unmodified
``hvac`` lists KV v2 keys with ``LIST``. Before parsing, a request line
``LIST /v1/<mount>/metadata/<path>[?q] HTTP/1.1`` is rewritten to
``GET /v1/<mount>/metadata/<path>?[q&]list=true HTTP/1.1`` — the form Vault itself accepts
and the KV routes serve — so both kinds of client work at httptools speed. A ``LIST``
line is rewritten wherever a request starts: at the start of the data, after a pipelined
request, or split over several reads. The parser itself says where a request starts
(:meth:`SealboxHttpProtocol.data_received` feeds it up to each ``LIST`` and asks whether
it is between requests), so a ``LIST`` inside a body or a header is never touched.

uvicorn puts no bound on a request's head over httptools and no deadline on a slow
client. :class:`Limits` adds both (docs/server.md, "Limits and timeouts"):

* at most ``max_headers`` header fields and ``max_header_bytes`` bytes of request target
  and header fields: beyond either, ``431`` and the connection is closed;
* a request head must be complete ``header_timeout`` seconds after the connection opened
  or the request's first byte arrived (``408``, closed), and its body ``body_timeout``
  seconds after the head (closed): a slowloris client is cut off while others are served.
  Idle keep-alive connections are closed by uvicorn's ``timeout_keep_alive``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from time import monotonic
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

LIST = b"LIST "
_LIST_PREFIXES = (b"L", b"LI", b"LIS", b"LIST")
#: A LIST request line not yet ended by CRLF is held back up to this many bytes.
MAX_HELD = 8192
#: How often (seconds) a server looks for connections past their deadline.
SWEEP_EVERY = 0.5


@dataclass(frozen=True)
class Limits:
    """Bounds on a request's head and on how long a client may take to send a request."""

    max_headers: int = 100
    max_header_bytes: int = 64 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 30.0


def rewrite_list(data: bytes) -> bytes:
    """``LIST target version`` → ``GET target?list=true version``; other data unchanged."""
    if not data.startswith(LIST):
        return data
    end = data.find(b"\r\n")
    if end < 0:
        return data  # not a whole request line; llhttp will answer 400
    parts = data[:end].split(b" ")
    if len(parts) != 3:
        return data
    _, target, version = parts
    target += b"&list=true" if b"?" in target else b"?list=true"
    return b"GET " + target + b" " + version + data[end:]


def _candidate(data: bytes, start: int) -> tuple[int, bool]:
    """The next place at or after ``start`` where a ``LIST`` request line may start, and
    whether it is only a prefix of one cut by the end of ``data``; -1 if none.

    Any ``LIST `` may be one (a body need not end with a line end); the parser decides.
    """
    i = data.find(LIST, start)
    if i >= 0:
        return i, False
    for prefix in _LIST_PREFIXES:
        if data.endswith(prefix) and len(data) - len(prefix) >= start:
            return len(data) - len(prefix), True
    return -1, False


class HeadTooLarge(Exception):
    """Raised from ``on_headers_complete``: the request head is over its :class:`Limits`."""


class Sweeper:
    """One timer per server: every :data:`SWEEP_EVERY` seconds, close the connections past
    their deadline. (A timer per request would cost more on every request.)"""

    def __init__(self, loop: asyncio.AbstractEventLoop, connections: set[Any]) -> None:
        self._loop = loop
        self._connections = connections
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        if self._handle is None:
            self._handle = self._loop.call_later(SWEEP_EVERY, self._sweep)

    def _sweep(self) -> None:
        self._handle = None
        now = monotonic()
        for conn in list(self._connections):
            if isinstance(conn, SealboxHttpProtocol):
                conn.check_deadline(now)
        if self._connections:
            self.start()


def _error_response(status: int, reason: str, code: str, message: str) -> bytes:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


class SealboxHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol that also accepts ``LIST``, bounds request heads, cuts
    off slow clients (see the module doc)."""

    #: This process's limits; :func:`sealbox.server.run.serve` sets them from the settings.
    limits: ClassVar[Limits] = Limits()

    _held = b""
    #: Between on_message_begin and on_message_complete: the parser is inside a request.
    _in_message = False
    #: Between on_message_begin and on_headers_complete: the parser is inside a head.
    _in_head = False
    #: A request began during the current read, of ``_read_size`` bytes.
    _began = False
    _read_size = 0
    #: Bytes of a head that spans reads, counted from the read after the one it began in.
    _head_raw = 0
    _too_large = False
    #: When the running deadline started (None: none runs), how long it is, and whether
    #: it is a head's. Set after each read, never per callback: a request that arrives
    #: whole in one read (nearly every one) costs no clock reads at all.
    _since: float | None = None
    _timeout = 0.0
    _since_head = True

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        loop = asyncio.get_running_loop()
        super().connection_made(transport)
        self._since, self._timeout = monotonic(), self.limits.header_timeout
        state: Any = self.server_state
        sweeper: Sweeper | None = getattr(state, "sealbox_sweeper", None)
        if sweeper is None:
            sweeper = state.sealbox_sweeper = Sweeper(loop, self.connections)
        sweeper.start()

    # -- parser callbacks ---------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_message = self._in_head = self._began = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        limits = self.limits
        if len(self.headers) > limits.max_headers or (
            # A head that came whole in a read no larger than the bound fits it.
            (not self._began or self._read_size > limits.max_header_bytes)
            and len(self.url) + sum(len(k) + len(v) for k, v in self.headers)
            > limits.max_header_bytes
        ):
            self._too_large = True
            raise HeadTooLarge
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_message = False
        super().on_message_complete()

    # -- limits -------------------------------------------------------------------------------
    def send_400_response(self, msg: str) -> None:
        if not self._too_large:
            super().send_400_response(msg)
            return
        limits = self.limits
        self.transport.write(
            _error_response(
                431,
                "Request Header Fields Too Large",
                "request_header_fields_too_large",
                f"the request head is over {limits.max_headers} header fields or "
                f"{limits.max_header_bytes} bytes",
            )
        )
        self.transport.close()

    def check_deadline(self, now: float) -> None:
        """Close the connection if its head or body is overdue (called by the Sweeper)."""
        since = self._since
        if since is None or now - since <= self._timeout or self.transport.is_closing():
            return
        if self._in_head and (self.cycle is None or self.cycle.response_complete):
            # Part of a head came and nothing runs: say why (an idle socket is just closed).
            self.transport.write(
                _error_response(
                    408,
                    "Request Timeout",
                    "request_timeout",
                    f"the request head did not arrive within {self._timeout:g} s",
                )
            )
        elif self._in_message and not self._in_head:
            self.logger.info("closing a connection: its request body is overdue")
        self.transport.close()

    # -- input --------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self._held:
            data, self._held = self._held + data, b""
        self._began = False
        self._read_size = len(data)
        if LIST in data or data.endswith(_LIST_PREFIXES):
            self._feed_rewriting(data)
        else:
            super().data_received(data)
        if self._in_message:
            self._after_partial_read(len(data))
        elif self.cycle is None or self.cycle.response_complete:
            if self._since is None:  # blank lines while nothing runs: a head is due
                self._since, self._timeout, self._since_head = (
                    monotonic(),
                    self.limits.header_timeout,
                    True,
                )
        else:
            self._since = None  # every request is whole; the app's answer has no deadline

    def _after_partial_read(self, size: int) -> None:
        """A request is incomplete after this read: keep its head or body deadline, and
        bound the head (the parser buffers a field whole before on_header sees it)."""
        head = self._in_head
        if self._since is None or self._since_head != head:
            limits = self.limits
            self._since = monotonic()
            self._timeout = limits.header_timeout if head else limits.body_timeout
            self._since_head = head
        if not head:
            return
        self._head_raw = 0 if self._began else self._head_raw + size
        if self._head_raw > self.limits.max_header_bytes and not self.transport.is_closing():
            self._too_large = True
            self.send_400_response("")

    def _feed_rewriting(self, data: bytes) -> None:
        """Feed ``data`` with every ``LIST`` request line rewritten (see the module doc)."""
        fed = scan = 0
        while True:
            i, partial = _candidate(data, scan)
            if i < 0:
                break
            if i > fed:
                super().data_received(data[fed:i])
                fed = i
                if self.transport.is_closing():
                    return
            scan = i + 1
            if self._in_message:
                continue  # inside a request's head or body: not a request line
            end = -1 if partial else data.find(b"\r\n", i)
            if end < 0:
                if len(data) - i <= MAX_HELD:
                    self._held = data[i:]  # the rest of the line comes with the next read
                    return
                break  # over-long: llhttp answers 400
            super().data_received(rewrite_list(data[i : end + 2]))
            fed = scan = end + 2
            if self.transport.is_closing():
                return
        if fed < len(data):
            super().data_received(data[fed:])
