"""``sealbox scheduler``: due rotations started, stalled ones resumed, one node at a time,
a clean stop freeing its locks."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from tests.cli_harness import Cli
from tests.file_rotator import upstream_password

from sealbox import factory
from sealbox.rotation import registry


def _due(vault: Path, cli: Cli, name: str) -> None:
    """``name`` rotates daily with the random rotator and was last written long ago."""
    assert cli("secret", "set", name, stdin=f"{name}-first-value").status == 0
    assert cli("secret", "meta", name, "--rotate-every", "1d").status == 0
    assert cli("rotation", "configure", name, "--method", "random").status == 0
    with sqlite3.connect(vault / "vault.db") as conn:
        conn.execute("UPDATE sb_versions SET created_at = '2020-01-01T00:00:00+00:00'")


def test_once_starts_the_due_rotations(keyfile_vault: Path, cli: Cli) -> None:
    _due(keyfile_vault, cli, "TOKEN")
    _due(keyfile_vault, cli, "OTHER")
    r = cli("scheduler", "--once")
    assert r.status == 0, r.err
    assert "rotations: 2 due rotation(s) started, 0 skipped; 0 resumed" in r.out
    for name in ("TOKEN", "OTHER"):
        history = json.loads(cli("rotation", "history", name, "--json").out)
        assert [h["state"] for h in history] == ["succeeded"]
    again = cli("scheduler", "--once")
    assert "0 due rotation(s) started" in again.out


def test_a_node_that_does_not_hold_the_lock_runs_nothing(keyfile_vault: Path, cli: Cli) -> None:
    _due(keyfile_vault, cli, "TOKEN")
    other = factory.open_vault(source="scheduler")
    try:
        assert other.locks.claim("job:rotations", "node-b", timedelta(minutes=2)).held_by("node-b")
        r = cli("scheduler", "--once", "--json")
        assert r.status == 0, r.err
        turns = {t["job"]: t for t in json.loads(r.out)}
        assert (turns["rotations"]["ran"], turns["rotations"]["holder"]) == (False, "node-b")
        assert turns["leases"]["ran"]  # another job's lock: held here
        history = json.loads(cli("rotation", "history", "TOKEN", "--json").out)
        assert history == []
    finally:
        other.close()


def test_a_rotation_left_by_a_dead_process_is_resumed(
    keyfile_vault: Path, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rotation whose upstream was unreachable is pending; once the upstream is back and
    the retry interval passed, the scheduler finishes it (vault and upstream agree)."""
    monkeypatch.setitem(registry.BUILTIN, "file", "tests.file_rotator:FileRotator")
    upstream, control = tmp_path / "upstream.json", tmp_path / "control.json"
    upstream.write_text(json.dumps({"password": "initial-db-password"}))
    control.write_text(json.dumps({"unreachable": "set"}))
    assert cli("secret", "set", "DB", stdin="initial-db-password").status == 0
    assert cli(
        "rotation", "configure", "DB", "--method", "file",
        "--option", f"upstream={upstream}", "--option", f"control={control}",
    ).status == 0  # fmt: skip
    assert cli("rotate", "DB").status == 11  # pending: upstream unreachable at set
    control.write_text("{}")
    # Too soon: a pending rotation is retried only PENDING_RETRY after its last try.
    assert "0 resumed" in cli("scheduler", "--once").out
    with sqlite3.connect(keyfile_vault / "vault.db") as conn:
        conn.execute("UPDATE sb_rotations SET updated_at = '2020-01-01T00:00:00+00:00'")
    r = cli("scheduler", "--once")
    assert "1 resumed" in r.out, r.out + r.err
    current = cli("secret", "get", "DB").out.strip()
    assert current != "initial-db-password" and upstream_password(upstream) == current


def test_bad_options_and_remote_mode_are_refused(
    keyfile_vault: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("scheduler", "--rotate-every", "0s").status == 2
    assert cli("scheduler", "--rotate-every", "2h").status == 2
    assert cli("scheduler", "--rotate-every", "soon").status == 2
    monkeypatch.setenv("SEALBOX_ADDR", "http://127.0.0.1:1")
    r = cli("scheduler", "--once")
    assert r.status == 2 and "remote mode" in r.err


@pytest.mark.slow
def test_sigterm_stops_cleanly_and_frees_the_lock(keyfile_vault: Path, cli: Cli) -> None:
    _due(keyfile_vault, cli, "TOKEN")
    env = {**os.environ}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "sealbox"), "scheduler", "--rotate-every", "1s"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            history = json.loads(cli("rotation", "history", "TOKEN", "--json").out)
            # Until it ends: on a loaded machine the history shows it running first.
            if history and history[0]["state"] != "running":
                break
            time.sleep(0.3)
        assert history and history[0]["state"] == "succeeded"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "stopped; its locks are free" in err
    vault = factory.open_vault(source="scheduler")
    try:
        assert vault.locks.holders() == []
    finally:
        vault.close()
