"""The database chain: each kind of tampering is found at the right position."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from tests.unit.audit.conftest import OpenVault

from sealbox.audit.events import canonical
from sealbox.errors import IntegrityError
from sealbox.model import SecretRef, SecretValue
from sealbox.storage.rows import GENESIS

REF = SecretRef("payments", "dev", "DB_PASSWORD")


def _busy(open_vault: OpenVault) -> None:
    """Ten-odd keyed events."""
    vault = open_vault()
    for i in range(3):
        vault.set(REF, SecretValue(f"value-{i}"))
    for _ in range(3):
        vault.get(REF, reveal=True)
    vault.list_secrets("payments", "dev")
    vault.close()


def _db(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(home / "vault.db", isolation_level=None)


def _rows(conn: sqlite3.Connection) -> list[tuple[object, ...]]:
    return conn.execute("SELECT * FROM sb_audit ORDER BY id").fetchall()


def _rewrite(conn: sqlite3.Connection, rows: list[tuple[object, ...]]) -> None:
    """Store rows in this order (ids renumbered), as an attacker with SQL access could."""
    # Such an attacker can also drop the index that stops a chain from forking.
    conn.execute("DROP INDEX IF EXISTS sb_audit_node_seq")
    conn.execute("DELETE FROM sb_audit")
    marks = ", ".join("?" for _ in rows[0])
    for i, row in enumerate(rows, start=1):
        conn.execute(f"INSERT INTO sb_audit VALUES ({marks})", (i, *row[1:]))


def _findings(open_vault: OpenVault) -> list[str]:
    return open_vault().audit.verify().findings


def _seq_index(conn: sqlite3.Connection) -> int:
    names = [d[1] for d in conn.execute("PRAGMA table_info(sb_audit)").fetchall()]
    return names.index("seq")


def test_clean_chain_verifies(make_vault: OpenVault) -> None:
    _busy(make_vault)
    result = make_vault().audit.verify()
    assert result.findings == []
    assert "db chain 'local'" in result.summary[0]


def test_modified_event_is_found_at_its_row(make_vault: OpenVault, home: Path) -> None:
    _busy(make_vault)
    with _db(home) as conn:
        conn.execute(
            "UPDATE sb_audit SET event = replace(event, '\"reveal\"', '\"list\"'),"
            " operation = 'list' WHERE seq = 6"
        )
    [finding] = _findings(make_vault)
    assert "(seq 6)" in finding and "event seq 6 modified" in finding


def test_a_column_edited_alone_is_found(make_vault: OpenVault, home: Path) -> None:
    _busy(make_vault)
    with _db(home) as conn:
        conn.execute("UPDATE sb_audit SET actor = 'someone-else' WHERE seq = 4")
    [finding] = _findings(make_vault)
    assert "(seq 4)" in finding and "column actor" in finding


def test_deleted_event_is_found(make_vault: OpenVault, home: Path) -> None:
    _busy(make_vault)
    with _db(home) as conn:
        conn.execute("DELETE FROM sb_audit WHERE seq = 6")
    [finding] = _findings(make_vault)
    assert "(seq 7)" in finding and "seq 6 missing" in finding


def test_inserted_event_is_found(make_vault: OpenVault, home: Path) -> None:
    _busy(make_vault)
    with _db(home) as conn:
        rows = _rows(conn)
        si = _seq_index(conn)
        forged = list(rows[3])  # a copy of seq 4, claiming another path
        forged[5] = "payments/dev/OTHER"
        event = json.loads(str(forged[si + 1]))
        event["path"] = "payments/dev/OTHER"
        forged[si + 1] = canonical(event).decode()
        _rewrite(conn, [*rows[:3], tuple(forged), *rows[3:]])
    [finding] = _findings(make_vault)
    assert finding.startswith("db chain 'local': row 4 (seq 4): event inserted")


def test_swapped_events_are_found(make_vault: OpenVault, home: Path) -> None:
    _busy(make_vault)
    with _db(home) as conn:
        rows = _rows(conn)
        _rewrite(conn, [*rows[:4], rows[5], rows[4], *rows[6:]])
    [finding] = _findings(make_vault)
    assert "row 5 (seq 6): events reordered" in finding


def test_truncated_tail_is_found_by_the_head(make_vault: OpenVault, home: Path) -> None:
    _busy(make_vault)
    make_vault().audit.checkpoint()  # the head row moves with checkpoints
    with _db(home) as conn:
        conn.execute("DELETE FROM sb_audit WHERE seq >= 8")
    findings = _findings(make_vault)
    assert any("tail truncated" in f and "ends at seq 7" in f for f in findings)


def test_truncated_tail_is_found_by_a_checkpoint(make_vault: OpenVault, home: Path) -> None:
    _busy(make_vault)
    make_vault().audit.checkpoint()
    with _db(home) as conn:
        # A careful attacker also moves the head back.
        conn.execute("DELETE FROM sb_audit WHERE seq >= 8")
        h = conn.execute("SELECT hash FROM sb_audit WHERE seq = 7").fetchone()[0]
        conn.execute("UPDATE sb_audit_heads SET seq = 7, hash = ?", (h,))
    findings = _findings(make_vault)
    assert any("tail truncated" in f and "checkpoint signed seq" in f for f in findings)


def test_edited_checkpoint_is_found(make_vault: OpenVault, home: Path) -> None:
    _busy(make_vault)
    make_vault().audit.checkpoint()
    with _db(home) as conn:
        conn.execute("UPDATE sb_audit_checkpoints SET seq = seq + 1")
    findings = _findings(make_vault)
    assert any("checkpoint of seq" in f and "bad signature" in f for f in findings)


def test_chain_rewritten_without_the_key_is_found(make_vault: OpenVault, home: Path) -> None:
    """Rewriting an event and re-hashing everything after it needs the chain key."""
    _busy(make_vault)
    with _db(home) as conn:
        si = _seq_index(conn)
        rows = _rows(conn)
        prev = GENESIS
        new_rows = []
        from sealbox.audit.events import link_hash

        for row in rows:
            event = json.loads(str(row[si + 1]))
            if event["seq"] == 3:  # seq 1 is the vault's init
                event["identity"]["name"] = "mallory"
            event["prev"] = prev
            event["link"] = "sha256"
            new_hash = link_hash(None, event)
            r = list(row)
            r[2] = event["identity"]["name"]
            r[si + 1 : si + 5] = [canonical(event).decode(), prev, new_hash, "sha256"]
            prev = new_hash
            new_rows.append(tuple(r))
        _rewrite(conn, new_rows)
        conn.execute("UPDATE sb_audit_heads SET hash = ?", (prev,))
    [finding] = _findings(make_vault)
    assert "row 3 (seq 3): event seq 3 modified (unkeyed link" in finding  # the first write


def test_missing_audit_key_is_a_clear_error(make_vault: OpenVault, home: Path) -> None:
    _busy(make_vault)
    with _db(home) as conn:
        conn.execute("DELETE FROM sb_settings WHERE key = 'audit_key'")
    with pytest.raises(IntegrityError, match="audit key is missing"):
        make_vault().get(REF)


def test_wrong_audit_key_is_a_clear_error(
    make_vault: OpenVault, home: Path, tmp_path: Path
) -> None:
    _busy(make_vault)
    with _db(home) as conn:
        conn.execute(
            "UPDATE sb_settings SET value = (SELECT value FROM sb_settings"
            " WHERE key = 'audit_signing_key') WHERE key = 'audit_key'"
        )
    with pytest.raises(IntegrityError, match="audit key does not open"):
        make_vault().get(REF)


def test_locked_process_events_are_unkeyed_then_anchored(make_vault: OpenVault) -> None:
    vault = make_vault()
    vault.list_secrets("payments", "dev")  # never unlocks: a SHA-256 link
    vault.close()
    result = make_vault().audit.verify()  # unlocks; records a keyed event afterwards
    assert result.findings == []
    assert any("follow the last keyed event" in n for n in result.notices)
    assert make_vault().audit.verify().findings == []


def test_a_busy_database_keeps_deferred_events(make_vault: OpenVault, home: Path) -> None:
    """Server mode: a flush that must not wait leaves every event pending, in order, and a
    later flush stores them on one unbroken chain."""
    from sealbox.errors import StorageBusy
    from sealbox.model import SecretRef, SecretValue

    vault = make_vault()
    vault.set(SecretRef("payments", "dev", "A"), SecretValue("x"))
    vault.serve(spool=False)  # group commit
    commit = vault.audit_commit
    for _ in range(3):
        vault.get(SecretRef("payments", "dev", "A"))
    conn = _db(home)
    before = len(_rows(conn))
    conn.execute("BEGIN IMMEDIATE")  # another process writes
    with pytest.raises(StorageBusy):
        commit.commit(wait=False)
    assert commit.pending == 3
    vault.get(SecretRef("payments", "dev", "A"))
    conn.execute("COMMIT")
    commit.commit(wait=False)
    assert commit.pending == 0
    rows = _rows(conn)
    assert len(rows) == before + 4
    assert vault.audit.verify().findings == []


def test_a_chain_from_before_signed_heads_gets_one_at_its_next_keyed_event(
    make_vault: OpenVault, home: Path
) -> None:
    """An upgraded vault: a chain of format-1 events with no signed head is a notice, not
    tampering, until its next keyed event signs the head."""
    _busy(make_vault)
    with _db(home) as conn:
        conn.execute("DELETE FROM sb_audit_heads")
        conn.execute("UPDATE sb_audit SET event = replace(event, '\"format\":2', '\"format\":1')")
    # The rewritten records no longer match their MACs: re-chain them as sealbox 6 would
    # have written them (the test holds the key; an attacker does not).
    vault = make_vault()
    vault.open_keys()
    keys = vault._audit.require_keys()
    vault.close()
    with _db(home) as conn:
        si = _seq_index(conn)
        prev = GENESIS
        from sealbox.audit.events import link_hash

        for row in _rows(conn):
            event = json.loads(str(row[si + 1]))
            event["prev"] = prev
            prev = link_hash(keys.chain_key, event)
            conn.execute(
                "UPDATE sb_audit SET event = ?, prev = ?, hash = ? WHERE id = ?",
                (canonical(event).decode(), event["prev"], prev, row[0]),
            )
    result = make_vault().audit.verify()
    assert result.findings == []
    assert any("no signed head yet" in n for n in result.notices)
    again = make_vault().audit.verify()  # the first verify's own event signed the head
    assert again.findings == []
    assert not any("no signed head yet" in n for n in again.notices)


def test_lone_events_sign_the_head_at_most_every_20_ms_and_close_covers_the_rest(
    make_vault: OpenVault, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An embedded loop of reads commits each event alone; it must not pay a signature
    each, and the head still reaches the last event once the vault is closed."""
    from sealbox.audit import events, recorder

    _busy(make_vault)
    vault = make_vault()
    vault.get(REF)  # the first lone event of a process moves the head
    monkeypatch.setattr(recorder, "HEAD_EVERY", 3600.0)  # nothing else falls due
    signed: list[bytes] = []
    real = events.head_tag
    monkeypatch.setattr(events, "head_tag", lambda keys, m: signed.append(m) or real(keys, m))
    for _ in range(20):
        vault.get(REF)
    assert signed == []
    vault.close()
    (message,) = signed
    with _db(home) as conn:
        last = conn.execute("SELECT MAX(seq) FROM sb_audit").fetchone()[0]
        assert conn.execute("SELECT seq FROM sb_audit_heads").fetchall() == [(last,)]
    assert f'"seq":{last}'.encode() in message
    assert make_vault().audit.verify().findings == []
