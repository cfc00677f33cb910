"""docs/rotation-webhooks.md's sender and receiver, run as written (two real processes)
against a live sealbox server, through a rotation by the engine (``sealbox rotation
configure --method webhook`` and ``sealbox rotate``, the CLI in remote mode)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from tests.cli_harness import Cli
from tests.unit.client.live import Live, live_server

from sealbox.client import Client, sign_webhook
from sealbox.model import SecretRef, SecretValue
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


def send(env: dict[str, str], tmp_path: Path) -> str:
    """Run the documented sender; its message id. Like a real sender it retries a refused
    delivery (a receiver that has not heard of a rollover yet may refuse for a moment)."""
    deadline = time.monotonic() + 30
    while True:
        sent = subprocess.run(
            [sys.executable, str(tmp_path / "sender.py")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if sent.returncode == 0:
            assert re.fullmatch(r"delivered msg_\S+ 204\n", sent.stdout)
            return sent.stdout.split()[1]
        assert "HTTP Error 400" in sent.stderr, sent.stderr
        if time.monotonic() > deadline:
            raise AssertionError(f"the sender was refused: {sent.stderr}")
        time.sleep(0.5)


def post(url: str, body: bytes, secret: SecretValue) -> int:
    headers = {**sign_webhook(body, secret).as_dict(), "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_documented_sender_and_receiver_run_through_a_rotation(
    live: Live, tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = SecretRef("payments", "prod", "WEBHOOK_SECRET")
    secret = WebhookRotator().create(SimpleNamespace(options={}))  # create reads options only
    with Client(live.url, live.token) as admin:
        admin.create_project("payments")
        admin.set(ref, secret)
    monkeypatch.setenv("SEALBOX_ADDR", live.url)
    monkeypatch.setenv("SEALBOX_TOKEN", live.token)
    r = cli("rotation", "configure", ref.path, "--method", "webhook", "--grace", "1h")
    assert r.status == 0, r.err
    (tmp_path / "sender.py").write_text(program("sender.py"))
    (tmp_path / "receiver.py").write_text(program("receiver.py"))
    port = free_port()
    url = f"http://127.0.0.1:{port}/hooks"
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(tmp_path),
        "PYTHONDONTWRITEBYTECODE": "1",
        "SEALBOX_ADDR": live.url,
        "SEALBOX_TOKEN": live.token,
        "PORT": str(port),
        "RECEIVER_URL": url,
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
        before = send(env, tmp_path)
        r = cli("rotate", ref.path)
        assert r.status == 0 and "succeeded (version 1 -> 2, test passed)" in r.err, r.err
        after = send(env, tmp_path)  # signed with the new current
        with Client(live.url, live.token) as reader:
            assert reader.get(ref, stage="previous").value == secret
            assert reader.get(ref).value != secret
        assert post(url, b'{"late":true}', secret) == 204  # the old secret, in grace
        assert (
            post(url, b'{"forged":true}', WebhookRotator().create(SimpleNamespace(options={})))
            == 400
        )
    finally:
        receiver.kill()
        out, _ = receiver.communicate(timeout=10)
    assert f"handling {before} " in out and f"handling {after} " in out
    assert out.count('"invoice.paid"') == 2 and '{"late":true}' in out
    assert '{"forged":true}' not in out
