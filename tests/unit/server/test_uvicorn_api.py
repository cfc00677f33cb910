"""The private uvicorn API that server/fastpath/protocol.py builds on, checked explicitly.

``SealboxHttpProtocol`` subclasses uvicorn's ``HttpToolsProtocol`` (not a public API) and
uses its methods and attributes. uvicorn is pinned to the minor version range in
pyproject.toml; when a new uvicorn changes anything listed here this test fails, and the
subclass is checked against the new version before the pin is widened.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from sealbox.server.fastpath.protocol import SealboxHttpProtocol

#: Every HttpToolsProtocol method the subclass overrides or calls, with its parameters.
METHODS = {
    "__init__": ["self", "config", "server_state", "app_state", "_loop"],
    "connection_made": ["self", "transport"],
    "connection_lost": ["self", "exc"],
    "data_received": ["self", "data"],
    "send_400_response": ["self", "msg"],
    "on_message_begin": ["self"],
    "on_headers_complete": ["self"],
    "on_message_complete": ["self"],
}
#: Instance attributes it reads, and when uvicorn sets them.
AFTER_INIT = ("server_state", "connections", "logger")
AFTER_CONNECT = ("transport",)
AFTER_HEAD = ("scope", "headers", "url", "cycle")


def _pin() -> tuple[tuple[int, int], tuple[int, int]]:
    """The (low, high) minor versions of uvicorn's pin in pyproject.toml."""
    pyproject = Path(__file__).parents[3] / "pyproject.toml"
    for line in tomllib.loads(pyproject.read_text())["project"]["dependencies"]:
        if line.startswith("uvicorn"):
            m = re.fullmatch(r"uvicorn(\[\w+\])?>=(\d+)\.(\d+),<(\d+)\.(\d+)", line)
            assert m, f"pin uvicorn to one minor version range, not {line!r}"
            a, b, c, d = (int(x) for x in m.groups()[1:])
            return (a, b), (c, d)
    raise AssertionError("uvicorn is not a dependency")  # pragma: no cover


def test_uvicorn_is_pinned_to_a_minor_version_and_installed_within_it() -> None:
    low, high = _pin()
    assert high == (low[0], low[1] + 1)
    installed = tuple(int(x) for x in uvicorn.__version__.split(".")[:2])
    assert installed == low, f"uvicorn {uvicorn.__version__} is outside the pin"
    assert version("uvicorn") == uvicorn.__version__


@pytest.mark.parametrize("name", sorted(METHODS))
def test_overridden_and_called_methods_keep_their_signatures(name: str) -> None:
    method = inspect.getattr_static(HttpToolsProtocol, name)
    assert callable(method)
    assert list(inspect.signature(method).parameters) == METHODS[name]
    assert not inspect.iscoroutinefunction(method)


def test_the_attributes_the_subclass_reads_are_set_when_it_expects() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    class Transport:
        def __init__(self) -> None:
            self.written = b""

        def write(self, data: bytes) -> None:
            self.written += data

        def get_extra_info(self, name: str) -> Any:
            return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 80)}.get(name)

        def is_closing(self) -> bool:
            return False

        def close(self) -> None:
            pass

    async def main() -> None:
        config = uvicorn.Config(app, http=SealboxHttpProtocol, lifespan="off", log_config=None)
        config.load()
        state = ServerState()
        proto = SealboxHttpProtocol(
            config=config, server_state=state, app_state={}, _loop=asyncio.get_running_loop()
        )
        for attr in AFTER_INIT:
            assert hasattr(proto, attr), attr
        assert proto.server_state is state
        assert proto.connections is state.connections
        transport = Transport()
        proto.connection_made(transport)  # type: ignore[arg-type]
        for attr in AFTER_CONNECT:
            assert hasattr(proto, attr), attr
        proto.data_received(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        for attr in AFTER_HEAD:
            assert hasattr(proto, attr), attr
        assert isinstance(proto.cycle, RequestResponseCycle)
        assert proto.headers == [(b"host", b"x")] and proto.url == b"/a"
        for _ in range(20):
            await asyncio.sleep(0)
        assert proto.cycle.response_complete is True
        assert transport.written.startswith(b"HTTP/1.1 204 ")
        proto.connection_lost(None)

    asyncio.run(main())
