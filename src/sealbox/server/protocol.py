"""The HTTP/1.1 protocol the server runs: httptools (llhttp) plus Vault's ``LIST`` verb.

llhttp parses requests several times faster than h11 (the pure-Python parser was ~40 % of
a read's CPU time under load) but rejects methods it does not know, and unmodified
``hvac`` lists KV v2 keys with ``LIST``. Before parsing, a request line
``LIST /v1/<mount>/metadata/<path>[?q] HTTP/1.1`` is rewritten to
``GET /v1/<mount>/metadata/<path>?[q&]list=true HTTP/1.1`` — the form Vault itself accepts
and the KV routes serve — so both kinds of client work at httptools speed.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

LIST = b"LIST "


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


class SealboxHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol that also accepts ``LIST`` (see the module doc)."""

    _held = b""

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
