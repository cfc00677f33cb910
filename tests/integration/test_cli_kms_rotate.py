"""``sealbox kms rotate`` and ``sealbox kms migrate`` on an embedded vault (the core's faults
are in tests/unit/test_kms_rotate.py; a SIGKILLed rotation in test_kms_rotate_crash.py)."""

from __future__ import annotations

import io
import json
import sqlite3
import sys
from pathlib import Path

import pytest
from tests.cli_harness import Cli

from sealbox.cli import kms_rotate_cmds
from sealbox.model import RewrapProgress

EXIT_OK = 0
SECRETS = 5


@pytest.fixture
def vault(tmp_path: Path, cli: Cli) -> Path:
    assert cli("init", "--key-file", str(tmp_path / "master.key")).status == EXIT_OK
    assert cli("project", "create", "app").status == EXIT_OK
    for i in range(SECRETS):
        r = cli("secret", "set", f"S{i}", "-p", "app", "-e", "dev", stdin=f"value-{i}")
        assert r.status == EXIT_OK, r.err
    return tmp_path / "home"


def _all_read(cli: Cli) -> None:
    for i in range(SECRETS):
        r = cli("secret", "get", f"S{i}", "-p", "app", "-e", "dev")
        assert (r.status, r.out.strip()) == (EXIT_OK, f"value-{i}"), r.err
    r = cli("audit", "verify", "--json")
    assert r.status == EXIT_OK, r.out
    assert json.loads(r.out)["findings"] == []


def test_rotate_then_retire_the_old_kek(cli: Cli, vault: Path) -> None:
    [old] = [k["kek_id"] for k in json.loads(cli("kms", "list", "--json").out)["keks"]]
    r = cli("kms", "rotate", "--json", "--batch", "2")
    assert r.status == EXIT_OK, r.err
    done = json.loads(r.out)
    assert (done["created"], done["complete"], done["rewrapped"]) == (True, True, SECRETS)
    assert f"re-wrapped {SECRETS}/{SECRETS} data keys" in r.err  # plain progress: no tty
    keks = {k["kek_id"]: k for k in json.loads(cli("kms", "list", "--json").out)["keks"]}
    assert keks[old]["versions"] == 0 and not keks[old]["active"]  # kept, wrapping nothing
    assert keks[done["kek_id"]]["versions"] == SECRETS and keks[done["kek_id"]]["active"]
    _all_read(cli)

    # Old KEKs are retired once running servers had time to see the new one.
    with sqlite3.connect(vault / "vault.db") as conn:
        conn.execute("UPDATE sb_keks SET created_at = '2020-01-01T00:00:00+00:00'")
    r = cli("kms", "rotate", "--resume", "--retire-old", "--json")
    assert r.status == EXIT_OK, r.err
    resumed = json.loads(r.out)
    assert (resumed["created"], resumed["retired"]) == (False, [old])
    assert [k["kek_id"] for k in json.loads(cli("kms", "list", "--json").out)["keks"]] == [
        done["kek_id"]
    ]
    _all_read(cli)


def test_an_unfinished_rotation_is_named_with_how_to_resume_it(cli: Cli, vault: Path) -> None:
    assert cli("kms", "rotate").status == EXIT_OK
    with sqlite3.connect(vault / "vault.db") as conn:  # as if killed before the re-wrap
        conn.execute("UPDATE sb_keks SET active = 1 - active")
    r = cli("kms", "rotate")
    assert r.status != EXIT_OK
    assert "unfinished" in r.err and "sealbox kms rotate --resume" in r.err
    r = cli("kms", "rotate", "--resume")
    assert r.status == EXIT_OK, r.err
    assert "re-wrapped under it" in r.err
    _all_read(cli)


def test_a_bad_batch_size_is_refused(cli: Cli, vault: Path) -> None:
    r = cli("kms", "rotate", "--batch", "0")
    assert r.status != EXIT_OK and "batch" in r.err


def test_migrate_onto_a_key_file_provider(cli: Cli, vault: Path, tmp_path: Path) -> None:
    disk = tmp_path / "disk.key"
    r = cli("kms", "migrate", "--to", "disk", "--kind", "local", "--option", "method=keyfile",
            "--option", f"key_file={disk}", "--yes", "--json")  # fmt: skip
    assert r.status == EXIT_OK, r.err
    done = json.loads(r.out)
    assert (done["added"], done["removed"]) == (True, ["local"])
    listed = json.loads(cli("kms", "list", "--json").out)
    assert [p["name"] for p in listed["providers"]] == ["disk"]
    (tmp_path / "master.key").unlink()
    _all_read(cli)
    # Without --yes and no terminal to confirm on: nothing happens.
    assert cli("kms", "migrate", "--to", "disk").status != EXIT_OK


def test_the_progress_bar_on_a_terminal_shows_an_eta(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(out, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(sys, "stderr", out)
    with kms_rotate_cmds._progress() as show:
        show(RewrapProgress("k1", 50, 100, "rewrap"))
        show(RewrapProgress("k1", 100, 100, "final"))
    text = out.getvalue()
    assert "re-wrapping data keys" in text and "100/100" in text and "eta" in text


def test_ctrl_c_asks_to_stop_after_the_batch() -> None:
    import signal

    stop = kms_rotate_cmds._Interrupt()
    with stop.installed():
        assert not stop()
        signal.raise_signal(signal.SIGINT)
        assert stop()  # the first Ctrl-C: stop after the batch being stored
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)  # the second: now
