"""The key operations' seam: providers by name (``sealbox.key_providers``), and the
operations failing closed when their event cannot be recorded."""

from __future__ import annotations

import sqlite3
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from tests.conftest import PASSPHRASE

from sealbox import factory
from sealbox.errors import AuditUnavailable, InvalidInput, KeyProviderError, SealboxError
from sealbox.kms.local_unlock import LocalKind
from sealbox.kms.master import UnlockMethod
from sealbox.kms.registry import BUILTIN, GROUP, provider_kind

ENV = {"SEALBOX_PASSPHRASE": PASSPHRASE}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    factory.init_vault(home=home, method=UnlockMethod.PASSPHRASE, passphrase=PASSPHRASE, env={})
    return home


def _sessions(home: Path) -> int:
    with sqlite3.connect(home / "vault.db") as conn:
        return int(conn.execute("SELECT COUNT(*) FROM sb_sessions").fetchone()[0])


def _events(home: Path, operation: str) -> list[tuple[str, str]]:
    with sqlite3.connect(home / "vault.db") as conn:
        rows = conn.execute(
            "SELECT outcome, reason FROM sb_audit WHERE operation = ? ORDER BY seq", (operation,)
        ).fetchall()
    return [(str(o), str(r)) for o, r in rows]


def test_every_builtin_provider_family_is_declared_under_its_entry_point() -> None:
    declared = {ep.name: ep.value for ep in entry_points(group=GROUP)}
    assert declared == BUILTIN
    [ep] = [ep for ep in entry_points(group=GROUP) if ep.name == "local"]
    assert ep.load() is LocalKind
    assert isinstance(provider_kind("local"), LocalKind)


def test_a_provider_kind_that_is_not_installed_is_a_clear_error() -> None:
    with pytest.raises(KeyProviderError, match="unknown key provider kind"):
        provider_kind("pkcs11-not-here")


def test_a_vault_naming_an_unknown_provider_fails_unlock_with_an_error_event(home: Path) -> None:
    with sqlite3.connect(home / "vault.db") as conn:
        conn.execute("UPDATE sb_key_providers SET kind = 'nope'")
    vault = factory.open_vault(home=home, env=ENV)
    try:
        with pytest.raises(KeyProviderError, match="'nope'"):
            vault.keys.load("test")
    finally:
        vault.close()
    assert _events(home, "keys.load") == [("error", "key_provider_error")]
    with pytest.raises(InvalidInput, match="no local key provider"):
        factory.unlock(home=home, env=ENV)
    assert _sessions(home) == 0


def test_unlock_fails_closed_without_an_audit_sink(home: Path) -> None:
    env = {**ENV, "SEALBOX_AUDIT_SINKS": "file:/dev/full"}  # every write fails
    with pytest.raises(AuditUnavailable):
        factory.unlock(home=home, env=env)
    assert _sessions(home) == 0  # no session without its event


def test_lock_and_passphrase_change_fail_closed_without_an_audit_sink(home: Path) -> None:
    factory.unlock(home=home, env=ENV)
    env = {**ENV, "SEALBOX_AUDIT_SINKS": "file:/dev/full"}
    with pytest.raises(AuditUnavailable):
        factory.lock(home=home, env=env)
    assert _sessions(home) == 1
    with pytest.raises(AuditUnavailable):
        factory.change_passphrase(home=home, old=PASSPHRASE, new="another one", env=env)
    # Not changed: the old passphrase still unlocks, and the session was kept.
    assert _sessions(home) == 1
    factory.unlock(home=home, env=ENV)
    assert factory.lock(home=home, env={}) == 2
    assert _events(home, "lock") == [("allowed", "2 sessions ended")]


def test_a_new_local_provider_prints_without_its_master_key(tmp_path: Path) -> None:
    import base64
    from datetime import UTC, datetime

    from sealbox.kms.registry import ProviderContext

    ctx = ProviderContext(None, "vault-id", tmp_path / "k", {}, None, lambda: datetime.now(UTC))  # type: ignore[arg-type]
    new = LocalKind().create("local", {"method": "keyfile"}, ctx)
    assert not (tmp_path / "k").exists()  # kept only once the KEKs are wrapped
    assert new.keep is not None
    new.keep()
    stored = base64.b64decode((tmp_path / "k").read_text().strip())
    assert stored.hex() not in repr(new.provider) and "***" in repr(new.provider)
    assert str(stored) not in repr(new)
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600
    blob = new.provider.wrap(b"k" * 32, b"ctx")
    assert new.provider.unwrap(blob, b"ctx") == b"k" * 32
    with pytest.raises(InvalidInput, match="already exists"):
        LocalKind().create("local", {"method": "keyfile"}, ctx)
    with pytest.raises(InvalidInput, match="unknown option"):
        LocalKind().create("local", {"method": "keyfile", "pin": "1"}, ctx)


def test_init_is_the_first_event_of_the_chain_and_keyed(home: Path) -> None:
    with sqlite3.connect(home / "vault.db") as conn:
        first = conn.execute(
            "SELECT seq, operation, path, outcome, reason FROM sb_audit ORDER BY seq LIMIT 1"
        ).fetchone()
    assert first[:4] == (1, "init", "sys/vault", "allowed")
    assert "unlock by passphrase" in first[4] and PASSPHRASE not in first[4]
    vault = factory.open_vault(home=home, env=ENV)
    try:
        vault.open_keys()
        assert vault.audit.verify().findings == []
    finally:
        vault.close()


def test_a_server_loading_its_keys_at_start_leaves_an_event(home: Path) -> None:
    from sealbox.server.run import open_server_vault
    from sealbox.server.settings import ServerSettings

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEALBOX_HOME", str(home))
        mp.setenv("SEALBOX_PASSPHRASE", PASSPHRASE)
        open_server_vault(ServerSettings(), supervisor=True).close()
        open_server_vault(ServerSettings()).close()  # a worker: the supervisor recorded it
        mp.setenv("SEALBOX_PASSPHRASE", "not the passphrase")
        with pytest.raises(Exception, match="passphrase"):
            open_server_vault(ServerSettings(), supervisor=True)
    events = _events(home, "keys.load")
    assert events[0][0] == "allowed" and events[0][1].startswith(
        "server start on 127.0.0.1:8200, 2 worker processes (pid "
    )
    assert events[1:] == [("denied", "bad credentials")]


def test_init_names_its_unlock_method_by_string_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="unknown unlock method 'hsm'"):
        factory.init_vault(home=tmp_path / "a", method="hsm", env={})
    assert not (tmp_path / "a").exists()
    result = factory.init_vault(home=tmp_path / "b", method="keyfile", env={})
    assert result.method is UnlockMethod.KEYFILE and result.key_file is not None


def test_init_with_a_bad_audit_sink_writes_nothing_and_can_be_retried(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with pytest.raises(SealboxError):
        factory.init_vault(
            home=home,
            method=UnlockMethod.PASSPHRASE,
            passphrase=PASSPHRASE,
            env={"SEALBOX_AUDIT_SINKS": "no-such-sink:x"},
        )
    assert factory.load_config(home) is None
    factory.init_vault(home=home, method=UnlockMethod.PASSPHRASE, passphrase=PASSPHRASE, env={})
    assert _events(home, "init")[0][0] == "allowed"
