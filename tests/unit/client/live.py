"""A live sealbox server for SDK and remote-CLI tests (uvicorn in a thread, real sockets)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sealbox.cli.main import main
from sealbox.factory import bootstrap_server, open_vault
from sealbox.server.app import create_app
from sealbox.server.settings import ServerSettings
from sealbox.server.testing import free_port, running

ADMIN_PASSWORD = "correct horse battery staple"


@dataclass
class Live:
    url: str
    token: str
    home: Path
    port: int
    vault: Any


@contextmanager
def serving(app: Any, port: int | None = None, **config: Any) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 in a thread until the block ends (extra uvicorn settings)."""
    with running(app, port, **config) as url:
        yield url


def make_vault(tmp_path: Path, storage: str | None = None) -> str:
    """Initialise a key-file vault in SEALBOX_HOME (and its admin); returns the admin token."""
    args = ["init", "--key-file", str(tmp_path / "master.key")]
    if storage:
        args += ["--storage", storage]
    assert main(args) == 0
    _, token = bootstrap_server(admin="admin", password=ADMIN_PASSWORD)
    return token.value


@contextmanager
def live_server(tmp_path: Path, **settings: Any) -> Iterator[Live]:
    """An initialised key-file vault in SEALBOX_HOME served on a free port; the admin token."""
    token = make_vault(tmp_path)
    vault = open_vault(source="api")
    port = free_port()
    try:
        with serving(create_app(vault, ServerSettings(**settings)), port) as url:
            yield Live(url, token, tmp_path / "home", port, vault)
    finally:
        vault.close()
