"""KeyStore contract: the KEKs, and replacing the master key they are wrapped under."""

from __future__ import annotations

from tests.unit.storage.contract import KEK, NOW

from sealbox.storage.interface import Storage
from sealbox.storage.rows import KekRecord, SessionRow


def test_keks_as_initialised(store: Storage) -> None:
    assert store.list_keks() == [KEK]


def test_replace_master_ends_sessions(store: Storage) -> None:
    store.put_session(SessionRow("s1", b"w", NOW, "2027-01-01T00:00:00+00:00"))
    store.replace_master([KekRecord("kek1", b"new", NOW, True)], {"kdf": "x"})
    assert store.list_keks()[0].wrapped == b"new"
    assert store.get_setting("kdf") == "x"
    assert store.get_session("s1") is None
