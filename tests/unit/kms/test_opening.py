"""Opening a vault's KEKs through several key providers (kms/opening.py RingOpener):
order, fallback past an unreachable provider, one error naming each, and a KEK made by
another process opened on first sight."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.unit.kms import fake_kind

from sealbox import factory
from sealbox.errors import KeyProviderError
from sealbox.kms import registry
from sealbox.model import SecretRef, SecretValue

REF = SecretRef("app", "dev", "DB")


@pytest.fixture(autouse=True)
def fake_family(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(registry.BUILTIN, "fake", "tests.unit.kms.fake_kind:FakeKind")
    fake_kind.KEYS.clear()
    fake_kind.DOWN.clear()
    fake_kind.CALLS.clear()
    yield


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    factory.init_vault(home=home, method="keyfile", key_file=tmp_path / "k", env={})
    vault = factory.open_vault(home=home, env={})
    try:
        vault.create_project("app")
        vault.set(REF, SecretValue("v1"))
        vault.kms.add("kms-a", "fake", {})
        vault.kms.add("kms-b", "fake", {})
    finally:
        vault.close()
    return home


def _read(home: Path) -> str:
    vault = factory.open_vault(home=home, env={})
    try:
        return vault.get(REF, reveal=True).value.reveal()
    finally:
        vault.close()


def test_the_first_unattended_provider_opens_the_vault(home: Path, tmp_path: Path) -> None:
    (tmp_path / "k").unlink()  # the local key file is gone: the KMS opens the vault
    fake_kind.CALLS.clear()
    assert _read(home) == "v1"
    assert set(fake_kind.CALLS) == {"kms-a"}  # the second was not needed


def test_an_unreachable_provider_is_passed_over(home: Path, tmp_path: Path) -> None:
    (tmp_path / "k").unlink()
    fake_kind.DOWN.add("kms-a")
    assert _read(home) == "v1"


def test_when_none_opens_the_error_names_each(home: Path, tmp_path: Path) -> None:
    (tmp_path / "k").unlink()
    fake_kind.DOWN.update({"kms-a", "kms-b"})
    with pytest.raises(KeyProviderError) as err:
        _read(home)
    text = err.value.message
    assert "kms-a: fake KMS kms-a is unreachable" in text
    assert "kms-b:" in text and "local:" in text


def test_a_kek_rotated_in_elsewhere_is_opened_on_first_sight(home: Path) -> None:
    from sealbox.kms.local import kek_context, new_kek
    from sealbox.storage.rows import KekRecord, KekWrapping

    reader = factory.open_vault(home=home, env={})
    writer = factory.open_vault(home=home, env={})
    try:
        assert reader.get(REF, reveal=True).value.reveal() == "v1"  # the reader's ring is open
        # Another process makes a KEK, wrapped by every provider, and writes under it.
        ring = writer._state.key_provider()
        opener = writer._state.unlocker
        assert opener is not None
        kek_id, kek = new_kek()
        now = "2026-12-01T00:00:00+00:00"
        wrappings = []
        for row in writer._storage.list_key_providers():
            provider = opener.open_provider(row)  # type: ignore[attr-defined]
            wrapped = provider.wrap(kek, kek_context(writer.vault_id, kek_id))
            wrappings.append(KekWrapping(kek_id, row.name, wrapped, provider.key_id(), now))
        writer._storage.add_kek(KekRecord(kek_id, now, True), wrappings)
        ring.add(kek_id, kek, active=True)  # type: ignore[attr-defined]
        writer.set(REF, SecretValue("v2"))
        assert writer.info(REF).current_version == 2
        # The reader never saw that KEK: it opens it through the provider it opened with.
        assert reader.get(REF, reveal=True).value.reveal() == "v2"
    finally:
        reader.close()
        writer.close()


def test_a_tampered_kek_wrapping_is_named_and_another_provider_still_opens(
    home: Path, tmp_path: Path
) -> None:
    import sqlite3

    from sealbox.errors import AuthenticationFailed, IntegrityError

    with sqlite3.connect(home / "vault.db") as conn:
        (blob,) = conn.execute(
            "SELECT wrapped FROM sb_kek_wrappings WHERE provider = 'local'"
        ).fetchone()
        flipped = bytes([blob[0] ^ 1]) + bytes(blob[1:])
        conn.execute("UPDATE sb_kek_wrappings SET wrapped = ? WHERE provider = 'local'", (flipped,))
    # The KMS providers still open the vault, and status names the altered wrapping.
    assert _read(home) == "v1"
    vault = factory.open_vault(home=home, env={})
    try:
        found = vault.kms.status()
    finally:
        vault.close()
    local = next(p for p in found.providers if p.name == "local")
    assert local.reachable is False or local.opens == ()
    assert any("local" in p for p in found.problems)
    # With the KMS providers gone too, the error says what happened.
    fake_kind.DOWN.update({"kms-a", "kms-b"})
    with pytest.raises((IntegrityError, KeyProviderError, AuthenticationFailed)) as err:
        _read(home)
    assert "altered" in err.value.message
