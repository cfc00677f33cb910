"""What the cloud provider tests share: a ProviderContext, free and closed loopback ports,
and a server that accepts connections and never answers (a hanging peer)."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, cast

from sealbox.kms.registry import ProviderContext


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def closed_port_url(scheme: str = "http") -> str:
    """A URL on loopback where nothing listens."""
    return f"{scheme}://127.0.0.1:{free_port()}"


def ctx(timeout: float = 5.0, vault_id: str = "vault-1") -> ProviderContext:
    return ProviderContext(
        storage=cast(Any, None),
        vault_id=vault_id,
        key_file=None,
        env={},
        prompt=None,
        clock=lambda: datetime.now(UTC),
        timeout=timeout,
    )


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A loopback port that accepts connections and never answers: its number."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(sock.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        sock.close()
