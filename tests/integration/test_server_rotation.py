"""Rotations through the HTTP API and the SDK (``client.rotations``), and the CLI in
remote mode: the same verbs and records as embedded, authorised per token."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from tests.cli_harness import Cli
from tests.file_rotator import upstream_password
from tests.unit.client.live import Live, live_server

from sealbox.auth.policy import parse_policy
from sealbox.client import Client
from sealbox.errors import AccessDenied, Conflict, InvalidInput, NotFound
from sealbox.model import RotationState, SecretRef, SecretValue
from sealbox.rotation import registry

REF = SecretRef("payments", "prod", "DB_PASSWORD")
INITIAL = "initial-password-0001"


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Live:
    monkeypatch.setitem(registry.BUILTIN, "file", "tests.file_rotator:FileRotator")
    with live_server(tmp_path) as server:
        yield server  # type: ignore[misc]


def _file_setup(client: Client, tmp: Path) -> tuple[Path, Path]:
    upstream, control = tmp / "upstream.json", tmp / "control.json"
    upstream.write_text(json.dumps({"password": INITIAL}))
    control.write_text("{}")
    client.create_project("payments")
    client.set(REF, SecretValue(INITIAL))
    client.rotations.configure(
        REF,
        "file",
        options={"upstream": str(upstream), "control": str(control)},
        grace=timedelta(hours=2),
    )
    return upstream, control


def test_rotate_resume_cancel_and_history_over_http(live: Live, tmp_path: Path) -> None:
    client = Client(live.url, live.token)
    upstream, control = _file_setup(client, tmp_path)
    cfg = client.rotations.config(REF)
    assert cfg is not None and (cfg.method, cfg.grace) == ("file", timedelta(hours=2))
    rehearsal = client.rotations.start(REF, dry_run=True)
    assert (rehearsal.state, rehearsal.tested) == (RotationState.REHEARSED, "passed")
    control.write_text(json.dumps({"unreachable": "set"}))
    stuck = client.rotations.start(REF)
    assert stuck.state == RotationState.PENDING and "unreachable" in stuck.error
    with pytest.raises(Conflict, match=stuck.id):
        client.rotations.start(REF)
    assert [r.id for r in client.rotations.status(failed_only=True)] == [stuck.id]
    assert client.rotations.get(stuck.id).step == "set"
    control.write_text("{}")
    assert client.get(REF, stage="pending").version == stuck.pending_version
    done = client.rotations.resume(stuck.id)
    assert done.state == RotationState.SUCCEEDED
    assert client.get(REF, stage="previous").value.reveal() == INITIAL
    with pytest.raises(NotFound, match="no pending version"):
        client.get(REF, stage="pending")
    with pytest.raises(InvalidInput, match="read by stage"):
        client.get(REF, stage="archived")
    assert client.get(REF).value.reveal() == upstream_password(upstream)
    control.write_text(json.dumps({"refuse_test": "1"}))
    failed = client.rotations.start(REF)
    assert failed.state == RotationState.FAILED
    assert client.rotations.cancel(REF).state == RotationState.CANCELLED
    assert client.get(REF).value.reveal() == upstream_password(upstream) != INITIAL
    states = [r.state for r in client.rotations.history(REF)]
    assert states == ["cancelled", "succeeded", "rehearsed"]
    client.rotations.revoke(REF, 1)
    with pytest.raises(NotFound, match="revoked"):
        client.get(REF, version=1)
    with pytest.raises(Conflict):
        client.rotations.revoke(REF, client.get(REF).version)
    assert client.rotations.rotate_due() == []
    client.close()


def test_bad_requests_and_a_token_without_rotate(live: Live, tmp_path: Path) -> None:
    admin = Client(live.url, live.token)
    _file_setup(admin, tmp_path)
    with pytest.raises(InvalidInput, match="no rotator named"):
        admin.rotations.configure(REF, "nope")
    with pytest.raises(InvalidInput, match="rotation id"):
        admin.rotations.start(REF, rotation_id="bad id")
    with pytest.raises(NotFound):
        admin.rotations.get("rot_doesnotexist")
    admin.set(SecretRef("payments", "prod", "PLAIN"), SecretValue("x"))
    assert admin.rotations.config(SecretRef("payments", "prod", "PLAIN")) is None
    with pytest.raises(InvalidInput, match="has no rotation method"):
        admin.rotations.start(SecretRef("payments", "prod", "PLAIN"))
    admin.accounts.apply_policy(
        parse_policy(
            {"name": "reader", "rules": [{"path": "payments/*/*", "capabilities": ["read"]}]}
        )
    )
    admin.accounts.create_machine("reader-app", ["reader"])
    token = admin.accounts.create_token(identity="reader-app", policies=["reader"])
    reader = Client(live.url, token.value)
    with pytest.raises(AccessDenied):
        reader.rotations.start(REF)
    with pytest.raises(AccessDenied):
        reader.rotations.configure(REF, "random")
    assert reader.rotations.status() == []  # sees no rotation it may not list
    assert admin.get(REF).value.reveal() == INITIAL
    reader.close()
    admin.close()


def test_the_cli_rotates_through_a_server(
    live: Live, tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = Client(live.url, live.token)
    client.create_project("payments")
    client.set(REF, SecretValue(INITIAL))
    client.close()
    monkeypatch.setenv("SEALBOX_ADDR", live.url)
    monkeypatch.setenv("SEALBOX_TOKEN", live.token)
    path = REF.path
    assert cli("rotation", "configure", path, "--method", "random").status == 0
    r = cli("rotate", path, "--json")
    assert r.status == 0, r.err
    assert json.loads(r.out)["state"] == "succeeded"
    r = cli("rotation", "history", path, "--json")
    assert [x["state"] for x in json.loads(r.out)] == ["succeeded"]
    r = cli("secret", "get", path, "--stage", "previous")
    assert (r.status, r.out) == (0, INITIAL)
    assert cli("secret", "get", path, "--stage", "pending").status == 3


def test_metrics_show_failed_rotations(live: Live, tmp_path: Path) -> None:
    import urllib.request

    client = Client(live.url, live.token)
    _, control = _file_setup(client, tmp_path)
    control.write_text(json.dumps({"refuse_test": "1"}))
    assert client.rotations.start(REF).state == RotationState.FAILED
    with urllib.request.urlopen(f"{live.url}/metrics", timeout=10) as response:
        text = response.read().decode()
    assert "sealbox_rotations_failed 1.0" in text
    assert "sealbox_rotation_oldest_due_seconds 0.0" in text
    assert REF.name not in text  # counts, never names
    client.close()


def test_due_list_and_doctor_through_a_server(
    live: Live, tmp_path: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = Client(live.url, live.token)
    _, control = _file_setup(client, tmp_path)
    assert client.rotations.due() == []
    control.write_text(json.dumps({"refuse_test": "1"}))
    failed = client.rotations.start(REF)
    client.close()
    monkeypatch.setenv("SEALBOX_ADDR", live.url)
    monkeypatch.setenv("SEALBOX_TOKEN", live.token)
    r = cli("doctor", "--json")
    warnings = [f["message"] for f in json.loads(r.out) if f["check"] == "rotation"]
    assert len(warnings) == 1 and failed.id in warnings[0]


def test_rotate_alone_cannot_make_the_server_run_a_program_or_post_anywhere(
    live: Live, tmp_path: Path
) -> None:
    """A token allowed to rotate a secret may configure the random rotator, but not one
    that runs programs on the server's host (command; webhook with programs), and not a
    notify URL the server would POST to: those need admin (sys/rotators/<method>, the
    secret). Refused before anything is stored; an admin may."""
    admin = Client(live.url, live.token)
    admin.create_project("payments")
    admin.set(REF, SecretValue(INITIAL))
    admin.accounts.apply_policy(
        parse_policy(
            {
                "name": "rotator",
                "rules": [{"path": "payments/*/*", "capabilities": ["read", "list", "rotate"]}],
            }
        )
    )
    admin.accounts.create_machine("rotator-app", ["rotator"])
    token = admin.accounts.create_token(identity="rotator-app", policies=["rotator"])
    rotator = Client(live.url, token.value)
    marker = tmp_path / "ran"
    program = f"/usr/bin/touch {marker}"
    with pytest.raises(AccessDenied, match="sys/rotators/command"):
        rotator.rotations.configure(REF, "command", options={"set": program, "test": program})
    with pytest.raises(AccessDenied, match="sys/rotators/webhook"):
        rotator.rotations.configure(REF, "webhook", options={"set": program})
    with pytest.raises(AccessDenied):
        rotator.rotations.configure(REF, "random", notify_url="http://127.0.0.1:9/hook")
    assert admin.rotations.config(REF) is None and not marker.exists()
    rotator.rotations.configure(REF, "random")  # no program, no URL: rotate suffices
    rotator.rotations.configure(REF, "webhook")  # a webhook secret without programs too
    admin.rotations.configure(REF, "command", options={"set": program, "test": program})
    assert admin.rotations.config(REF) is not None
    rotator.close()
    admin.close()
