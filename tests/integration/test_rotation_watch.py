"""Watchers hear a rotation's promotion: a rotation run by another process on the vault
(the CLI) reaches a server's ``Client.watch`` streams as a change of the secret's current
version, and ``run --watch``'s embedded poll (``versions``) sees the new version."""

from __future__ import annotations

import queue
from pathlib import Path

from tests.unit.client.live import make_vault, serving

from sealbox.changes import ChangeEvent
from sealbox.client import Client
from sealbox.factory import open_vault
from sealbox.model import SecretRef, SecretValue
from sealbox.server.app import create_app
from sealbox.server.settings import ServerSettings

BOUND = 10.0
REF = SecretRef("payments", "prod", "API_TOKEN")


def test_a_promotion_reaches_a_servers_watchers(tmp_path: Path) -> None:
    token = make_vault(tmp_path)
    vault = open_vault(source="api")
    app = create_app(vault, ServerSettings())
    try:
        with serving(app) as url:
            client = Client(url, token)
            client.create_project("payments")
            client.set(REF, SecretValue("first-token-value-0001"))
            events: queue.Queue[ChangeEvent] = queue.Queue()
            w = client.watch("payments", "prod", events.put)
            assert w.wait_ready(BOUND)
            assert app.state.sealbox_events.listening.wait(BOUND)
            cli = open_vault(source="cli")  # another process, as far as the file knows
            cli.rotations.configure(REF, "random")
            before = cli.versions("payments", "prod")
            info = cli.rotations.start(REF)
            assert info.state == "succeeded"
            assert (before, cli.versions("payments", "prod")) == (
                {"API_TOKEN": 1},
                {"API_TOKEN": 2},
            )
            cli.close()
            event = events.get(timeout=BOUND)
            while event.version != 2:  # the configure's metadata change may come first
                event = events.get(timeout=BOUND)
            assert (event.path, event.version) == (REF.path, 2)
            assert client.get(REF).version == 2
            w.stop()
            client.close()
    finally:
        app.state.sealbox_events.close()
        vault.close()
