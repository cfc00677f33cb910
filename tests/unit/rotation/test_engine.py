"""The rotation engine (``vault.rotations``) with a rotator whose upstream is a file:
the four steps, failures of each kind, rehearsals, cancel, stages and grace, revocation,
idempotent ids, leases, notification and the audit trail of every step."""

from __future__ import annotations

import http.server
import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.file_rotator import upstream_password

from sealbox import factory
from sealbox.auth.principal import Principal
from sealbox.caller import Actor
from sealbox.errors import AccessDenied, Conflict, InvalidInput, NotFound
from sealbox.kms.master import UnlockMethod
from sealbox.model import ChangeEvent, RotationState, SecretRef, SecretValue, Stage
from sealbox.rotation import registry
from sealbox.vault import Vault

REF = SecretRef("payments", "dev", "DB_PASSWORD")
INITIAL = "initial-password-0001"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Env:
    def __init__(self, vault: Vault, tmp: Path, clock: Clock) -> None:
        self.vault = vault
        self.upstream = tmp / "upstream.json"
        self.control = tmp / "control.json"
        self.clock = clock
        self.changes: list[ChangeEvent] = []
        vault.on_change = self.changes.append

    def steer(self, **control: str) -> None:
        self.control.write_text(json.dumps(control))

    def configure(self, **kw: Any) -> None:
        self.vault.rotations.configure(
            REF,
            "file",
            options={"upstream": str(self.upstream), "control": str(self.control)},
            **kw,
        )

    def current(self) -> str:
        return self.vault.get(REF).value.reveal()

    def stages(self) -> dict[int, str | None]:
        return {v.version: v.stage.value if v.stage else None for v in self.vault.history(REF)}

    def events(self) -> list[tuple[str, str, str]]:
        rows = self.vault._storage.list_audit(1000)
        return [(r.operation, r.outcome, r.reason) for r in rows if r.operation.startswith("rot")]


