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


def test_run_watch_restarts_the_command_with_the_rotated_value(
    tmp_path: Path, keyfile_vault: Path
) -> None:
    """``sealbox run --watch`` embedded: the supervisor polls the vault and restarts its
    child with the value a rotation (another process's, as far as the file knows) promoted."""
    import threading
    import time

    from sealbox.delivery.supervise import Supervision, Supervisor

    ref = SecretRef("payments", "dev", "TOKEN")
    setup = open_vault(source="cli")
    setup.set(ref, SecretValue("first-token-value-0001"))
    setup.rotations.configure(ref, "random", options={"prefix": "rot_"})
    setup.close()
    out = tmp_path / "out"
    script = f'echo "$TOKEN" >> {out}; case "$TOKEN" in rot_*) exit 0;; esac; sleep 30'

    def rotate_once_started() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (out.exists() and out.read_text()):
            time.sleep(0.05)
        other = open_vault(source="cli")
        assert other.rotations.start(ref).state == "succeeded"
        other.close()

    rotator = threading.Thread(target=rotate_once_started)
    rotator.start()
    vault = open_vault(source="cli")
    said: list[str] = []
    try:
        status = Supervisor(
            vault, "payments", "dev", ["TOKEN"], ["sh", "-c", script],
            Supervision(watch=True, grace=5), parent_env={"PATH": "/usr/bin:/bin"},
            report=said.append,
        ).run()  # fmt: skip
    finally:
        rotator.join()
        vault.close()
    assert status == 0
    first, second = out.read_text().splitlines()
    assert first == "first-token-value-0001" and second.startswith("rot_")
    assert said == ["secrets changed; restarting the command"]
