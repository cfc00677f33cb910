"""The core Vault: sessions, key sources, integrity, audit hygiene."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import keyring
import keyring.backend
import pytest
from tests.unit.storage.contract import undo_after

from sealbox import factory
from sealbox.errors import (
    AuthenticationFailed,
    Conflict,
    IntegrityError,
    InvalidInput,
    KeyProviderError,
    NotFound,
    Sealed,
)
from sealbox.kms.master import UnlockMethod
from sealbox.model import SecretRef, SecretValue
from sealbox.storage.rows import SCHEMA_VERSION

PASS = "correct horse battery staple"
CANARY = "canary-value-7f3a9c1e"
REF = SecretRef("payments", "dev", "DB_URL")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class MemoryKeyring(keyring.backend.KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], str] = {}

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def delete_password(self, service: str, username: str) -> None:
        self.items.pop((service, username), None)


def passphrase_vault(home: Path) -> None:
    factory.init_vault(home=home, method=UnlockMethod.PASSPHRASE, passphrase=PASS)


def test_passphrase_vault_round_trip(home: Path) -> None:
    passphrase_vault(home)
    vault = factory.open_vault(home=home, env={"SEALBOX_PASSPHRASE": PASS})
    vault.create_project("payments")
    assert vault.set(REF, SecretValue(CANARY)) == 1
    assert vault.get(REF).value.reveal() == CANARY


def test_wrong_passphrase_changes_nothing(home: Path) -> None:
    passphrase_vault(home)
    factory.open_vault(home=home, env={"SEALBOX_PASSPHRASE": PASS}).create_project("payments")
    vault = factory.open_vault(home=home, env={"SEALBOX_PASSPHRASE": "wrong"})
    with pytest.raises(AuthenticationFailed):
        vault.set(REF, SecretValue("x"))
    with pytest.raises(NotFound):
        factory.open_vault(home=home, env={"SEALBOX_PASSPHRASE": PASS}).get(REF)


def test_locked_vault_without_prompt_is_sealed(home: Path) -> None:
    passphrase_vault(home)
    vault = factory.open_vault(home=home, env={})
    with pytest.raises(Sealed) as info:
        vault.set(REF, SecretValue("x"))
    assert "unlock" in (info.value.hint or "")


def test_listing_works_locked(home: Path) -> None:
    passphrase_vault(home)
    factory.open_vault(home=home, env={"SEALBOX_PASSPHRASE": PASS}).create_project("payments")
    assert factory.open_vault(home=home, env={}).list_projects() == ["payments"]


def test_sessions_expire_and_lock(home: Path) -> None:
    passphrase_vault(home)
    clock = Clock()
    token, _ = factory.unlock(
        home=home, env={"SEALBOX_PASSPHRASE": PASS}, ttl=timedelta(hours=1), clock=clock
    )
    env = {"SEALBOX_SESSION": token}
    factory.open_vault(home=home, env=env, clock=clock).create_project("payments")
    factory.open_vault(home=home, env=env, clock=clock).set(REF, SecretValue("v"))
    clock.now += timedelta(hours=2)
    with pytest.raises(Sealed, match="expired"):
        factory.open_vault(home=home, env=env, clock=clock).get(REF)
    clock.now -= timedelta(hours=2)
    assert factory.lock(home=home) == 1
    with pytest.raises(Sealed, match="ended"):
        factory.open_vault(home=home, env=env, clock=clock).get(REF)


def test_tampered_session_token_is_rejected(home: Path) -> None:
    passphrase_vault(home)
    token, _ = factory.unlock(home=home, env={"SEALBOX_PASSPHRASE": PASS})
    body = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for bad in (body, "garbage", token + "x"):
        with pytest.raises((AuthenticationFailed, Sealed)):
            factory.open_vault(home=home, env={"SEALBOX_SESSION": bad}).set(REF, SecretValue("x"))


def test_session_expiry_cannot_be_extended_in_storage(home: Path) -> None:
    passphrase_vault(home)
    clock = Clock()
    token, _ = factory.unlock(
        home=home, env={"SEALBOX_PASSPHRASE": PASS}, ttl=timedelta(minutes=5), clock=clock
    )
    vault = factory.open_vault(home=home, env={"SEALBOX_SESSION": token}, clock=clock)
    vault.create_project("payments")
    vault.set(REF, SecretValue("v"))
    clock.now += timedelta(minutes=10)
    with sqlite3.connect(home / "vault.db") as conn:
        conn.execute("UPDATE sb_sessions SET expires_at = '2099-01-01T00:00:00+00:00'")
    with pytest.raises(AuthenticationFailed):
        factory.open_vault(home=home, env={"SEALBOX_SESSION": token}, clock=clock).get(REF)


def test_session_record_holds_no_master_key_in_the_clear(home: Path) -> None:
    passphrase_vault(home)
    factory.unlock(home=home, env={"SEALBOX_PASSPHRASE": PASS})
    from sealbox.crypto import kdf

    with sqlite3.connect(home / "vault.db") as conn:
        raw = conn.execute("SELECT config FROM sb_key_providers WHERE name='local'").fetchone()[0]
        stored = conn.execute("SELECT wrapped_master FROM sb_sessions").fetchone()[0]
    import json

    master = kdf.derive_from_passphrase(PASS, kdf.Argon2Params.from_dict(json.loads(raw)["kdf"]))
    assert master not in stored
    assert master not in (home / "vault.db").read_bytes()


def test_passphrase_change_rewraps_only_the_kek(home: Path) -> None:
    passphrase_vault(home)
    vault = factory.open_vault(home=home, env={"SEALBOX_PASSPHRASE": PASS})
    vault.create_project("payments")
    vault.set(REF, SecretValue(CANARY))
    with sqlite3.connect(home / "vault.db") as conn:
        before = conn.execute("SELECT ciphertext, wrapped_key FROM sb_versions").fetchall()
    factory.change_passphrase(home=home, old=PASS, new="new passphrase!")
    with sqlite3.connect(home / "vault.db") as conn:
        assert conn.execute("SELECT ciphertext, wrapped_key FROM sb_versions").fetchall() == before
    with pytest.raises(AuthenticationFailed):
        factory.open_vault(home=home, env={"SEALBOX_PASSPHRASE": PASS}).get(REF)
    got = factory.open_vault(home=home, env={"SEALBOX_PASSPHRASE": "new passphrase!"}).get(REF)
    assert got.value.reveal() == CANARY
    with pytest.raises(AuthenticationFailed):
        factory.change_passphrase(home=home, old="wrong", new="x")


def test_key_file_vault_refuses_loose_permissions(home: Path, tmp_path: Path) -> None:
    key = tmp_path / "k.key"
    factory.init_vault(home=home, method=UnlockMethod.KEYFILE, key_file=key)
    assert key.stat().st_mode & 0o777 == 0o600
    factory.open_vault(home=home).create_project("payments")
    key.chmod(0o644)
    with pytest.raises(KeyProviderError) as info:
        factory.open_vault(home=home).set(REF, SecretValue("x"))
    assert "chmod 600" in info.value.diagnostics()
    key.chmod(0o600)
    key.write_text("not a key\n")
    with pytest.raises(KeyProviderError):
        factory.open_vault(home=home).set(REF, SecretValue("x"))


def test_keyring_vault(home: Path) -> None:
    ring = MemoryKeyring()
    previous = keyring.get_keyring()
    keyring.set_keyring(ring)
    try:
        result = factory.init_vault(home=home, method=UnlockMethod.KEYRING)
        assert ("sealbox", result.vault_id) in ring.items
        vault = factory.open_vault(home=home)
        vault.create_project("payments")
        vault.set(REF, SecretValue("v"))
        assert factory.open_vault(home=home).get(REF).value.reveal() == "v"
        ring.items.clear()
        with pytest.raises(KeyProviderError, match="keyring"):
            factory.open_vault(home=home).get(REF)
    finally:
        keyring.set_keyring(previous)


def keyfile(home: Path, tmp_path: Path) -> factory.Vault:
    factory.init_vault(home=home, method=UnlockMethod.KEYFILE, key_file=tmp_path / "k.key")
    vault = factory.open_vault(home=home)
    vault.create_project("payments")
    return vault


def test_moved_ciphertext_fails_with_the_secret_named(home: Path, tmp_path: Path) -> None:
    vault = keyfile(home, tmp_path)
    vault.set(REF, SecretValue(CANARY))
    other = SecretRef("payments", "dev", "OTHER")
    vault.set(other, SecretValue("other-value"))
    with sqlite3.connect(home / "vault.db") as conn:
        rows = conn.execute(
            "SELECT secret_id, ciphertext, wrapped_key FROM sb_versions ORDER BY secret_id"
        ).fetchall()
        conn.execute(
            "UPDATE sb_versions SET ciphertext = ?, wrapped_key = ? WHERE secret_id = ?",
            (rows[0][1], rows[0][2], rows[1][0]),
        )
    with pytest.raises(IntegrityError) as info:
        factory.open_vault(home=home).get(other)
    assert "payments/dev/OTHER" in str(info.value)
    assert CANARY not in info.value.diagnostics()
    assert any("OTHER" in p for p in factory.open_vault(home=home).inventory.verify())


def test_version_rollback_and_cas(home: Path, tmp_path: Path) -> None:
    vault = keyfile(home, tmp_path)
    vault.set(REF, SecretValue("one"))
    vault.set(REF, SecretValue("two"))
    assert vault.rollback(REF, 1) == 3
    assert vault.get(REF).value.reveal() == "one"
    assert [v.rollback_of for v in vault.history(REF)] == [None, None, 1]
    with pytest.raises(Conflict):
        vault.set(REF, SecretValue("x"), if_version=2)
    with pytest.raises(InvalidInput):
        vault.get(REF, version=0)


def test_no_plaintext_at_rest_or_in_audit(home: Path, tmp_path: Path) -> None:
    vault = keyfile(home, tmp_path)
    vault.set(REF, SecretValue(CANARY))
    vault.get(REF, reveal=True)
    vault.resolve("payments", "dev")
    vault.update_meta(REF, owner="team-payments", classification="critical")
    vault.close()
    for path in home.iterdir():
        assert CANARY.encode() not in path.read_bytes(), path
    audit = factory.open_vault(home=home).audit.tail()
    ops = [e["operation"] for e in audit]
    assert {"write", "reveal", "run", "metadata.write"} <= set(ops)
    assert CANARY not in repr(audit)


def test_failed_read_is_audited(home: Path, tmp_path: Path) -> None:
    vault = keyfile(home, tmp_path)
    with pytest.raises(NotFound):
        vault.get(SecretRef("payments", "dev", "MISSING"))
    last = vault.audit.tail(1)[0]
    assert (last["operation"], last["outcome"], last["reason"]) == ("read", "error", "not_found")


def test_metadata_fields(home: Path, tmp_path: Path) -> None:
    vault = keyfile(home, tmp_path)
    vault.set(REF, SecretValue("v"))
    meta = vault.update_meta(
        REF,
        owner="team-payments",
        purpose="orders db",
        classification="critical",
        rotate_every_days=90,
        expires=datetime(2027, 1, 1, tzinfo=UTC),
        depends_on=("checkout-api",),
        contact="oncall@example.com",
        tags=("pci",),
    )
    assert vault.info(REF).meta == meta
    with pytest.raises(InvalidInput):
        vault.update_meta(REF, classification="secret")
    with pytest.raises(InvalidInput):
        vault.update_meta(REF, colour="red")


def test_value_size_limit(home: Path, tmp_path: Path) -> None:
    vault = keyfile(home, tmp_path)
    with pytest.raises(InvalidInput):
        vault.set(REF, SecretValue(b"x" * (1024 * 1024 + 1)))


def test_find_values(home: Path, tmp_path: Path) -> None:
    vault = keyfile(home, tmp_path)
    vault.set(REF, SecretValue(CANARY))
    matches = vault.inventory.find_values(["nope", CANARY, ""])
    assert [(m.candidate, m.path, m.version) for m in matches] == [(1, REF.path, 1)]


def test_schema_migration_from_v1(home: Path, tmp_path: Path) -> None:
    vault = keyfile(home, tmp_path)
    vault.set(REF, SecretValue("kept"))
    vault.close()
    with sqlite3.connect(home / "vault.db") as conn:
        undo_after(conn, 8)  # schema 9 and later
        for table in ("sb_tokens", "sb_secret_ids", "sb_policies", "sb_identities", "sb_changes"):
            conn.execute(f"DROP TABLE {table}")
        _downgrade_audit_to_v1(conn)
        conn.execute("ALTER TABLE sb_secrets DROP COLUMN last_version")  # schema 8's
        conn.execute("UPDATE sb_settings SET value = '1' WHERE key = 'schema_version'")
    reopened = factory.open_vault(home=home)
    assert reopened.get(REF).value.reveal() == "kept"
    assert reopened.accounts.list_identities() == []
    with sqlite3.connect(home / "vault.db") as conn:
        version = conn.execute(
            "SELECT value FROM sb_settings WHERE key='schema_version'"
        ).fetchone()
    assert version == (str(SCHEMA_VERSION),)
    # The old events stay, unchained; new ones are chained under a lazily created key.
    result = reopened.audit.verify()
    assert result.findings == []
    assert any("before the chain existed" in n for n in result.notices)


def _downgrade_audit_to_v1(conn: sqlite3.Connection) -> None:
    """Make a schema-3 vault's audit tables look like schema 1 (keeping the old rows)."""
    conn.execute(
        "CREATE TABLE old_audit AS SELECT id, at, actor, source, operation, path,"
        " version, outcome, reason FROM sb_audit"
    )
    conn.execute("DROP TABLE sb_audit")
    conn.execute("DROP TABLE sb_audit_heads")
    conn.execute("DROP TABLE sb_audit_checkpoints")
    conn.execute(
        "CREATE TABLE sb_audit (id INTEGER PRIMARY KEY, at TEXT NOT NULL, actor TEXT"
        " NOT NULL, source TEXT NOT NULL, operation TEXT NOT NULL, path TEXT NOT NULL,"
        " version INTEGER, outcome TEXT NOT NULL, reason TEXT NOT NULL)"
    )
    conn.execute("INSERT INTO sb_audit SELECT * FROM old_audit")
    conn.execute("DROP TABLE old_audit")
    conn.execute("DELETE FROM sb_settings WHERE key LIKE 'audit_%'")


def test_newer_schema_is_refused(home: Path, tmp_path: Path) -> None:
    keyfile(home, tmp_path).close()
    with sqlite3.connect(home / "vault.db") as conn:
        conn.execute("UPDATE sb_settings SET value = '99' WHERE key = 'schema_version'")
    from sealbox.errors import NotInitialised

    with pytest.raises(NotInitialised, match="newer"):
        factory.open_vault(home=home).list_projects()
