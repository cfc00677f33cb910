"""Helpers for tests and benchmarks: a real uvicorn server on a free loopback port.

Not used by the server itself. ``running(app)`` serves an app in a background thread of
this process (what the hvac/bao client tests drive); ``free_port()`` picks a port.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from starlette.applications import Starlette

from sealbox.server.run import HTTP_IMPL, http_protocol


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@contextmanager
def running(app: Starlette, port: int | None = None, **config: Any) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 in a thread; yields the base URL; stops on exit.

    ``config`` adds uvicorn settings (e.g. ``ssl_certfile``/``ssl_keyfile`` for HTTPS).
    """
    import uvicorn

    port = port or free_port()
    uv_config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=http_protocol(HTTP_IMPL),
        access_log=False,
        log_config=None,
        log_level="warning",
        lifespan="off",
        proxy_headers=config.pop("proxy_headers", False),
        # Open event streams must not hold a test's server open.
        timeout_graceful_shutdown=1,
        **config,
    )
    server = uvicorn.Server(uv_config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        scheme = "https" if config.get("ssl_certfile") else "http"
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def audit_stored(app: Starlette, timeout: float = 5.0) -> None:
    """Wait until the audit events the app's vault spooled are in the database.

    The server's loop stores them the strategy's ``store_every`` seconds after they are
    spooled; a test that reads the audit trail through another vault waits for that.
    """
    commit = app.state.sealbox.vault.audit_commit
    deadline = time.monotonic() + timeout
    while commit.backlog:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{commit.backlog} audit event(s) still spooled")
        time.sleep(0.002)
