"""A webhook signing secret rotated by the real engine, with a real HTTP sender and receiver.

A live sealbox server (the real app on a real socket) keeps the secret; ``sealbox rotation
configure … --method webhook --grace 2s`` and ``sealbox rotate`` run through it (the CLI in
remote mode). The receiver is an HTTP server verifying with
``WebhookVerifier.from_client(client, ref)``, which reads current and previous by stage over
HTTP; the sender signs with whatever it reads from sealbox and hears the promotion through
``Client.watch``. The grace window is measured by the server's clock, which the test moves
(no sleeps, no timing): signatures with the old secret pass during it and are refused
after; signatures with the new secret pass at once.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from tests.cli_harness import Cli
from tests.unit.client.live import make_vault, serving

from sealbox.client import Client, WebhookVerifier, sign_webhook
from sealbox.context import utcnow
from sealbox.errors import BackendUnavailable, InvalidInput, NotFound, WebhookVerificationFailed
from sealbox.factory import open_vault
from sealbox.model import ChangeEvent, SecretRef, SecretValue
from sealbox.rotation.webhook import WebhookRotator
from sealbox.server.app import create_app
from sealbox.server.settings import ServerSettings
from sealbox.server.testing import free_port

REF = SecretRef("payments", "prod", "WEBHOOK_SECRET")
BOUND = 10.0  # seconds to wait for an event that must come (a bound, never asserted)
EXIT_NOT_FOUND = 3


class ServerClock:
    """The server vault's clock: real UTC time plus what the test moved it by."""

    def __init__(self) -> None:
        self.shift = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.shift


class Clock:
    """The receiver verifier's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@dataclass
class Server:
    url: str
    token: str
    clock: ServerClock
    app: Any
    vault: Any
    made: list[Client]

    def client(self, **options: Any) -> Client:
        self.made.append(Client(self.url, self.token, **options))
        return self.made[-1]


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A live server on a vault whose clock the test moves; the CLI talks to it."""
    token = make_vault(tmp_path)
    clock = ServerClock()
    vault = open_vault(source="api", clock=clock)
    app = create_app(vault, ServerSettings())
    try:
        with serving(app) as url:
            monkeypatch.setenv("SEALBOX_ADDR", url)
            monkeypatch.setenv("SEALBOX_TOKEN", token)
            live = Server(url, token, clock, app, vault, [])
            try:
                yield live
            finally:
                for c in live.made:
                    c.close()
    finally:
        app.state.sealbox_events.close()
        vault.close()


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
                    receiver.verifier.verify(body, dict(self.headers.items()))
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


