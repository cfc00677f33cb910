"""A served vault for the fuzz suite: a fresh key-file vault, an admin token, an app.

``served_app(tmp_path)`` builds one in ``tmp_path`` (the test's ``SEALBOX_HOME`` is set by
the autouse fixture in tests/conftest.py) with a project, an environment and a secret, so
authenticated operations find something to work on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from sealbox.cli.main import main
from sealbox.factory import bootstrap_server, open_vault
from sealbox.model import SecretRef, SecretValue
from sealbox.server import events
from sealbox.server.app import all_routes, create_app, server_version
from sealbox.server.openapi import document
from sealbox.server.settings import ServerSettings

ADMIN_PASSWORD = "correct horse battery staple"


def served_document() -> dict[str, Any]:
    """The document an app serves, built without an app (same routes, same order)."""
    return document(server_version(), [*events.ROUTES, *all_routes()])


@contextmanager
def served_app(tmp_path: Path) -> Iterator[tuple[Starlette, str]]:
    """An app over a new vault and an admin token for it."""
    assert main(["init", "--key-file", str(tmp_path / "master.key")]) == 0
    _, token = bootstrap_server(admin="admin", password=ADMIN_PASSWORD)
    vault = open_vault(source="api")
    try:
        vault.create_project("payments", environments=("dev", "prod"))
        vault.set(SecretRef("payments", "dev", "API_KEY"), SecretValue("fuzz-canary-value"))
        yield create_app(vault, ServerSettings()), token.value
    finally:
        vault.close()
