"""A real HTTP sender and a real HTTP receiver (threads on 127.0.0.1) through a rollover of a
webhook signing secret kept in a live sealbox server.

The sender reads the secret from sealbox and signs (Standard Webhooks); the receiver
verifies with a WebhookVerifier fed from sealbox. The rollover's stages are played here
with version numbers: the new secret becomes current (a new version) and the old one is
served as "previous" until the test closes the grace window. (Reads by stage belong to the
rotation engine; once the SDK has them, ``WebhookVerifier.from_client`` reads previous by
stage itself: tests/unit/rotation/test_webhook_signing.py covers that path.)
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.unit.client.live import Live, live_server

from sealbox.client import Client, WebhookVerifier, sign_webhook
from sealbox.errors import WebhookVerificationFailed
from sealbox.model import SecretRef, SecretValue
from sealbox.rotation.webhook import WebhookRotator

REF = SecretRef("payments", "prod", "WEBHOOK_SECRET")


class Grace:
    """Which version sealbox serves as previous (None: the grace window is closed)."""

    def __init__(self) -> None:
        self.previous_version: int | None = None


class Clock:
    """The receiver verifier's monotonic clock, moved by the test (no sleeps, no timing)."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Receiver:
    """An HTTP server that answers 204 to a verified webhook and 400 to anything else."""

    def __init__(self, verifier: WebhookVerifier) -> None:
        self.verifier = verifier
        self.accepted: list[bytes] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    msg_id = receiver.verifier.verify(body, dict(self.headers.items()))
                except WebhookVerificationFailed as exc:
                    answer = json.dumps({"refused": exc.reason}).encode()
                    self.send_response(400)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                    return
                receiver.accepted.append(body)
                self.send_response(204)
                self.send_header("webhook-id-seen", msg_id)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def send(url: str, body: bytes, secret: SecretValue, *, timestamp: int | None = None) -> Any:
    """The sender: sign the exact body and POST it; (status, refusal reason or None)."""
    headers = sign_webhook(body, secret, timestamp=timestamp).as_dict()
    request = urllib.request.Request(
        url, data=body, method="POST", headers={**headers, "Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())["refused"]


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    with live_server(tmp_path) as server:
        yield server


@pytest.fixture
def clients(live: Live) -> Iterator[Any]:
    """Clients of the live server (admin token), closed at the end."""
    made: list[Client] = []

    def client(**options: Any) -> Client:
        made.append(Client(live.url, live.token, **options))
        return made[-1]

    yield client
    for c in made:
        c.close()


def test_webhooks_keep_flowing_through_a_rollover(clients: Any) -> None:
    rotator = WebhookRotator()
    admin = clients()
    admin.create_project("payments")
    old = rotator.create(_Ctx())
    admin.set(REF, old)

    receiver_client = clients()
    grace = Grace()

    def served() -> list[SecretValue]:
        receiver_client.invalidate(REF.project, REF.env, REF.name)
        found = [receiver_client.get(REF).value]
        if grace.previous_version is not None:
            found.append(receiver_client.get(REF, version=grace.previous_version).value)
        return found

    clock = Clock()
    verifier = WebhookVerifier(served, cache_ttl=60, refresh_after=5, clock=clock)
    sender_client = clients()

    with Receiver(verifier) as receiver:
        event = b'{"type":"invoice.paid","data":{"id":"in_1"}}'
        sender_secret = sender_client.get(REF).value
        assert send(receiver.url, event, sender_secret) == (204, None)

        # The rotation: create, test, then finish (new current, old previous in grace).
        new = rotator.create(_Ctx())
        rotator.test(_Ctx(pending=new, current=old))
        version = admin.set(REF, new)
        grace.previous_version = version - 1
        clock.t += 10  # past refresh_after, well within cache_ttl

        # The sender still signs with the old secret it cached: accepted (previous).
        assert send(receiver.url, b'{"n":2}', sender_secret) == (204, None)
        # The sender picks up the new secret; the receiver had only the old one cached,
        # refreshes once on the mismatch and accepts, without a restart.
        fetches = verifier.fetches
        # (A sender watching the secret drops its cached read on the promotion event.)
        sender_client.invalidate(REF.project, REF.env, REF.name)
        sender_secret = sender_client.get(REF).value
        assert sender_secret == new
        assert send(receiver.url, b'{"n":3}', sender_secret) == (204, None)
        assert verifier.fetches == fetches + 1
        assert send(receiver.url, b'{"n":4}', old) == (204, None)  # both, during grace

        # The grace window closes; once the receiver's cache expires, old is refused.
        grace.previous_version = None
        clock.t += 61
        assert send(receiver.url, b'{"n":5}', old) == (400, "signature")
        assert send(receiver.url, b'{"n":6}', new) == (204, None)

        # Replays and forgeries on the wire are refused too.
        stale = int(time.time()) - 600
        assert send(receiver.url, b'{"n":7}', new, timestamp=stale) == (400, "timestamp")
        forged = rotator.create(_Ctx())
        assert send(receiver.url, b'{"n":8}', forged) == (400, "signature")

        assert receiver.accepted == [event, b'{"n":2}', b'{"n":3}', b'{"n":4}', b'{"n":6}']


def test_a_tampered_body_on_the_wire_is_refused(clients: Any) -> None:
    admin = clients()
    admin.create_project("payments")
    secret = WebhookRotator().create(_Ctx())
    admin.set(REF, secret)
    verifier = WebhookVerifier.from_client(clients(), REF)
    with Receiver(verifier) as receiver:
        body = b'{"amount":100}'
        headers = sign_webhook(body, secret).as_dict()
        request = urllib.request.Request(
            receiver.url, data=b'{"amount":999}', method="POST", headers=headers
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 400
        assert receiver.accepted == []


def test_verifier_from_client_sees_a_new_current_despite_the_client_cache(
    clients: Any,
) -> None:
    """The SDK client caches reads for seconds; the verifier's refresh must not get the
    pre-rollover value from that cache."""
    admin = clients()
    admin.create_project("payments")
    rotator = WebhookRotator()
    old, new = rotator.create(_Ctx()), rotator.create(_Ctx())
    admin.set(REF, old)
    reader = clients(cache_ttl=3600)
    clock = Clock()
    verifier = WebhookVerifier.from_client(reader, REF, refresh_after=1, clock=clock)
    verifier.verify(b"{}", sign_webhook(b"{}", old).as_dict())
    admin.set(REF, new)
    clock.t += 2
    verifier.verify(b"{}", sign_webhook(b"{}", new).as_dict())


class _Ctx:
    """What the webhook rotator's create and test steps read (the engine builds the real one)."""

    def __init__(self, pending: SecretValue | None = None, current: SecretValue | None = None):
        self.ref = REF
        self.rotation_id = "rot-1"
        self.options: dict[str, str] = {}
        self.dry_run = False
        self.current = current
        self._pending = pending
        self.state: dict[str, str] = {}

    @property
    def pending(self) -> SecretValue:
        assert self._pending is not None
        return self._pending

    def secret(self, path: str) -> SecretValue:
        raise AssertionError("not used")

    def note(self, message: str) -> None:
        pass