def post(url: str, body: bytes, secret: SecretValue, *, timestamp: int | None = None) -> Any:
    """Sign the exact body and POST it; (status, refusal reason or None)."""
    headers = sign_webhook(body, secret, timestamp=timestamp).as_dict()
    request = urllib.request.Request(
        url, data=body, method="POST", headers={**headers, "Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())["refused"]


class Sender:
    """A sender that signs with whatever sealbox gives it (its client caches reads for an
    hour) and hears the promotion through ``Client.watch``, which drops its cached read."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.events: queue.Queue[ChangeEvent] = queue.Queue()
        self.watch = client.watch(REF.project, REF.env, self.events.put)
        assert self.watch.wait_ready(BOUND)

    def secret(self) -> SecretValue:
        return self.client.get(REF).value

    def send(self, url: str, body: bytes) -> Any:
        return post(url, body, self.secret())

    def heard(self, version: int) -> ChangeEvent:
        """The change event of the promotion to ``version`` (others may come first)."""
        deadline = time.monotonic() + BOUND
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=0.2)
            except queue.Empty:
                continue
            if event.name == REF.name and event.version == version:
                return event
        raise AssertionError(f"the sender never heard of version {version}")


def first_secret() -> SecretValue:
    return WebhookRotator().create(SimpleNamespace(options={}))  # type: ignore[arg-type]


def configure(server: Server, cli: Cli, *extra: str) -> None:
    admin = server.client()
    admin.create_project("payments")
    admin.set(REF, first_secret())
    r = cli("rotation", "configure", REF.path, "--method", "webhook", "--grace", "2s", *extra)
    assert r.status == 0, r.err
    assert "previous readable for 0:00:02" in r.err


def rotate(cli: Cli) -> dict[str, Any]:
    r = cli("rotate", REF.path, "--json")
    assert r.status == 0, r.err
    report: dict[str, Any] = json.loads(r.out)
    assert (report["state"], report["test"], report["method"]) == ("succeeded", "passed", "webhook")
    return report


def test_webhooks_keep_flowing_through_a_rotation_by_the_engine(server: Server, cli: Cli) -> None:
    configure(server, cli)
    sender = Sender(server.client(cache_ttl=3600))
    clock = Clock()
    verifier = WebhookVerifier.from_client(
        server.client(), REF, cache_ttl=60, refresh_after=5, clock=clock
    )
    with Receiver(verifier) as receiver:
        event = b'{"type":"invoice.paid","data":{"id":"in_1"}}'
        old = sender.secret()
        assert sender.send(receiver.url, event) == (204, None)
        assert verifier.fetches == 1

        report = rotate(cli)
        assert (report["from_version"], report["pending_version"]) == (1, 2)
        assert sender.heard(2).op == "rotate"  # the watch dropped the sender's cached read
        new = sender.secret()
        assert new != old and new.reveal().startswith("whsec_")

        # A sender still on the old secret (a delivery signed before it re-read): accepted,
        # from the verifier's cache, without a read of sealbox.
        assert post(receiver.url, b'{"n":2}', old) == (204, None)
        assert verifier.fetches == 1
        # The new secret is accepted at once: the mismatch makes the verifier read current
        # and previous by stage again (once refresh_after has passed).
        clock.t += 6
        assert sender.send(receiver.url, b'{"n":3}') == (204, None)
        assert verifier.fetches == 2
        # Both during the grace window: old is the previous version, read by stage.
        assert post(receiver.url, b'{"n":4}', old) == (204, None)
        reader = server.client()
        assert reader.get(REF, stage="previous").value == old
        assert reader.get(REF, stage="current").value == new

        # The grace window (2 s by the server's clock) closes.
        server.clock.shift += timedelta(seconds=3)
        with pytest.raises(NotFound, match="past its grace window"):
            reader.get(REF, stage="previous")
        r = cli("secret", "get", REF.path, "--stage", "previous")
        assert r.status == EXIT_NOT_FOUND and old.reveal() not in r.out + r.err
        # Until the verifier's cache expires it still holds old (cache_ttl is the bound the
        # docs tell you to keep short); past it, old is refused and new still accepted.
        clock.t += 61
        assert post(receiver.url, b'{"n":5}', old) == (400, "signature")
        assert sender.send(receiver.url, b'{"n":6}') == (204, None)

        # Replays and forgeries on the wire are refused too.
        stale = int(time.time()) - 600
        assert post(receiver.url, b'{"n":7}', new, timestamp=stale) == (400, "timestamp")
        assert post(receiver.url, b'{"n":8}', first_secret()) == (400, "signature")

        assert receiver.accepted == [event, b'{"n":2}', b'{"n":3}', b'{"n":4}', b'{"n":6}']
    sender.watch.stop()
    r = cli("rotation", "history", REF.path, "--json")
    assert [x["state"] for x in json.loads(r.out)] == ["succeeded"]


def wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + BOUND
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.02)


def test_a_following_receiver_accepts_the_new_secret_at_once(server: Server, cli: Cli) -> None:
    """``from_client(..., follow=True)``: the promotion's change event expires the
    verifier's cache, so the first webhook signed with the new secret passes even right
    after a read (a mismatch alone would refresh only after ``refresh_after``), and a
    revocation is refused without waiting for ``cache_ttl``."""
    configure(server, cli)
    sender = server.client()
    clock = Clock()  # never moved: no refresh is ever due by time
    with WebhookVerifier.from_client(
        server.client(), REF, follow=True, cache_ttl=3600, refresh_after=3600, clock=clock
    ) as verifier:
        assert verifier.watch is not None and verifier.watch.wait_ready(BOUND)
        with Receiver(verifier) as receiver:
            old = sender.get(REF).value
            assert post(receiver.url, b'{"n":1}', old) == (204, None)
            rotate(cli)
            wait_for(lambda: verifier.changes >= 1, "the verifier heard the promotion")
            new = sender.get(REF, stage="current").value
            assert post(receiver.url, b'{"n":2}', new) == (204, None)
            assert post(receiver.url, b'{"n":3}', old) == (204, None)  # previous, in grace
            heard = verifier.changes
            r = cli("rotation", "revoke", REF.path, "1")
            assert r.status == 0, r.err
            wait_for(lambda: verifier.changes > heard, "the verifier heard the revocation")
            assert post(receiver.url, b'{"n":4}', old) == (400, "signature")
            assert post(receiver.url, b'{"n":5}', new) == (204, None)
    assert verifier.watch is None  # closed with the block


def test_follow_needs_a_client_that_watches() -> None:
    class Reader:
        def get(self, ref: SecretRef) -> Any:
            raise AssertionError("not read")

    with pytest.raises(InvalidInput, match="follow=True needs a client with watch"):
        WebhookVerifier.from_client(Reader(), REF, follow=True)


def test_a_rehearsal_changes_nothing_the_receiver_accepts(server: Server, cli: Cli) -> None:
    configure(server, cli)
    client = server.client()
    old = client.get(REF).value
    r = cli("rotate", REF.path, "--dry-run", "--json")
    assert r.status == 0, r.err
    assert (json.loads(r.out)["state"], json.loads(r.out)["test"]) == ("rehearsed", "passed")
    verifier = WebhookVerifier.from_client(client, REF)
    with Receiver(verifier) as receiver:
        assert post(receiver.url, b"{}", old) == (204, None)
    assert client.get(REF, stage="current").value == old
    with pytest.raises(NotFound):
        client.get(REF, stage="pending")


def test_a_revoked_previous_is_refused_and_dropped_from_every_cache(
    server: Server, cli: Cli, tmp_path: Path
) -> None:
    """A leaked old secret: revoked during the grace window, it is refused once the
    verifier's cache (``cache_ttl``) expires, and no client cache (memory or offline, by any key) serves it again."""
    configure(server, cli)
    cached = server.client(cache_ttl=3600, offline=True, cache_dir=tmp_path / "cache")
    old = cached.get(REF).value
    assert cached.get(REF, version=1).value == old
    rotate(cli)
    clock = Clock()
    verifier = WebhookVerifier.from_client(server.client(), REF, refresh_after=1, clock=clock)
    with Receiver(verifier) as receiver:
        assert post(receiver.url, b'{"n":1}', old) == (204, None)  # previous, in grace
        new = server.client().get(REF).value
        assert post(receiver.url, b'{"n":2}', new) == (204, None)  # both held
        fetches = verifier.fetches
        cached.rotations.revoke(REF, 1)
        clock.t += 61  # the verifier's cache_ttl: its next read has current only
        assert post(receiver.url, b'{"n":3}', new) == (204, None)
        assert verifier.fetches == fetches + 1
        assert post(receiver.url, b'{"n":4}', old) == (400, "signature")
    with pytest.raises(NotFound, match="revoked"):
        cached.get(REF, version=1)
    with pytest.raises(NotFound, match="no previous version"):
        cached.get(REF, stage="previous")
    # A client that prefers its offline copies finds none of the revoked value on disk.
    disk = server.client(offline=True, prefer_offline=True, cache_dir=tmp_path / "cache")
    with pytest.raises(NotFound, match="revoked"):
        disk.get(REF, version=1)
    assert disk.get(REF).value == new
    assert cached.get(REF).value == new  # the rotation dropped the cached current read


def test_reads_by_stage_never_come_from_a_cache(server: Server, cli: Cli, tmp_path: Path) -> None:
    """An offline client serves its last copy of a current read when the server is down;
    a read by stage has no copy to serve, and a current read never answers a stage read."""
    configure(server, cli)
    rotate(cli)
    # A second server on the same vault, on a port this test stops.
    app = create_app(server.vault, ServerSettings())
    port = free_port()
    try:
        with serving(app, port) as url:
            client = Client(
                url, server.token, cache_ttl=3600, offline=True, cache_dir=tmp_path / "cache"
            )
            current = client.get(REF).value
            previous = client.get(REF, stage="previous").value
            assert previous != current
            # The grace window closes: no copy of the previous read outlives it.
            server.clock.shift += timedelta(seconds=3)
            with pytest.raises(NotFound, match="past its grace window"):
                client.get(REF, stage="previous")
            with pytest.raises(InvalidInput, match="a version or a stage"):
                client.get(REF, version=1, stage="previous")
            with pytest.raises(InvalidInput, match="read by stage"):
                client.get(REF, stage="revoked")
            client.close()
    finally:
        app.state.sealbox_events.close()
    # The server is gone: the offline copy answers a plain read (with its STALE warning),
    # never a read by stage.
    client = Client(url, server.token, offline=True, cache_dir=tmp_path / "cache")
    try:
        assert client.get(REF).value == current
        with pytest.raises(BackendUnavailable):
            client.get(REF, stage="current")
        with pytest.raises(BackendUnavailable):
            client.get(REF, stage="previous")
    finally:
        client.close()


def test_run_watch_restarts_a_sender_with_the_rotated_secret(
    server: Server, cli: Cli, tmp_path: Path
) -> None:
    """``sealbox run --watch`` in remote mode: its supervisor follows the server's change
    stream (``Client.watch``) and restarts the child with the secret the engine promoted."""
    from sealbox.delivery.supervise import Supervision, Supervisor

    configure(server, cli)
    first = server.client().get(REF).value
    out = tmp_path / "seen"
    script = f'echo "$WEBHOOK_SECRET" >> {out}; [ "$(wc -l < {out})" -ge 2 ] && exit 0; sleep 30'
    rotated: list[str] = []

    def rotate_once_started() -> None:
        deadline = time.monotonic() + BOUND
        while time.monotonic() < deadline and not (out.exists() and out.read_text()):
            time.sleep(0.05)
        rotator = Client(server.url, server.token)
        try:
            rotated.append(rotator.rotations.start(REF).state.value)
        finally:
            rotator.close()

    thread = threading.Thread(target=rotate_once_started)
    thread.start()
    said: list[str] = []
    try:
        status = Supervisor(
            server.client(), REF.project, REF.env, [REF.name], ["sh", "-c", script],
            Supervision(watch=True, grace=5), parent_env={"PATH": "/usr/bin:/bin"},
            report=said.append,
        ).run()  # fmt: skip
    finally:
        thread.join()
    assert (status, rotated) == (0, ["succeeded"])
    before, after = out.read_text().splitlines()
    assert before == first.reveal() and after != before and after.startswith("whsec_")
    assert after == server.client().get(REF, stage="current").value.reveal()
    assert said == ["secrets changed; restarting the command"]


def test_a_revocation_heard_by_watch_wipes_the_offline_copies(
    server: Server, cli: Cli, tmp_path: Path
) -> None:
    """A version revoked by someone else: a watching client drops every copy it cached of
    the token's reads (memory and disk), so an outage cannot bring the leaked value back."""
    configure(server, cli)
    cache = tmp_path / "cache"
    watching = server.client(cache_ttl=3600, offline=True, cache_dir=cache)
    old = watching.get(REF, version=1).value
    heard: queue.Queue[ChangeEvent] = queue.Queue()
    w = watching.watch(REF.project, REF.env, heard.put)
    assert w.wait_ready(BOUND)
    rotate(cli)
    r = cli("rotation", "revoke", REF.path, "1")  # another process, through the server
    assert r.status == 0, r.err
    deadline = time.monotonic() + BOUND
    while True:
        event = heard.get(timeout=max(0.1, deadline - time.monotonic()))
        if event.op == "revoke":
            break
    w.stop()
    disk = server.client(offline=True, prefer_offline=True, cache_dir=cache)
    with pytest.raises(NotFound, match="revoked"):
        disk.get(REF, version=1)
    with pytest.raises(NotFound, match="revoked"):
        watching.get(REF, version=1)
    assert watching.get(REF).value != old


def test_a_rotation_through_the_sdk_drops_its_cached_reads(server: Server, cli: Cli) -> None:
    """After ``client.rotations.start`` (or resume, cancel, rotate_due) the same client's
    cached reads of the secret and its environment's resolves are not answered stale."""
    configure(server, cli)
    client = server.client(cache_ttl=3600)
    old = client.get(REF).value
    assert client.resolve(REF.project, REF.env)[REF.name] == old
    assert client.rotations.start(REF).state == "succeeded"
    new = client.get(REF).value
    assert new != old and new == server.client().get(REF, stage="current").value
    assert client.resolve(REF.project, REF.env)[REF.name] == new
