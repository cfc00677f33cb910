"""Slow and idle clients against a real uvicorn server with sealbox's protocol: they are cut
off after their deadline while other clients keep being served (issue 10, defect 9)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sealbox.server.fastpath.protocol import Limits, SealboxHttpProtocol
from sealbox.server.testing import running

pytestmark = pytest.mark.slow
BOUND = 20.0  # seconds: a generous bound on "eventually", never a timing assertion


async def hello(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


@pytest.fixture
def url(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, int]]:
    monkeypatch.setattr(SealboxHttpProtocol, "limits", Limits(header_timeout=1.0, body_timeout=1.0))
    with running(hello, timeout_keep_alive=1) as base:  # type: ignore[arg-type]
        port = int(base.rsplit(":", 1)[1])
        yield "127.0.0.1", port


def closed_by_server(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (bounded)."""
    sock.settimeout(BOUND)
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    return received


def says_hello(answer: bytes) -> bool:
    return answer.startswith(b"HTTP/1.1 200 ") and b"hello" in answer


def normal_request(address: tuple[str, int]) -> bytes:
    with socket.create_connection(address, timeout=BOUND) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return closed_by_server(sock)


def test_a_slowloris_head_is_cut_off_while_others_are_served(url: tuple[str, int]) -> None:
    slow = socket.create_connection(url, timeout=BOUND)
    slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
    stop = threading.Event()
    served: list[bytes] = []

    def trickle() -> None:  # one header byte at a time, as slowloris does
        while not stop.is_set():
            try:
                slow.sendall(b"X")
            except OSError:
                return
            time.sleep(0.1)

    def others() -> None:
        while not stop.is_set():
            served.append(normal_request(url))

    threads = [threading.Thread(target=trickle), threading.Thread(target=others)]
    for t in threads:
        t.start()
    try:
        answer = closed_by_server(slow)
    finally:
        stop.set()
        for t in threads:
            t.join(BOUND)
        slow.close()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert served and all(says_hello(r) for r in served)
    assert says_hello(normal_request(url))


def test_an_idle_connection_and_a_slow_body_are_closed(url: tuple[str, int]) -> None:
    with socket.create_connection(url, timeout=BOUND) as idle:
        assert closed_by_server(idle) == b""  # never sent a byte: closed without an answer
    with socket.create_connection(url, timeout=BOUND) as slow_body:
        slow_body.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        assert closed_by_server(slow_body) == b""
    # A keep-alive connection that finished its request is closed when idle, too.
    with socket.create_connection(url, timeout=BOUND) as kept:
        kept.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert says_hello(closed_by_server(kept))
    assert says_hello(normal_request(url))
