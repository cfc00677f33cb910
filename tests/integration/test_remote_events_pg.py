"""Two servers on one PostgreSQL database are one service, live updates included.

A client watching through server B hears a write made through server A (LISTEN/NOTIFY
between the nodes), and reads it through B. The latency is printed (`-s` shows it) and
only bounded generously.
"""

from __future__ import annotations

import queue
import statistics
import time
from pathlib import Path

import pytest
from tests.pg import throwaway_database
from tests.unit.client.live import make_vault, serving

from sealbox.client import Client
from sealbox.factory import open_vault
from sealbox.model import SecretRef, SecretValue
from sealbox.server.app import create_app
from sealbox.server.events import ChangeHub
from sealbox.server.settings import ServerSettings
from sealbox.vault import ChangeEvent

pytestmark = pytest.mark.integration

BOUND = 10.0
REF = SecretRef("payments", "prod", "DB_PASSWORD")


def _wait_listening(app: object) -> None:
    hub: ChangeHub = app.state.sealbox_events  # type: ignore[attr-defined]
    assert hub.distributed
    assert hub.listening.wait(BOUND)


def test_a_write_on_one_node_reaches_watchers_of_another(tmp_path: Path) -> None:
    with throwaway_database() as dsn:
        token = make_vault(tmp_path, storage=dsn)
        vault_a, vault_b = open_vault(source="api"), open_vault(source="api")
        app_a = create_app(vault_a, ServerSettings())
        app_b = create_app(vault_b, ServerSettings())
        try:
            with serving(app_a) as url_a, serving(app_b) as url_b:
                _wait_listening(app_a)
                _wait_listening(app_b)
                via_a = Client(url_a, token)
                via_b = Client(url_b, token, cache_ttl=60)
                via_a.create_project("payments")
                events: queue.Queue[tuple[float, ChangeEvent]] = queue.Queue()
                w = via_b.watch("payments", "prod", lambda e: events.put((time.monotonic(), e)))
                assert w.wait_ready(BOUND)
                latencies = []
                for i in range(1, 6):
                    started = time.monotonic()
                    via_a.set(REF, SecretValue(f"value-{i}"))
                    at, event = events.get(timeout=BOUND)
                    latencies.append(at - started)
                    assert (event.path, event.version, event.op) == (REF.path, i, "write")
                    # B serves the new value (its cache was invalidated by the event).
                    assert via_b.get(REF).value.reveal() == f"value-{i}"
                via_a.delete(REF)
                assert events.get(timeout=BOUND)[1].op == "delete"
                print(
                    f"\ncross-node change notification latency: median "
                    f"{statistics.median(latencies) * 1000:.1f} ms, "
                    f"max {max(latencies) * 1000:.1f} ms over {len(latencies)} writes"
                )
                assert max(latencies) < BOUND
                w.stop()
                via_a.close()
                via_b.close()
        finally:
            for app in (app_a, app_b):
                app.state.sealbox_events.close()
            vault_a.close()
            vault_b.close()
