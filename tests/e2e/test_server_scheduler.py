"""A server with ``scheduler = true`` rotates what is due, whatever its worker count, and
frees the job's lock when it stops."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from pathlib import Path

from tests.e2e.test_server_lifecycle import env, sealbox, server_process  # noqa: F401

from sealbox import factory


def test_a_server_with_the_scheduler_rotates_due_secrets(env: dict[str, str]) -> None:  # noqa: F811
    home = Path(env["SEALBOX_HOME"])
    scope = ["-p", "payments", "-e", "prod"]
    assert sealbox("project", "create", "payments", env=env).returncode == 0
    assert sealbox("secret", "set", "TOKEN", *scope, env=env, timeout=30).returncode == 0
    for args in (
        ("secret", "meta", "TOKEN", *scope, "--rotate-every", "1d"),
        ("rotation", "configure", "payments/prod/TOKEN", "--method", "random"),
    ):
        r = sealbox(*args, env=env)
        assert r.returncode == 0, r.stderr
    with sqlite3.connect(home / "vault.db") as conn:
        conn.execute("UPDATE sb_versions SET created_at = '2020-01-01T00:00:00+00:00'")
    with server_process({**env, "SEALBOX_SCHEDULER": "true"}, "--workers", "2") as (_, proc):
        deadline = time.monotonic() + 60
        states: list[str] = []
        while time.monotonic() < deadline and not states:
            r = sealbox("rotation", "history", "payments/prod/TOKEN", "--json", env=env)
            states = [h["state"] for h in json.loads(r.stdout or "[]")]
            time.sleep(0.5)
        assert states == ["succeeded"]
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    vault = factory.open_vault(home=home, env=env, source="scheduler")
    try:
        assert vault.locks.holders() == []  # freed at the stop, not left to expire
        claims = [e for e in vault.audit.log(limit=200) if e["operation"] == "scheduler.claim"]
        assert sorted(e["path"] for e in claims) == [
            "sys/scheduler/job:leases",
            "sys/scheduler/job:rotations",
        ]
        assert {e["source"] for e in claims} == {"scheduler"}
        rotated = [e for e in vault.audit.log(limit=200) if e["operation"] == "rotation.start"]
        assert rotated and rotated[0]["source"] == "scheduler"
    finally:
        vault.close()
