"""SessionStore contract: unlock sessions, and their expiry."""

from __future__ import annotations

from tests.unit.storage.contract import NOW

from sealbox.storage.interface import Storage
from sealbox.storage.rows import SessionRow


def test_sessions(store: Storage) -> None:
    store.put_session(SessionRow("s1", b"w", NOW, "2026-01-01T01:00:00+00:00"))
    store.put_session(SessionRow("s2", b"w", NOW, "2026-01-03T00:00:00+00:00"))
    assert store.get_session("s1") == SessionRow("s1", b"w", NOW, "2026-01-01T01:00:00+00:00")
    assert store.delete_sessions(expired_before="2026-01-02T00:00:00+00:00") == 1
    assert store.get_session("s1") is None
    assert store.delete_sessions() == 1
    assert store.get_session("s2") is None


def test_session_changes_run_their_audit_in_the_transaction(store: Storage) -> None:
    counted: list[int] = []
    store.put_session(SessionRow("s1", b"w", NOW, NOW), audit=lambda: counted.append(-1))
    assert store.delete_sessions(audit=counted.append) == 1
    assert counted == [-1, 1]
