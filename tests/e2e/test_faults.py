"""Faults, from outside the process: concurrent writers, SIGKILL mid-write, plaintext at rest,
and a missing, read-only or corrupt vault."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sealbox.cli.main import main

SEALBOX = shutil.which("sealbox", path=os.path.dirname(sys.executable))

pytestmark = pytest.mark.skipif(
    SEALBOX is None, reason="the sealbox console script is not installed"
)

Run = Callable[..., subprocess.CompletedProcess[bytes]]


@pytest.fixture
def env(keyfile_vault: Path) -> dict[str, str]:
    """Environment for sealbox subprocesses: this test's vault, scope payments/dev."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("SEALBOX_")}
    e.update(SEALBOX_HOME=str(keyfile_vault), SEALBOX_PROJECT="payments", SEALBOX_ENV="dev")
    return e


@pytest.fixture
def sealbox(tmp_path: Path) -> Run:
    def run(
        *args: str, env: dict[str, str], stdin: bytes = b"", timeout: float = 120
    ) -> subprocess.CompletedProcess[bytes]:
        assert SEALBOX is not None
        return subprocess.run(
            [SEALBOX, *args],
            input=stdin,
            env=env,
            cwd=tmp_path,
            capture_output=True,
            timeout=timeout,
            check=False,
            start_new_session=True,
        )

    return run


def read_all_versions(name: str) -> dict[int, str]:
    """Every version of payments/dev/NAME, decrypted in-process through the core API."""
    from sealbox.factory import open_vault
    from sealbox.model import SecretRef

    ref = SecretRef("payments", "dev", name)
    vault = open_vault()
    try:
        return {
            v.version: vault.get(ref, version=v.version).value.reveal() for v in vault.history(ref)
        }
    finally:
        vault.close()


# -- concurrency ----------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("workers", [2, 4])
def test_concurrent_writers_lose_no_write(env: dict[str, str], sealbox: Run, workers: int) -> None:
    writes = 20
    failures: list[tuple[str, int, bytes]] = []

    def writer(w: int) -> None:
        for i in range(writes):
            value = f"worker-{w}-write-{i}"
            proc = sealbox("secret", "set", "RACE", env=env, stdin=value.encode())
            if proc.returncode != 0:
                failures.append((value, proc.returncode, proc.stderr))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []

    versions = read_all_versions("RACE")
    total = workers * writes
    assert sorted(versions) == list(range(1, total + 1))
    assert sorted(versions.values()) == sorted(
        f"worker-{w}-write-{i}" for w in range(workers) for i in range(writes)
    )
    # Each writer's own writes appear in the order it made them.
    for w in range(workers):
        mine = [versions[v] for v in sorted(versions) if versions[v].startswith(f"worker-{w}-")]
        assert mine == [f"worker-{w}-write-{i}" for i in range(writes)]
    hist = json.loads(sealbox("secret", "history", "RACE", "--json", env=env).stdout)
    assert [h["version"] for h in hist] == list(range(1, total + 1))
    assert [h["stage"] for h in hist].count("current") == 1
    assert hist[-1]["stage"] == "current"


