"""A ``sealbox kms rotate`` SIGKILLed in the middle of its re-wrap (twice) is finished by
``kms rotate --resume``: no further KEK is made, every version still opens with its value,
every data key was re-wrapped exactly once (the audited batch counts add up to the number
of versions), ciphertexts are untouched and ``sealbox audit verify`` finds nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sealbox import factory
from sealbox.kms.master import UnlockMethod
from sealbox.model import SecretRef, SecretValue

pytestmark = pytest.mark.slow

SECRETS, VERSIONS = 2000, 10  # 20,000 versions
BATCH = "200"
SEALBOX = shutil.which("sealbox", path=os.path.dirname(sys.executable))


def _populate(home: Path, key: Path) -> None:
    factory.init_vault(home=home, method=UnlockMethod.KEYFILE, key_file=key, env={})
    vault = factory.open_vault(home=home, env={})
    try:
        vault.create_project("app")
        for v in range(VERSIONS):
            for i in range(SECRETS):
                vault.set(SecretRef("app", "dev", f"S{i:04d}"), SecretValue(f"v-{i}-{v}"))
    finally:
        vault.close()


def _db(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{home / 'vault.db'}?mode=ro", uri=True, timeout=30)


def _under(home: Path, kek: str) -> int:
    with _db(home) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM sb_versions WHERE kek_id = ?", (kek,))
                   .fetchone()[0])  # fmt: skip


def _active(home: Path) -> str | None:
    with _db(home) as conn:
        row = conn.execute("SELECT kek_id FROM sb_keks WHERE active = 1").fetchone()
    return str(row[0]) if row else None


def _ciphertexts(home: Path) -> dict[tuple[int, int], bytes]:
    with _db(home) as conn:
        rows = conn.execute("SELECT secret_id, version, ciphertext FROM sb_versions").fetchall()
    return {(r[0], r[1]): bytes(r[2]) for r in rows}


def _kill_midway(env: dict[str, str], home: Path, old: str, args: list[str], more_than: int) -> int:
    """Run ``sealbox kms rotate ARGS``; SIGKILL it once more than ``more_than`` data keys
    are under the new KEK and before all are. Returns how many were then."""
    assert SEALBOX is not None
    total = SECRETS * VERSIONS
    proc = subprocess.Popen(
        [SEALBOX, "kms", "rotate", *args], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"rotate ended before it was killed: {proc.stderr}"
            assert time.monotonic() < deadline, "the re-wrap never got going"
            active = _active(home)
            if active and active != old:
                done = _under(home, active)
                if more_than < done < total // 2 + more_than:
                    break
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    return _under(home, active)


@pytest.mark.skipif(SEALBOX is None, reason="the sealbox console script is not installed")
def test_a_killed_rotation_resumes_and_every_secret_still_reads(tmp_path: Path) -> None:
    home, key = tmp_path / "home", tmp_path / "master.key"
    _populate(home, key)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SEALBOX_")},
        "SEALBOX_HOME": str(home),
    }
    old = _active(home)
    assert old is not None
    before = _ciphertexts(home)

    first = _kill_midway(env, home, old, ["--batch", BATCH], 0)
    new = _active(home)
    assert new is not None and new != old
    # A plain rotate refuses to make yet another KEK over an unfinished one.
    assert SEALBOX is not None
    r = subprocess.run([SEALBOX, "kms", "rotate"], env=env, capture_output=True, text=True,
                       timeout=120, check=False)  # fmt: skip
    assert r.returncode != 0 and "--resume" in r.stderr
    # The resume is killed too, further on; then a last resume finishes.
    _kill_midway(env, home, old, ["--resume", "--batch", BATCH], first)
    r = subprocess.run([SEALBOX, "kms", "rotate", "--resume", "--json"], env=env,
                       capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    done = json.loads(r.stdout)
    assert (done["kek_id"], done["created"], done["complete"]) == (new, False, True)

    with _db(home) as conn:
        keks = [str(k) for (k,) in conn.execute("SELECT kek_id FROM sb_keks")]
        reasons = [str(x) for (x,) in conn.execute(
            "SELECT reason FROM sb_audit WHERE operation = 'kms.rewrap' AND outcome = 'allowed'"
        )]  # fmt: skip
    assert sorted(keks) == sorted([old, new])  # no third KEK
    assert _under(home, new) == SECRETS * VERSIONS
    # Each data key re-wrapped once: the committed batches' counts add up exactly.
    assert sum(int(r.split()[0]) for r in reasons) == SECRETS * VERSIONS
    assert _ciphertexts(home) == before  # values never re-encrypted

    vault = factory.open_vault(home=home, env={})
    try:
        values = {(k.path, k.version): k.value.reveal() for k in vault.inventory.known_values()}
    finally:
        vault.close()
    assert len(values) == SECRETS * VERSIONS
    for i in range(0, SECRETS, 97):
        for v in range(VERSIONS):
            assert values[(f"app/dev/S{i:04d}", v + 1)] == f"v-{i}-{v}"
    r = subprocess.run([SEALBOX, "audit", "verify", "--json"], env=env, capture_output=True,
                       text=True, timeout=300, check=False)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["findings"] == []