@pytest.fixture
def env(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setitem(registry.BUILTIN, "file", "tests.file_rotator:FileRotator")
    factory.init_vault(home=home, method=UnlockMethod.KEYFILE, key_file=tmp_path / "k.key")
    clock = Clock()
    vault = factory.open_vault(home=home, clock=clock)
    vault.create_project("payments")
    vault.set(REF, SecretValue(INITIAL))
    e = Env(vault, tmp_path, clock)
    e.upstream.write_text(json.dumps({"password": INITIAL}))
    e.steer()
    e.configure()
    yield e
    vault.close()


def test_a_rotation_runs_four_steps_promotes_and_agrees_with_upstream(env: Env) -> None:
    info = env.vault.rotations.start(REF)
    assert info.state == RotationState.SUCCEEDED, info.error
    assert (info.from_version, info.pending_version, info.tested) == (1, 2, "passed")
    assert env.stages() == {1: "previous", 2: "current"}
    assert env.current() == upstream_password(env.upstream) != INITIAL
    assert env.vault.get(REF, stage="previous").value.reveal() == INITIAL
    with pytest.raises(NotFound, match="no pending version"):
        env.vault.get(REF, stage=Stage.PENDING)
    assert "set: upstream password changed" in info.notes
    assert info.rotator_state == {"user": "app"}
    # Every step is recorded before and after, naming the rotation; never a value.
    ops = [(op, reason) for op, _, reason in env.events()]
    for step in ("create", "set", "test", "finish"):
        assert (f"rotation.{step}", f"{info.id} started") in ops
        assert (f"rotation.{step}", f"{info.id} done") in ops
    assert ("rotation.promote", info.id) in ops
    assert ("rotation.succeeded", f"{info.id} succeeded") in ops
    text = json.dumps([list(r) for r in env.vault._storage.list_audit(1000)])
    assert env.current() not in text and INITIAL not in text
    # Nor in the rotation's record or settings, nor its report.
    stored = json.dumps(
        [list(r) for r in env.vault._storage.list_rotations()]
        + [list(c) for c in env.vault._storage.list_rotation_configs()]
    )
    assert env.current() not in stored and INITIAL not in stored
    assert env.current() not in json.dumps(info.to_json()) + repr(info)
    # Watchers hear the promotion.
    assert ChangeEvent("payments", "dev", "DB_PASSWORD", 2, "rotate") in env.changes
    assert env.vault.versions("payments", "dev")["DB_PASSWORD"] == 2
    # Metadata names the method; history lists the rotation.
    assert env.vault.info(REF).meta.rotation_method == "file"
    assert [r.id for r in env.vault.rotations.history(REF)] == [info.id]


def test_a_secret_with_no_rotation_method_is_refused(env: Env) -> None:
    other = SecretRef("payments", "dev", "PLAIN")
    env.vault.set(other, SecretValue("x"))
    with pytest.raises(InvalidInput, match="has no rotation method"):
        env.vault.rotations.start(other)
    with pytest.raises(NotFound):
        env.vault.rotations.start(SecretRef("payments", "dev", "MISSING"))
    assert env.vault.rotations.history(other) == []


def test_upstream_unreachable_at_set_stays_pending_and_retriable(env: Env) -> None:
    env.steer(unreachable="set")
    info = env.vault.rotations.start(REF)
    assert info.state == RotationState.PENDING
    assert "unreachable" in info.error
    assert (info.step, info.pending_version) == ("set", 2)
    assert env.current() == INITIAL == upstream_password(env.upstream)
    # The pending value is readable by its stage; current untouched.
    pending = env.vault.get(REF, stage="pending")
    assert pending.version == 2
    assert env.stages() == {1: "current", 2: "pending"}
    # A second rotation of the secret is refused, naming the first.
    with pytest.raises(Conflict, match=info.id):
        env.vault.rotations.start(REF)
    assert [r.id for r in env.vault.rotations.status(failed_only=True)] == [info.id]
    env.steer()
    done = env.vault.rotations.resume(info.id)
    assert done.state == RotationState.SUCCEEDED
    assert env.stages() == {1: "previous", 2: "current"}  # one version created, not two
    assert env.current() == upstream_password(env.upstream) == pending.value.reveal()
    assert ("rotation.set", "error", f"{info.id} upstream_error") in env.events()


def test_a_failing_test_promotes_nothing_and_cancel_restores_upstream(env: Env) -> None:
    env.steer(refuse_test="1")
    info = env.vault.rotations.start(REF)
    assert info.state == RotationState.FAILED
    assert (info.step, info.tested) == ("test", "failed")
    assert "login failed" in info.error
    assert env.current() == INITIAL
    assert upstream_password(env.upstream) != INITIAL  # set ran
    cancelled = env.vault.rotations.cancel(REF)
    assert cancelled.state == RotationState.CANCELLED
    assert upstream_password(env.upstream) == INITIAL == env.current()
    assert env.stages() == {1: "current", 2: None}  # never promoted, never read as pending
    with pytest.raises(NotFound):
        env.vault.get(REF, stage="pending")
    with pytest.raises(Conflict, match="cancelled already"):
        env.vault.rotations.cancel(info.id)
    # The secret can be rotated again.
    env.steer()
    assert env.vault.rotations.start(REF).state == RotationState.SUCCEEDED
    assert env.stages() == {1: "previous", 2: None, 3: "current"}


def test_a_rotator_raising_midway_fails_the_rotation_without_a_half_state(env: Env) -> None:
    env.steer(raise_in="set")
    info = env.vault.rotations.start(REF)
    assert info.state == RotationState.FAILED
    assert info.error == "the file rotator raised KeyError in set"
    assert env.current() == INITIAL
    assert env.stages() == {1: "current", 2: "pending"}
    env.steer()
    assert env.vault.rotations.resume(REF).state == RotationState.SUCCEEDED


def test_a_rehearsal_tests_then_undoes(env: Env) -> None:
    info = env.vault.rotations.start(REF, dry_run=True)
    assert info.state == RotationState.REHEARSED
    assert (info.dry_run, info.tested, info.error) == (True, "passed", "")
    assert env.current() == INITIAL == upstream_password(env.upstream)
    assert env.stages() == {1: "current", 2: None}
    failed = env.vault.rotations.start(REF, dry_run=True)
    assert failed.state == RotationState.REHEARSED
    env.steer(refuse_test="1")
    refused = env.vault.rotations.start(REF, dry_run=True)
    assert (refused.state, refused.tested) == (RotationState.REHEARSED, "failed")
    assert "login failed" in refused.error
    assert env.current() == INITIAL == upstream_password(env.upstream)


def test_grace_zero_hides_previous_at_once(env: Env) -> None:
    env.configure(grace=timedelta(0))
    env.vault.rotations.start(REF)
    with pytest.raises(NotFound, match="past its grace window"):
        env.vault.get(REF, stage="previous")
    assert env.vault.get(REF, version=1).value.reveal() == INITIAL  # by number: history


def test_previous_is_readable_for_the_grace_window_only(env: Env) -> None:
    env.configure(grace=timedelta(hours=1))
    env.vault.rotations.start(REF)
    env.clock.now += timedelta(minutes=59)
    assert env.vault.get(REF, stage="previous").value.reveal() == INITIAL
    env.clock.now += timedelta(minutes=1)
    with pytest.raises(NotFound, match="grace"):
        env.vault.get(REF, stage="previous")


def test_a_revoked_version_is_unreadable_by_number_and_stage(env: Env) -> None:
    env.vault.rotations.start(REF)
    env.vault.rotations.revoke(REF, 1)
    assert env.stages() == {1: "revoked", 2: "current"}
    with pytest.raises(NotFound, match="version 1 of payments/dev/DB_PASSWORD is revoked"):
        env.vault.get(REF, version=1)
    with pytest.raises(NotFound):
        env.vault.get(REF, stage="previous")
    with pytest.raises(NotFound, match="revoked"):
        env.vault.rollback(REF, 1)
    with pytest.raises(Conflict, match="current version"):
        env.vault.rotations.revoke(REF, 2)
    with pytest.raises(InvalidInput, match="read by stage"):
        env.vault.get(REF, stage="revoked")
    env.vault.rotations.revoke(REF, 1)  # again: nothing to do


def test_a_retried_start_with_its_id_resumes_and_makes_no_second_version(env: Env) -> None:
    env.steer(unreachable="test")
    first = env.vault.rotations.start(REF, rotation_id="rot_client-token-1")
    assert (first.id, first.state) == ("rot_client-token-1", RotationState.PENDING)
    env.steer()
    again = env.vault.rotations.start(REF, rotation_id="rot_client-token-1")
    assert again.state == RotationState.SUCCEEDED
    assert env.stages() == {1: "previous", 2: "current"}
    same = env.vault.rotations.start(REF, rotation_id="rot_client-token-1")
    assert same.state == RotationState.SUCCEEDED and len(env.stages()) == 2
    with pytest.raises(InvalidInput, match="rotation id"):
        env.vault.rotations.start(REF, rotation_id="x; DROP TABLE")


def _set_owner(home: Path, rotation_id: str, owner: str, lease_until: str) -> None:
    with sqlite3.connect(home / "vault.db") as conn:
        conn.execute(
            "UPDATE sb_rotations SET owner = ?, lease_until = ? WHERE id = ?",
            (owner, lease_until, rotation_id),
        )


def test_a_rotation_held_by_a_live_process_is_not_taken_over(env: Env, home: Path) -> None:
    env.steer(unreachable="set")
    info = env.vault.rotations.start(REF)
    later = (env.clock.now + timedelta(minutes=3)).isoformat()
    _set_owner(home, info.id, "another-host:1:abcd", later)
    with pytest.raises(Conflict, match="being run by another-host"):
        env.vault.rotations.resume(info.id)
    with pytest.raises(Conflict, match="being run"):
        env.vault.rotations.cancel(info.id)
    env.clock.now += timedelta(minutes=4)  # its lease ends: taken over
    env.steer()
    assert env.vault.rotations.resume(info.id).state == RotationState.SUCCEEDED


def test_a_dead_local_owner_is_taken_over_at_once(env: Env, home: Path) -> None:
    import socket
    import subprocess

    env.steer(unreachable="set")
    info = env.vault.rotations.start(REF)
    dead = subprocess.Popen(["true"])
    dead.wait()
    later = (env.clock.now + timedelta(minutes=3)).isoformat()
    _set_owner(home, info.id, f"{socket.gethostname()}:{dead.pid}:0000", later)
    env.steer()
    assert env.vault.rotations.resume(info.id).state == RotationState.SUCCEEDED


def test_rotate_needs_the_rotate_capability(env: Env) -> None:
    from sealbox.auth.policy import parse_policy

    policy = parse_policy(
        {"name": "reader", "rules": [{"path": "payments/dev/*", "capabilities": ["read", "list"]}]}
    )
    reader = env.vault.as_principal(
        Principal("id-r", "reader", "machine", "token", (policy,)), Actor("reader", "test")
    )
    with pytest.raises(AccessDenied, match="rotate on payments/dev/DB_PASSWORD"):
        reader.rotations.start(REF)
    with pytest.raises(AccessDenied):
        reader.rotations.configure(REF, "random")
    with pytest.raises(AccessDenied):
        reader.rotations.revoke(REF, 1)
    assert env.current() == INITIAL


def test_configure_refuses_bad_settings(env: Env) -> None:
    rotations = env.vault.rotations
    with pytest.raises(InvalidInput, match="no rotator named"):
        rotations.configure(REF, "nope")
    with pytest.raises(InvalidInput, match="has no option"):
        rotations.configure(REF, "random", options={"size": "9"})
    with pytest.raises(InvalidInput, match="window"):
        rotations.configure(REF, "random", window="25:00-26:00")
    with pytest.raises(InvalidInput, match="start offset"):
        rotations.configure(REF, "random", window="02:00-03:00", start_offset=timedelta(hours=2))
    with pytest.raises(InvalidInput, match="notify URL"):
        rotations.configure(REF, "random", notify_url="file:///etc/passwd")
    with pytest.raises(InvalidInput, match="grace"):
        rotations.configure(REF, "random", grace=timedelta(days=400))
    with pytest.raises(NotFound):
        rotations.configure(SecretRef("payments", "dev", "MISSING"), "random")
    cfg = rotations.config(REF)
    assert cfg is not None and cfg.method == "file"  # nothing changed


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_the_notify_url_hears_success_and_failure(env: Env) -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Hook.received = []
    try:
        env.configure(notify_url=f"http://127.0.0.1:{server.server_port}/hook")
        ok = env.vault.rotations.start(REF)
        env.steer(refuse_test="1")
        bad = env.vault.rotations.start(REF)
    finally:
        server.shutdown()
    assert [(m["rotation_id"], m["state"]) for m in _Hook.received] == [
        (ok.id, "succeeded"),
        (bad.id, "failed"),
    ]
    assert _Hook.received[0]["secret"] == REF.path and _Hook.received[1]["error"]
    assert json.dumps(_Hook.received).count("pw-") == 0  # never a value
    # Nobody listening: audited, not fatal.
    env.configure(notify_url=f"http://127.0.0.1:{server.server_port}/gone")
    env.vault.rotations.cancel(bad.id)
    assert any(op == "rotation.notify" and out == "error" for op, out, _ in env.events())


def test_due_rotations_start_in_their_window_and_late_ones_are_overdue(env: Env) -> None:
    env.configure(window="02:00-04:00", start_offset=timedelta(minutes=10))
    rotations = env.vault.rotations
    assert rotations.due() == []  # no interval: never due
    env.vault.update_meta(REF, rotate_every_days=30)
    env.clock.now += timedelta(days=30)  # 2026-03-31 12:00: past today's window
    assert rotations.due() == []
    env.clock.now = datetime(2026, 4, 1, 2, 20, tzinfo=UTC)
    due = rotations.due()
    assert [(d.ref, d.overdue) for d in due] == [(REF, False)]
    assert datetime(2026, 4, 1, 2, 10, tzinfo=UTC) <= due[0].due_at <= env.clock.now
    [outcome] = rotations.rotate_due()
    assert outcome.rotation is not None and outcome.rotation.state == RotationState.SUCCEEDED
    assert rotations.due() == []
    env.clock.now = datetime(2026, 5, 3, 12, 0, tzinfo=UTC)  # its next window passed
    [late] = rotations.due()
    assert late.overdue
    [skipped] = rotations.rotate_due()
    assert skipped.rotation is None and "outside its window 02:00-04:00" in skipped.skipped
    env.clock.now = datetime(2026, 5, 4, 3, 0, tzinfo=UTC)
    assert rotations.rotate_due(limit=0) == []
    [again] = rotations.rotate_due(limit=1)
    assert again.rotation is not None and again.rotation.state == RotationState.SUCCEEDED


def test_rotate_due_skips_a_secret_with_an_unfinished_rotation(env: Env) -> None:
    env.vault.update_meta(REF, rotate_every_days=1)
    env.steer(unreachable="set")
    stuck = env.vault.rotations.start(REF)
    env.clock.now += timedelta(days=3)
    [outcome] = env.vault.rotations.rotate_due()
    assert outcome.rotation is None and stuck.id in outcome.skipped


def test_killed_after_the_pending_write_before_its_record_resume_writes_no_second(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one instant the rotator cannot block at (the crash test's hooks are in the
    rotator): the pending version is committed, the row does not know it yet."""
    storage = env.vault._storage
    save = storage.save_rotation

    def dies_after_create(row: Any, **kw: Any) -> None:
        if row.step == "set" and row.phase == "started":  # the save right after create
            raise KeyboardInterrupt  # as good as a SIGKILL for the rows: nothing more is saved
        save(row, **kw)

    monkeypatch.setattr(storage, "save_rotation", dies_after_create)
    with pytest.raises(KeyboardInterrupt):
        env.vault.rotations.start(REF)
    monkeypatch.setattr(storage, "save_rotation", save)
    [stuck] = env.vault.rotations.status()
    assert (stuck.step, stuck.phase, stuck.pending_version) == ("create", "started", None)
    assert env.stages() == {1: "current", 2: "pending"}
    done = env.vault.rotations.resume(REF)
    assert (done.state, done.pending_version) == (RotationState.SUCCEEDED, 2)
    assert env.stages() == {1: "previous", 2: "current"}
    assert env.current() == upstream_password(env.upstream)


def test_cancel_after_the_pending_write_drops_that_version(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = env.vault._storage
    save = storage.save_rotation

    def dies_after_create(row: Any, **kw: Any) -> None:
        if row.step == "set" and row.phase == "started":  # the save right after create
            raise KeyboardInterrupt
        save(row, **kw)

    monkeypatch.setattr(storage, "save_rotation", dies_after_create)
    with pytest.raises(KeyboardInterrupt):
        env.vault.rotations.start(REF)
    monkeypatch.setattr(storage, "save_rotation", save)
    assert env.vault.rotations.cancel(REF).state == RotationState.CANCELLED
    assert env.stages() == {1: "current", 2: None}
    assert upstream_password(env.upstream) == INITIAL == env.current()


def test_a_cancel_whose_undo_fails_waits_and_resumes_as_a_cancel(env: Env) -> None:
    env.steer(refuse_test="1")
    failed = env.vault.rotations.start(REF)
    env.steer(unreachable="undo")
    stuck = env.vault.rotations.cancel(failed.id)
    assert (stuck.state, stuck.step) == (RotationState.PENDING, "undo")
    assert env.current() == INITIAL != upstream_password(env.upstream)  # upstream not back yet
    env.steer()
    done = env.vault.rotations.resume(failed.id)
    assert done.state == RotationState.CANCELLED
    assert upstream_password(env.upstream) == INITIAL == env.current()
    assert env.stages() == {1: "current", 2: None}


def test_the_notify_url_is_shown_without_its_path(env: Env) -> None:
    env.configure(notify_url="https://user:pw@hooks.example.com/services/T000/B000/XXXX?x=1")
    cfg = env.vault.rotations.config(REF)
    assert cfg is not None
    assert cfg.to_json()["notify_url"] == "https://hooks.example.com/…"
    assert "XXXX" not in json.dumps(cfg.to_json()) and "pw" not in json.dumps(cfg.to_json())
