"""Live updates: Client.watch over the server's event stream (SQLite: one node)."""

from __future__ import annotations

import json
import queue
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from tests.unit.client.live import live_server, serving

from sealbox import errors
from sealbox.changes import ChangeEvent
from sealbox.client import Client
from sealbox.client.watch import parse_sse
from sealbox.model import SecretRef, SecretValue
from sealbox.server.app import create_app
from sealbox.server.settings import ServerSettings

REF = SecretRef("payments", "dev", "DB_URL")
BOUND = 10.0  # generous: the goal is well under a second


def _next(events: queue.Queue[ChangeEvent]) -> ChangeEvent:
    return events.get(timeout=BOUND)


def test_parse_sse() -> None:
    lines = [b": ping\n", b"event: change\n", b'data: {"a":\n', b"data: 1}\n", b"\n", b"\n"]
    assert list(parse_sse(iter(lines))) == [("change", '{"a":\n1}')]


def test_on_change_fires_for_every_kind_of_change(tmp_path: Path) -> None:
    with live_server(tmp_path) as live:
        writer = Client(live.url, live.token)
        writer.create_project("payments")
        watcher = Client(live.url, live.token, cache_ttl=timedelta(minutes=5))
        events: queue.Queue[ChangeEvent] = queue.Queue()
        w = watcher.watch("payments", "dev", events.put)
        assert w.wait_ready(BOUND)
        started = time.monotonic()
        writer.set(REF, SecretValue("one"))
        first = _next(events)
        latency = time.monotonic() - started
        assert (first.path, first.version, first.op) == (REF.path, 1, "write")
        assert latency < BOUND
        # The watcher's cache is invalidated by the event.
        assert watcher.get(REF).value.reveal() == "one"
        writer.set(REF, SecretValue("two"))
        assert _next(events).version == 2
        assert watcher.get(REF).value.reveal() == "two"
        writer.rollback(REF, 1)
        assert _next(events).op == "rollback"
        writer.delete(REF)
        assert _next(events).op == "delete"
        writer.undelete(REF)
        assert _next(events).op == "undelete"
        # Another environment is not reported.
        writer.set(SecretRef("payments", "prod", "DB_URL"), SecretValue("p"))
        writer.purge(REF)
        assert _next(events).op == "purge"
        assert events.empty()
        w.stop()
        assert not w.running
        watcher.close()
        writer.close()


def test_a_failing_callback_does_not_end_the_watch(tmp_path: Path) -> None:
    with live_server(tmp_path) as live:
        client = Client(live.url, live.token)
        client.create_project("payments")
        seen: list[int] = []

        def callback(event: ChangeEvent) -> None:
            seen.append(event.version or 0)
            raise RuntimeError("secret-looking text must not be logged")

        w = client.watch("payments", "dev", callback)
        assert w.wait_ready(BOUND)
        client.set(REF, SecretValue("a"))
        client.set(REF, SecretValue("b"))
        deadline = time.monotonic() + BOUND
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert seen == [1, 2]
        client.close()
        assert not w.running


def test_denied_and_bad_tokens_end_the_watch_with_an_error(tmp_path: Path) -> None:
    with live_server(tmp_path) as live:
        admin = Client(live.url, live.token)
        admin.create_project("payments")
        bad = Client(live.url, "sbx_s_" + "D" * 49)
        w = bad.watch("payments", "dev", lambda e: None)
        assert not w.wait_ready(BOUND)
        assert isinstance(w.error, errors.AuthenticationFailed)
        w._thread.join(BOUND)
        assert not w.running
        # A token without `list` on payments/dev/* is refused (403), not streamed.
        from sealbox.auth.policy import parse_policy

        admin.accounts.apply_policy(
            parse_policy(
                {
                    "name": "prod-only",
                    "rules": [{"path": "payments/prod/*", "capabilities": ["list"]}],
                }
            )
        )
        admin.accounts.create_machine("m", ["prod-only"])
        token = admin.accounts.create_token(identity="m").value
        w2 = Client(live.url, token).watch("payments", "dev", lambda e: None)
        assert not w2.wait_ready(BOUND)
        assert isinstance(w2.error, errors.AccessDenied)
        admin.close()


def test_changes_missed_while_disconnected_are_reported(tmp_path: Path) -> None:
    from sealbox.factory import open_vault

    gone = SecretRef("payments", "dev", "GONE")
    events: queue.Queue[ChangeEvent] = queue.Queue()
    with live_server(tmp_path) as live:
        port = live.port
        client = Client(live.url, live.token)
        client.create_project("payments")
        client.set(REF, SecretValue("before"))
        client.set(gone, SecretValue("x"))
        w = client.watch("payments", "dev", events.put)
        assert w.wait_ready(BOUND)
    # The server is down and the watch keeps retrying; meanwhile the vault changes.
    local = open_vault(source="api")
    local.set(REF, SecretValue("during"))
    local.delete(gone)
    try:
        with serving(create_app(local, ServerSettings()), port):
            got = {_next(events).name for _ in range(2)}
            assert got == {"DB_URL", "GONE"}
            w.stop()
    finally:
        local.close()


def test_event_stream_carries_no_values(tmp_path: Path) -> None:
    import http.client

    with live_server(tmp_path) as live:
        client = Client(live.url, live.token)
        client.create_project("payments")
        client.set(REF, SecretValue("value-canary-77"))
        conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=BOUND)
        conn.request(
            "GET", "/v1/events/payments/dev", headers={"Authorization": f"Bearer {live.token}"}
        )
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.getheader("content-type", "").startswith("text/event-stream")
        lines: list[bytes] = []
        done = threading.Event()

        def read() -> None:
            for line in iter(resp.readline, b""):
                lines.append(line)
                if b"event: change" in line:
                    lines.append(resp.readline())
                    done.set()
                    return

        t = threading.Thread(target=read, daemon=True)
        t.start()
        time.sleep(0.2)
        client.set(REF, SecretValue("value-canary-88"))
        assert done.wait(BOUND)
        text = b"".join(lines).decode()
        assert "value-canary" not in text
        assert '"versions":{"DB_URL":1}' in text
        change = json.loads(text.split("event: change\ndata: ")[1].splitlines()[0])
        assert change == {"path": REF.path, "version": 2, "op": "write"}
        conn.close()
        client.close()


@pytest.mark.parametrize("path", ["/v1/events/payments/-bad", "/v1/events/..%2f/dev"])
def test_event_stream_rejects_bad_scopes(tmp_path: Path, path: str) -> None:
    import http.client

    with live_server(tmp_path) as live:
        conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=BOUND)
        conn.request("GET", path, headers={"Authorization": f"Bearer {live.token}"})
        resp = conn.getresponse()
        assert resp.status == 400
        body = json.loads(resp.read())
        # NOTE: the native shape once the server reserves "events" (not a KV mount name).
        assert "error" in body or "errors" in body
        conn.close()
