"""Sinks: JSONL chain across rollover and crashes, fail closed, stream and syslog."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.unit.audit.conftest import OpenVault

from sealbox.audit.sinks import build_sinks
from sealbox.audit.sinks.jsonl import rotated_files
from sealbox.errors import AuditUnavailable, InvalidInput
from sealbox.model import SecretRef, SecretValue

REF = SecretRef("payments", "dev", "API_KEY")


def _sinks(monkeypatch: pytest.MonkeyPatch, *specs: str) -> None:
    monkeypatch.setenv("SEALBOX_AUDIT_SINKS", ",".join(specs))


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_jsonl_sink_chains_and_verifies(
    make_vault: OpenVault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "audit" / "audit.jsonl"
    _sinks(monkeypatch, "db", f"file:{log}")
    vault = make_vault()
    vault.set(REF, SecretValue("v1"))
    vault.get(REF)
    records = _lines(log)
    assert [r["seq"] for r in records] == [1, 2]
    assert records[1]["prev"] == records[0]["hash"]
    assert records[1]["versions"][0]["value_hmac"] == records[0]["versions"][0]["value_hmac"]
    assert oct(log.stat().st_mode & 0o777) == "0o600"
    result = make_vault().audit.verify()
    assert result.findings == [], result


def test_jsonl_modified_line_is_found(
    make_vault: OpenVault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "audit.jsonl"
    _sinks(monkeypatch, "db", f"file:{log}")
    vault = make_vault()
    for i in range(4):
        vault.set(REF, SecretValue(f"v{i}"))
    log.write_text(log.read_text().replace('"version":3', '"version":9', 1))
    findings = make_vault().audit.verify().findings
    assert findings and "audit.jsonl line 3: event seq 3 modified" in findings[0]


def test_jsonl_cut_line_is_reported_and_the_chain_continues(
    make_vault: OpenVault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "audit.jsonl"
    _sinks(monkeypatch, "db", f"file:{log}")
    vault = make_vault()
    vault.set(REF, SecretValue("v1"))
    vault.set(REF, SecretValue("v2"))
    data = log.read_bytes()
    log.write_bytes(data[: len(data) - 40])  # a crash in the middle of the second line
    # The next start links to the last complete record.
    make_vault().get(REF)
    raw = log.read_text().splitlines()
    assert len(raw) == 3 and json.loads(raw[2])["prev"] == json.loads(raw[0])["hash"]
    result = make_vault().audit.verify()
    assert result.findings == []
    assert any("audit.jsonl line 2: a line cut short" in n for n in result.notices)


def test_jsonl_rollover_keeps_the_chain(
    make_vault: OpenVault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    log = tmp_path / "audit.jsonl"
    with (home / "config.toml").open("a") as fh:
        fh.write("\n[audit]\nfile_max_bytes = 2048\n")
    _sinks(monkeypatch, "db", f"file:{log}")
    vault = make_vault()
    for i in range(12):
        vault.set(REF, SecretValue(f"v{i}"))
    old = rotated_files(log)
    assert len(old) >= 2
    first_of_active = _lines(log)[0]
    assert first_of_active["prev"] == _lines(old[-1])[-1]["hash"]
    assert make_vault().audit.verify().findings == []
    # Removing a middle file breaks the chain where it was.
    old[1].unlink()
    findings = make_vault().audit.verify().findings
    assert findings and "event deleted" in findings[0]


def test_jsonl_checkpoint_and_truncation(
    make_vault: OpenVault, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "audit.jsonl"
    _sinks(monkeypatch, "db", f"file:{log}")
    vault = make_vault()
    for i in range(3):
        vault.set(REF, SecretValue(f"v{i}"))
    vault.audit.checkpoint()
    assert _lines(log)[-1]["kind"] == "checkpoint"
    lines = log.read_text().splitlines()
    log.write_text("\n".join(lines[:2] + lines[-1:]) + "\n")  # drop seq 3, keep checkpoint
    findings = make_vault(env={"SEALBOX_AUDIT_SINKS": "db"}).audit.verify([str(log)]).findings
    assert any("tail truncated" in f and f"file {log}" in f for f in findings)


def test_fail_closed_on_a_full_disk(make_vault: OpenVault, monkeypatch: pytest.MonkeyPatch) -> None:
    make_vault().set(REF, SecretValue("the value"))
    _sinks(monkeypatch, "file:/dev/full")
    with pytest.raises(AuditUnavailable, match="read of payments/dev/API_KEY was refused"):
        make_vault().get(REF)
    with pytest.raises(AuditUnavailable):
        make_vault().resolve("payments", "dev")


def test_a_write_whose_event_no_sink_accepts_is_not_committed(
    make_vault: OpenVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_vault().set(REF, SecretValue("v1"))
    _sinks(monkeypatch, "file:/dev/full")
    with pytest.raises(AuditUnavailable, match="write of payments/dev/API_KEY was refused"):
        make_vault().set(REF, SecretValue("v2"))
    with pytest.raises(AuditUnavailable):
        make_vault().rollback(REF, 1)
    monkeypatch.delenv("SEALBOX_AUDIT_SINKS")
    vault = make_vault()
    assert [v.version for v in vault.history(REF)] == [1]  # nothing was committed
    assert vault.get(REF).value.reveal() == "v1"
    assert vault.set(REF, SecretValue("v2")) == 2  # the chain goes on cleanly
    assert not vault.audit.verify([]).findings


def test_a_delete_or_metadata_change_whose_event_no_sink_accepts_changes_nothing(
    make_vault: OpenVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As for writes: the change and its event commit together (the crash suite found a
    delete and a metadata change stored without their events, when the event failed)."""
    other = SecretRef("payments", "dev", "GONE")
    setup = make_vault()
    setup.set(REF, SecretValue("v1"))
    setup.set(other, SecretValue("v1"))
    setup.delete(other)
    _sinks(monkeypatch, "file:/dev/full")
    refused = make_vault()
    with pytest.raises(AuditUnavailable, match="delete of payments/dev/API_KEY was refused"):
        refused.delete(REF)
    with pytest.raises(AuditUnavailable, match=r"metadata\.write"):
        refused.update_meta(REF, owner="someone")
    with pytest.raises(AuditUnavailable, match="undelete"):
        refused.undelete(other)
    with pytest.raises(AuditUnavailable, match="purge"):
        refused.purge(other)
    monkeypatch.delenv("SEALBOX_AUDIT_SINKS")
    vault = make_vault()
    info = vault.info(REF)
    assert info.deleted_at is None and info.meta.owner is None
    assert vault.info(other).deleted_at is not None  # neither undeleted nor purged
    assert [v.version for v in vault.history(other)] == [1]
    vault.delete(REF)  # and the chain goes on cleanly
    assert not vault.audit.verify([]).findings


