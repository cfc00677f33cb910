"""docs/rotation-webhooks.md's sender and receiver, run as written (two real processes)
against a live sealbox server."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from tests.unit.client.live import Live, live_server

from sealbox.client import Client
from sealbox.model import SecretRef
from sealbox.rotation.webhook import WebhookRotator
from sealbox.server.testing import free_port

DOC = Path(__file__).resolve().parents[3] / "docs" / "rotation-webhooks.md"


def program(name: str) -> str:
    """The ```python block of the doc that starts with ``# <name>``."""
    for block in re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S):
        if block.startswith(f"# {name}\n"):
            return str(block)
    raise AssertionError(f"{DOC} has no {name} block")


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    with live_server(tmp_path) as server:
        yield server


def wait_listening(port: int, proc: subprocess.Popen[str]) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            raise AssertionError(f"the receiver exited: {proc.communicate()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError("the receiver never listened")


def test_the_documented_sender_and_receiver_run(live: Live, tmp_path: Path) -> None:
    secret = WebhookRotator().create(SimpleNamespace(options={}))  # create reads options only
    with Client(live.url, live.token) as admin:
        admin.create_project("payments")
        admin.set(SecretRef("payments", "prod", "WEBHOOK_SECRET"), secret)
    (tmp_path / "sender.py").write_text(program("sender.py"))
    (tmp_path / "receiver.py").write_text(program("receiver.py"))
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(tmp_path),
        "PYTHONDONTWRITEBYTECODE": "1",
        "SEALBOX_ADDR": live.url,
        "SEALBOX_TOKEN": live.token,
        "PORT": str(port),
        "RECEIVER_URL": f"http://127.0.0.1:{port}/hooks",
    }
    receiver = subprocess.Popen(
        [sys.executable, "-u", str(tmp_path / "receiver.py")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_listening(port, receiver)
        sent = subprocess.run(
            [sys.executable, str(tmp_path / "sender.py")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert sent.returncode == 0, sent.stderr
        assert re.fullmatch(r"delivered msg_\S+ 204\n", sent.stdout)
    finally:
        receiver.kill()
        out, _ = receiver.communicate(timeout=10)
    msg_id = sent.stdout.split()[1]
    assert f"handling {msg_id} " in out
    assert '"invoice.paid"' in out