@pytest.mark.slow
def test_if_version_race_has_exactly_one_winner_per_round(
    env: dict[str, str], tmp_path: Path
) -> None:
    assert SEALBOX is not None
    contenders, rounds = 3, 6
    winners: dict[int, str] = {}
    for rnd in range(rounds):
        procs = []
        for c in range(contenders):
            p = subprocess.Popen(
                [SEALBOX, "secret", "set", "CAS", "--if-version", str(rnd)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                cwd=tmp_path,
                start_new_session=True,
            )
            procs.append((f"round-{rnd}-contender-{c}", p))
        results = {}
        for value, p in procs:
            _, err = p.communicate(value.encode(), timeout=120)
            results[value] = (p.returncode, err)
        codes = sorted(code for code, _ in results.values())
        assert codes == [0] + [5] * (contenders - 1), results
        (winner,) = [v for v, (code, _) in results.items() if code == 0]
        winners[rnd + 1] = winner
        for value, (code, err) in results.items():
            if code == 5:
                assert value.encode() not in err
                assert b"version" in err
    assert read_all_versions("CAS") == winners


# -- crash ----------------------------------------------------------------------------------------
WRITER = textwrap.dedent(
    """
    import sys
    from sealbox.factory import open_vault
    from sealbox.model import SecretRef, SecretValue

    vault = open_vault()
    ref = SecretRef("payments", "dev", "CRASH")
    for i in range(1, 100000):
        version = vault.set(ref, SecretValue(f"crash-value-{i}-" + "x" * (i % 97)))
        print(version, flush=True)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [5, 40])
def test_sigkill_mid_write_keeps_every_acknowledged_version(
    env: dict[str, str], sealbox: Run, tmp_path: Path, kill_after: int
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    acked: list[int] = []
    try:
        while len(acked) < kill_after:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            acked.append(int(line))
        proc.send_signal(signal.SIGKILL)
        rest, _ = proc.communicate(timeout=30)
        acked += [int(x) for x in rest.split()]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert acked == list(range(1, len(acked) + 1))

    # The vault opens, and every acknowledged version decrypts to what was written.
    versions = read_all_versions("CRASH")
    assert sorted(versions) == list(range(1, len(versions) + 1))
    assert len(versions) in (len(acked), len(acked) + 1)  # one may be committed, unacknowledged
    for n in acked:
        assert versions[n] == f"crash-value-{n}-" + "x" * (n % 97)
    for n in (acked[0], acked[-1]):
        got = sealbox("secret", "get", "CRASH", "--version", str(n), env=env)
        assert got.returncode == 0, got.stderr
        assert got.stdout.decode() == f"crash-value-{n}-" + "x" * (n % 97)
    # Writes continue from the right number, and doctor's integrity check holds.
    nxt = sealbox("secret", "set", "CRASH", "--json", env=env, stdin=b"after")
    assert nxt.returncode == 0, nxt.stderr
    assert json.loads(nxt.stdout)["version"] == len(versions) + 1
    doc = sealbox("doctor", "--json", env=env)
    findings = json.loads(doc.stdout)
    integrity = [f for f in findings if f["check"] == "integrity"]
    assert integrity and all(f["level"] == "ok" for f in integrity), findings
    assert doc.returncode == 0, findings


# -- no plaintext at rest -------------------------------------------------------------------------------
def _forms(value: str) -> list[bytes]:
    raw = value.encode()
    return [
        raw,
        raw.upper(),
        base64.b64encode(raw),
        base64.urlsafe_b64encode(raw),
        base64.b64encode(raw).rstrip(b"="),
        raw.hex().encode(),
        raw.hex().upper().encode(),
        value.encode("utf-16-le"),
    ]


def _session_secret(session: str) -> str:
    from sealbox.kms.master import SESSION_PREFIX

    assert session.startswith(SESSION_PREFIX)
    secret = session[len(SESSION_PREFIX) :].split("_", 1)[1]
    assert len(secret) == 43  # 32 bytes, base64url
    return secret


def _assert_absent(blob: bytes, value: str, where: str) -> None:
    for form in _forms(value):
        assert form not in blob, f"{value!r} found in {where} as {form[:20]!r}"


def _cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str, stdin: str = ""
) -> tuple[int, str, str]:
    monkeypatch.setattr(
        sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode()), encoding="utf-8")
    )
    capsys.readouterr()
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def test_no_plaintext_at_rest(
    keyfile_vault: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    canary = "canary-" + uuid.uuid4().hex
    canary2 = "canary-" + uuid.uuid4().hex
    db = keyfile_vault / "vault.db"
    # A reader held open keeps the WAL from being checkpointed away, so it can be inspected.
    reader = sqlite3.connect(db)
    try:
        reader.execute("SELECT COUNT(*) FROM sb_versions").fetchone()
        assert _cli(monkeypatch, capsys, "secret", "set", "CANARY", stdin=canary)[0] == 0
        (tmp_path / "v2").write_text(canary2)
        assert (
            _cli(
                monkeypatch, capsys, "secret", "set", "CANARY", "--from-file", str(tmp_path / "v2")
            )[0]
            == 0
        )
        assert _cli(monkeypatch, capsys, "secret", "rollback", "CANARY", "1")[0] == 0
        assert (
            _cli(monkeypatch, capsys, "secret", "set", "payments/prod/CANARY", stdin=canary)[0] == 0
        )
        assert _cli(monkeypatch, capsys, "secret", "get", "CANARY")[1] == canary
        assert canary in _cli(monkeypatch, capsys, "export")[1]
        assert canary in _cli(monkeypatch, capsys, "secret", "list", "--reveal", "--json")[1]
        assert _cli(monkeypatch, capsys, "secret", "meta", "CANARY", "--owner", "team")[0] == 0
        status, out, _ = _cli(monkeypatch, capsys, "unlock")
        assert status == 0
        session = out.strip().split("=", 1)[1]

        wal = Path(str(db) + "-wal")
        assert wal.exists() and wal.stat().st_size > 0
        for path in sorted(p for p in keyfile_vault.rglob("*") if p.is_file()):
            blob = path.read_bytes()
            for value in (canary, canary2):
                _assert_absent(blob, value, str(path))
            assert session.encode() not in blob, path
            # The secret part whole (base64url has "_" of its own: splitting on the last
            # "_" could leave two characters, found in any binary file by chance).
            assert _session_secret(session).encode() not in blob, path
        key_file = tmp_path / "master.key"
        for value in (canary, canary2):
            _assert_absent(key_file.read_bytes(), value, str(key_file))

        audit = reader.execute("SELECT * FROM sb_audit").fetchall()
        assert len(audit) >= 8
        audit_text = repr(audit).encode()
        for value in (canary, canary2):
            _assert_absent(audit_text, value, "sb_audit")
        for table in ("sb_settings", "sb_secrets", "sb_sessions", "sb_keks"):
            rows = repr(reader.execute(f"SELECT * FROM {table}").fetchall()).encode()
            for value in (canary, canary2):
                _assert_absent(rows, value, table)
    finally:
        reader.close()


def test_failing_commands_never_print_the_value(
    keyfile_vault: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    sealbox: Run,
) -> None:
    canary = "canary-" + uuid.uuid4().hex
    assert _cli(monkeypatch, capsys, "secret", "set", "CANARY", stdin=canary)[0] == 0
    (tmp_path / "value").write_text(canary)
    bad_env = tmp_path / "bad.env"
    bad_env.write_text(f'OK=1\n1BAD={canary}\nBAD-NAME={canary}\nUNCLOSED="{canary}\n')
    failing: list[tuple[tuple[str, ...], str]] = [
        (("secret", "set", "CANARY", "--if-version", "99"), canary),
        (("secret", "set", "CANARY", "--if-version", "0"), canary),
        (("secret", "set", "1 BAD", canary), ""),
        (("secret", "set", "BAD NAME"), canary),
        (("secret", "set", "CANARY", canary, "--from-file", str(tmp_path / "value")), ""),
        (("secret", "set", "payments/nope/CANARY"), canary),
        (("secret", "set", "CANARY", "-e", "../prod"), canary),
        (("secret", "get", "CANARY", "--version", "9"), ""),
        (("secret", "get", "CANARY", "-e", "prod"), ""),
        (("export", "--only", "CANARY,MISSING"), ""),
        (("import", str(bad_env)), ""),
        (("secret", "rollback", "CANARY", "7"), ""),
    ]
    for args, stdin in failing:
        status, _out, err = _cli(monkeypatch, capsys, *args, stdin=stdin)
        assert status != 0, args
        for form in _forms(canary):
            assert form.decode("latin-1") not in err, (args, err)
    # The same through the console script, and for `run`.
    for args, stdin in [
        (("secret", "set", "CANARY", "--if-version", "99"), canary),
        (("run", "--only", "CANARY,MISSING", "--", "true"), ""),
        (("run", "--", "no-such-command-xyz"), ""),
    ]:
        proc = sealbox(*args, env=env, stdin=stdin.encode())
        assert proc.returncode != 0
        _assert_absent(proc.stderr, canary, f"stderr of {args}")
        _assert_absent(proc.stdout, canary, f"stdout of {args}")
    # A tampered row: the integrity error names the path, not the value.
    conn = sqlite3.connect(keyfile_vault / "vault.db", isolation_level=None)
    try:
        for sid, version, ct in conn.execute(
            "SELECT secret_id, version, ciphertext FROM sb_versions"
        ).fetchall():
            flipped = bytearray(ct)
            flipped[len(flipped) // 2] ^= 0xFF
            conn.execute(
                "UPDATE sb_versions SET ciphertext = ? WHERE secret_id = ? AND version = ?",
                (bytes(flipped), sid, version),
            )
    finally:
        conn.close()
    proc = sealbox("secret", "get", "CANARY", env=env)
    assert proc.returncode == 7
    assert b"payments/dev/CANARY" in proc.stderr
    _assert_absent(proc.stderr + proc.stdout, canary, "integrity error")


# -- missing, read-only, corrupt ----------------------------------------------------------------------
def test_missing_vault_says_run_init(tmp_path: Path, sealbox: Run) -> None:
    empty = tmp_path / "empty-home"
    empty.mkdir()
    e = {k: v for k, v in os.environ.items() if not k.startswith("SEALBOX_")}
    e.update(SEALBOX_HOME=str(empty), SEALBOX_PROJECT="payments", SEALBOX_ENV="dev")
    for args in (("secret", "get", "A"), ("secret", "list"), ("run", "--", "true"), ("unlock",)):
        proc = sealbox(*args, env=e)
        assert proc.returncode == 8, (args, proc.stderr)
        assert b"sealbox init" in proc.stderr, proc.stderr
    # Nothing was created by trying.
    assert list(empty.iterdir()) == []
    e["SEALBOX_HOME"] = str(tmp_path / "does-not-exist")
    proc = sealbox("secret", "get", "A", env=e)
    assert proc.returncode == 8
    assert b"sealbox init" in proc.stderr
    assert not (tmp_path / "does-not-exist").exists()


def test_vault_file_deleted_under_its_config(
    keyfile_vault: Path, env: dict[str, str], sealbox: Run
) -> None:
    for p in keyfile_vault.glob("vault.db*"):
        p.unlink()
    proc = sealbox("secret", "get", "A", env=env)
    assert proc.returncode == 8
    assert b"sealbox init" in proc.stderr
    assert not (keyfile_vault / "vault.db").exists()


@contextmanager
def read_only(paths: list[Path]) -> Iterator[None]:
    """Make paths unwritable: modes when not root, the immutable attribute as root."""
    if os.geteuid() != 0:
        saved = [(p, p.stat().st_mode) for p in paths]
        for p in paths:
            p.chmod(0o555 if p.is_dir() else 0o444)
        try:
            yield
        finally:
            for p, m in reversed(saved):
                p.chmod(m)
        return
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("running as root (file modes do not stop writes) and chattr is unavailable")
    done: list[Path] = []
    try:
        for p in paths:
            r = subprocess.run([chattr, "+i", str(p)], capture_output=True, check=False)
            if r.returncode != 0:
                pytest.skip(
                    "running as root (file modes do not stop writes) and chattr +i is not "
                    f"permitted here: {r.stderr.decode().strip()}"
                )
            done.append(p)
        yield
    finally:
        for p in reversed(done):
            subprocess.run([chattr, "-i", str(p)], capture_output=True, check=False)


@pytest.mark.parametrize("with_directory", [False, True], ids=["file", "file-and-dir"])
def test_read_only_vault_is_a_clear_error(
    keyfile_vault: Path,
    env: dict[str, str],
    sealbox: Run,
    monkeypatch: pytest.MonkeyPatch,
    with_directory: bool,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"before"), encoding="utf-8"))
    assert main(["secret", "set", "A"]) == 0
    db = keyfile_vault / "vault.db"
    targets = [db, keyfile_vault] if with_directory else [db]
    with read_only(targets):
        proc = sealbox("secret", "set", "A", env=env, stdin=b"blocked-write")
        assert proc.returncode == 8, proc.stderr
        msg = proc.stderr.decode()
        assert str(db) in msg
        assert "read-only" in msg or "cannot open" in msg, msg
        assert "Traceback" not in msg
        assert "blocked-write" not in msg
        assert len(msg.strip().splitlines()) <= 2
    got = sealbox("secret", "history", "A", "--json", env=env)
    assert got.returncode == 0, got.stderr
    assert [h["version"] for h in json.loads(got.stdout)] == [1]
    assert sealbox("secret", "get", "A", env=env).stdout == b"before"


@pytest.mark.parametrize("content", ["random", "empty", "truncated"])
def test_corrupt_vault_file(
    keyfile_vault: Path, env: dict[str, str], sealbox: Run, content: str
) -> None:
    db = keyfile_vault / "vault.db"
    for p in keyfile_vault.glob("vault.db-*"):
        p.unlink()
    if content == "random":
        db.write_bytes(os.urandom(64 * 1024))
    elif content == "empty":
        db.write_bytes(b"")
    else:
        db.write_bytes(db.read_bytes()[:3000])
    for args in (("secret", "get", "A"), ("secret", "list"), ("run", "--", "true")):
        proc = sealbox(*args, env=env)
        assert proc.returncode == 8, (args, proc.stderr)
        msg = proc.stderr.decode()
        assert "Traceback" not in msg
        if content == "random":
            assert "not a sealbox database or is corrupt" in msg, msg
        elif content == "empty":
            assert "sealbox init" in msg, msg
        else:
            assert str(db) in msg, msg
    doc = sealbox("doctor", "--json", env=env)
    assert doc.returncode == 1
    assert any(f["check"] == "vault" and f["level"] == "fail" for f in json.loads(doc.stdout))