def test_one_sink_accepting_is_enough(
    make_vault: OpenVault, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    make_vault().set(REF, SecretValue("the value"))
    _sinks(monkeypatch, "file:/dev/full", "db")
    with caplog.at_level(logging.WARNING, "sealbox.audit"):
        assert make_vault().get(REF).value.reveal() == "the value"
    assert "refused an event" in caplog.text


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[None]:
    path.write_text("")
    path.chmod(0o444)
    immutable = False
    if os.geteuid() == 0:  # root writes through 0444: make the file immutable instead
        immutable = subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0
        if not immutable:
            pytest.skip("running as root without chattr: cannot make a read-only file")
    try:
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=False)


def test_fail_closed_on_a_read_only_file(
    make_vault: OpenVault, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    make_vault().set(REF, SecretValue("the value"))
    log = tmp_path / "ro.jsonl"
    with _read_only(log):
        _sinks(monkeypatch, f"file:{log}")
        with pytest.raises(AuditUnavailable):
            make_vault().get(REF)


def test_fail_open_is_unsafe_but_available(
    make_vault: OpenVault, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    make_vault().set(REF, SecretValue("the value"))
    _sinks(monkeypatch, "file:/dev/full")
    vault = make_vault(audit_fail_open=True)
    assert vault.audit_fail_open
    with caplog.at_level(logging.WARNING, "sealbox.audit"):
        assert vault.get(REF).value.reveal() == "the value"
    assert "UNSAFE" in caplog.text


def test_stderr_and_syslog_sinks(
    make_vault: OpenVault, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    port = receiver.getsockname()[1]
    _sinks(monkeypatch, "stderr", f"syslog:udp:127.0.0.1:{port}")
    make_vault().set(REF, SecretValue("the value"))
    datagram = receiver.recv(65536).decode()
    receiver.close()
    assert "sealbox-audit: " in datagram and '"operation":"write"' in datagram
    err = capsys.readouterr().err
    assert err.startswith("sealbox-audit {") and '"operation":"write"' in err


def test_bad_sink_specs_are_refused(make_vault: OpenVault) -> None:
    vault = make_vault()
    for specs in (["nope"], ["file:"], ["syslog:udp:host:port"], []):
        with pytest.raises(InvalidInput):
            build_sinks(specs, vault._storage, file_max_bytes=4096)
