"""A webhook secret rotated through the installed ``sealbox server`` (a subprocess) by the
installed CLI (subprocesses in remote mode), with a receiver verifying over HTTP by
``WebhookVerifier.from_client(client, ref, follow=True)`` and a sender signing with what
it reads. The grace window here is an hour (the server's clock is real: the window's end
is tested in tests/integration/rotation/test_webhook_http.py, on a clock it moves)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.e2e.test_server_lifecycle import SEALBOX, env, init_admin, sealbox, server_process
from tests.integration.rotation.test_webhook_http import REF, Receiver, first_secret, post

from sealbox.client import Client, WebhookVerifier

__all__ = ["env"]  # the fixture, imported for pytest
pytestmark = pytest.mark.skipif(SEALBOX is None, reason="the sealbox console script is missing")
BOUND = 10.0


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + BOUND
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.02)


def test_a_rotation_by_the_installed_cli_through_a_server_process(
    env: dict[str, str], tmp_path: Path
) -> None:
    token = init_admin(env)
    with server_process(env) as (url, _):
        remote = {**env, "SEALBOX_ADDR": url, "SEALBOX_TOKEN": token}
        with Client(url, token) as admin:
            admin.create_project("payments")
            admin.set(REF, first_secret())
        r = sealbox(
            "rotation", "configure", REF.path, "--method", "webhook", "--grace", "1h", env=remote
        )
        assert r.returncode == 0, r.stderr
        sender = Client(url, token)
        reader = Client(url, token)
        verifier = WebhookVerifier.from_client(reader, REF, follow=True, refresh_after=3600)
        try:
            assert verifier.watch is not None and verifier.watch.wait_ready(BOUND)
            with Receiver(verifier) as receiver:
                old = sender.get(REF, stage="current").value
                assert post(receiver.url, b'{"n":1}', old) == (204, None)
                r = sealbox("rotate", REF.path, "--json", env=remote)
                assert r.returncode == 0, r.stderr
                assert json.loads(r.stdout)["state"] == "succeeded"
                wait_for(lambda: verifier.changes >= 1, "the receiver heard the promotion")
                new = sender.get(REF, stage="current").value
                assert new != old
                assert post(receiver.url, b'{"n":2}', new) == (204, None)
                assert post(receiver.url, b'{"n":3}', old) == (204, None)  # previous
                r = sealbox("secret", "get", REF.path, "--stage", "previous", env=remote)
                assert (r.returncode, r.stdout) == (0, old.reveal())
                heard = verifier.changes
                r = sealbox("rotation", "revoke", REF.path, "1", env=remote)
                assert r.returncode == 0, r.stderr
                wait_for(lambda: verifier.changes > heard, "the receiver heard the revocation")
                assert post(receiver.url, b'{"n":4}', old) == (400, "signature")
                assert post(receiver.url, b'{"n":5}', new) == (204, None)
                assert receiver.accepted == [b'{"n":1}', b'{"n":2}', b'{"n":3}', b'{"n":5}']
        finally:
            verifier.close()
            sender.close()
            reader.close()
