"""SettingsStore contract: vault settings, and the one written by whoever comes first."""

from __future__ import annotations

from sealbox.storage.interface import Storage


def test_ensure_setting_keeps_the_first_value(store: Storage) -> None:
    assert store.get_setting("audit_key") is None
    assert store.ensure_setting("audit_key", "first") == "first"
    assert store.ensure_setting("audit_key", "second") == "first"
    assert store.settings()["audit_key"] == "first"
    assert store.settings()["vault_id"] == "vault-1"
