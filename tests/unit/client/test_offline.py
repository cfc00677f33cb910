"""The read cache: TTL in memory, encrypted disk copies, stale data when the server is away."""

from __future__ import annotations

import logging
import stat
import time
from datetime import timedelta
from pathlib import Path

import pytest
from tests.unit.client.live import live_server

from sealbox import errors
from sealbox.client import Client
from sealbox.client.cache import DiskCache, Entry
from sealbox.model import SecretRef, SecretValue

CANARY = "offline-canary-3f9d"
REF = SecretRef("payments", "dev", "API_KEY")


def _seed(client: Client) -> None:
    client.create_project("payments")
    client.set(REF, SecretValue(CANARY))


def test_stale_copy_is_served_when_the_server_is_down(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "cache"
    with live_server(tmp_path) as live:
        client = Client(live.url, live.token, offline=True, cache_dir=cache, cache_ttl=0)
        _seed(client)
        assert client.resolve("payments", "dev")["API_KEY"].reveal() == CANARY
        assert client.get(REF).value.reveal() == CANARY
        url, token = live.url, live.token
    # The server is gone.
    caplog.set_level(logging.WARNING, logger="sealbox.client")
    assert client.resolve("payments", "dev")["API_KEY"].reveal() == CANARY
    warning = caplog.records[-1].getMessage()
    assert "STALE" in warning and url in warning and "payments/dev" in warning
    assert " s" in warning or "min" in warning  # says how old
    assert CANARY not in warning and token not in warning

    # A new process (empty memory) reads the encrypted disk copy.
    again = Client(url, token, offline=True, cache_dir=cache)
    assert again.get(REF).value.reveal() == CANARY
    # A person's reveal always goes to the server (and its audit trail).
    with pytest.raises(errors.BackendUnavailable):
        again.get(REF, reveal=True)
    # Without offline mode there is no fallback.
    with pytest.raises(errors.BackendUnavailable):
        Client(url, token, cache_dir=cache).resolve("payments", "dev")
    # Another token cannot read these copies.
    other = Client(url, "sbx_s_" + "Z" * 49, offline=True, cache_dir=cache)
    with pytest.raises(errors.BackendUnavailable, match="no offline copy"):
        other.resolve("payments", "dev")
    # Too old: a clear error saying so.
    time.sleep(0.05)
    strict = Client(url, token, offline=True, cache_dir=cache, offline_max_age=0.01)
    with pytest.raises(errors.BackendUnavailable, match="more than the"):
        strict.resolve("payments", "dev")

    # The files: private, encrypted, named by an HMAC (no project, env or name).
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    files = list(cache.iterdir())
    assert files
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
        data = f.read_bytes()
        assert CANARY.encode() not in data and b"API_KEY" not in data
        assert "payments" not in f.name and "API_KEY" not in f.name


def test_a_tampered_copy_is_ignored(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path, "sbx_s_" + "T" * 49, "http://x")
    disk.put("k", Entry({"v": 1}, 100.0))
    (path,) = list(tmp_path.iterdir())
    assert disk.get("k") == Entry({"v": 1}, 100.0)
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 1
    path.write_bytes(bytes(blob))
    assert disk.get("k") is None
    # An entry moved to another key's file fails too (the key is in the associated data).
    disk.put("a", Entry("A", 1.0))
    disk.put("b", Entry("B", 1.0))
    pa, pb = disk._path("a"), disk._path("b")
    pa.write_bytes(pb.read_bytes())
    assert disk.get("a") is None
    assert disk.wipe() == 3


def test_memory_cache_ttl_and_invalidation_on_own_writes(tmp_path: Path) -> None:
    with live_server(tmp_path) as live:
        reader = Client(live.url, live.token, cache_ttl=timedelta(minutes=5))
        writer = Client(live.url, live.token)
        _seed(writer)
        assert reader.get(REF).value.reveal() == CANARY
        writer.set(REF, SecretValue("v2"))
        # Within the TTL the reader's cached copy stands...
        assert reader.get(REF).value.reveal() == CANARY
        # ...until it writes itself (or hears a change event, see test_watch).
        reader.set(REF, SecretValue("v3"))
        assert reader.get(REF).value.reveal() == "v3"
        assert reader.resolve("payments", "dev")["API_KEY"].reveal() == "v3"
        reader.close()
        writer.close()


def test_prefer_offline_uses_a_recent_copy_first(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with live_server(tmp_path) as live:
        writer = Client(live.url, live.token)
        _seed(writer)
        first = Client(live.url, live.token, prefer_offline=True, cache_dir=cache)
        assert first.resolve("payments", "dev")["API_KEY"].reveal() == CANARY
        writer.set(REF, SecretValue("newer"))
        second = Client(live.url, live.token, prefer_offline=True, cache_dir=cache)
        assert second.resolve("payments", "dev")["API_KEY"].reveal() == CANARY
        fresh = Client(live.url, live.token, offline=True, cache_dir=cache)
        assert fresh.resolve("payments", "dev")["API_KEY"].reveal() == "newer"
        # Beyond the allowed age, prefer-offline asks the server.
        time.sleep(0.05)
        strict = Client(
            live.url, live.token, prefer_offline=True, cache_dir=cache, offline_max_age=0.01
        )
        writer.set(REF, SecretValue("newest"))
        assert strict.resolve("payments", "dev")["API_KEY"].reveal() == "newest"
        writer.close()


def test_wipe_on_revoke_self(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with live_server(tmp_path) as live:
        admin = Client(live.url, live.token)
        _seed(admin)
        new = admin.accounts.create_token()
        client = Client(live.url, new.value, offline=True, cache_dir=cache)
        client.resolve("payments", "dev")
        assert list(cache.iterdir())
        client.revoke_self()
        assert not list(cache.iterdir())
        admin.close()
