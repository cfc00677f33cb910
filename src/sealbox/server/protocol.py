"""The HTTP/1.1 protocol the server runs: httptools (llhttp) plus Vault's ``LIST`` verb.

llhttp parses requests several times faster than h11 (the pure-Python parser was ~40 % of
a read's CPU time under load) but rejects methods it does not know, and unmodified
``hvac`` lists KV v2 keys with ``LIST``. Before parsing, a request line
``LIST /v1/<mount>/metadata/<path>[?q] HTTP/1.1`` is rewritten to
``GET /v1/<mount>/metadata/<path>?[q&]list=true HTTP/1.1`` — the form Vault itself accepts
and the KV routes serve — so both kinds of client work at httptools speed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

LIST = b"LIST "
#: Scope key: the server's set of running request tasks (see SealboxHttpProtocol).
IN_FLIGHT = "sealbox.in_flight"


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


class CorkedTransport:
    """A transport whose writes of one event-loop turn leave in one ``send()``.

    uvicorn writes a response's status line and headers, then its body, as two writes:
    two system calls per response (about 3.5 µs of a ~30 µs bare request here). Buffered
    until the end of the turn they go out together, and so do the responses of several
    pipelined requests. ``close()`` sends what is buffered first.
    """

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        pending = self._pending
        pending.append(data)
        if len(pending) == 1:
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending and not self._transport.is_closing():
            self._transport.write(b"".join(pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class SealboxHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol that also accepts ``LIST`` (see the module doc) and
    writes through a :class:`CorkedTransport`."""

    _held = b""

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # uvicorn's set of this server's request tasks (all connections): the audit
        # barrier flushes at once when a request has no company (audit_barrier.py).
        scope: Any = self.scope
        scope[IN_FLIGHT] = self.tasks

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        corked: Any = CorkedTransport(transport, asyncio.get_running_loop())
        super().connection_made(corked)

    def data_received(self, data: bytes) -> None:
        if self._held:
            data, self._held = self._held + data, b""
        # A request line split across reads: hold a possible "LIST " prefix until whole.
        if len(data) < len(LIST) and LIST.startswith(data):
            self._held = data
            return
        if data.startswith(LIST) and b"\r\n" not in data and len(data) < 8192:
            self._held = data
            return
        super().data_received(rewrite_list(data))
