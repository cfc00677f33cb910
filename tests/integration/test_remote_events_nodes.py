"""Two servers on one database are one service, live updates included.

A client watching through server B hears a write made through server A, and reads it
through B: on PostgreSQL (LISTEN/NOTIFY between nodes) and on SQLite (two vaults
on one file, as two server processes have; the polled change table, which holds
whatever process wrote). A write by the CLI on the same SQLite
file reaches a server's watchers too. The latency is printed (`-s` shows it) and only
bounded generously.
"""

from __future__ import annotations

import queue
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from tests.pg import throwaway_database
from tests.unit.client.live import make_vault, serving

from sealbox.changes import ChangeEvent
from sealbox.client import Client
from sealbox.factory import open_vault
from sealbox.model import SecretRef, SecretValue
from sealbox.server.app import create_app
from sealbox.server.events import ChangeHub
from sealbox.server.settings import ServerSettings

BOUND = 10.0
REF = SecretRef("payments", "prod", "DB_PASSWORD")


def _wait_listening(app: object) -> None:
    hub: ChangeHub = app.state.sealbox_events  # type: ignore[attr-defined]
    assert hub.listening.wait(BOUND)


@contextmanager
def _storage(kind: str, tmp_path: Path) -> Iterator[str | None]:
    if kind == "postgres":
        with throwaway_database() as dsn:
            yield dsn
    else:
        yield None  # the default: SQLite in SEALBOX_HOME


@pytest.mark.parametrize(
    "kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.integration)]
)
def test_a_write_on_one_node_reaches_watchers_of_another(kind: str, tmp_path: Path) -> None:
    with _storage(kind, tmp_path) as dsn:
        token = make_vault(tmp_path, storage=dsn)
        vault_a, vault_b = open_vault(source="api"), open_vault(source="api")
        app_a = create_app(vault_a, ServerSettings())
        app_b = create_app(vault_b, ServerSettings())
        try:
            with serving(app_a) as url_a, serving(app_b) as url_b:
                via_a = Client(url_a, token)
                via_b = Client(url_b, token, cache_ttl=60)
                via_a.create_project("payments")
                events: queue.Queue[tuple[float, ChangeEvent]] = queue.Queue()
                w = via_b.watch("payments", "prod", lambda e: events.put((time.monotonic(), e)))
                assert w.wait_ready(BOUND)
                _wait_listening(app_b)
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
                    f"\ncross-node change notification latency ({kind}): median "
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


def test_a_cli_write_reaches_a_servers_watchers(tmp_path: Path) -> None:
    """SQLite: a write by another process on the vault file (the CLI) is heard too."""
    token = make_vault(tmp_path)
    vault = open_vault(source="api")
    app = create_app(vault, ServerSettings())
    try:
        with serving(app) as url:
            client = Client(url, token)
            client.create_project("payments")
            events: queue.Queue[ChangeEvent] = queue.Queue()
            w = client.watch("payments", "prod", events.put)
            assert w.wait_ready(BOUND)
            _wait_listening(app)
            cli = open_vault(source="cli")  # another process, as far as the file knows
            cli.set(REF, SecretValue("from the CLI"))
            cli.close()
            event = events.get(timeout=BOUND)
            assert (event.path, event.version, event.op) == (REF.path, 1, "write")
            w.stop()
            client.close()
    finally:
        app.state.sealbox_events.close()
        vault.close()
