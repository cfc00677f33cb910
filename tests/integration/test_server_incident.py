"""``sealbox incident`` through a server: ``POST /v1/incident``, the SDK's
``Client.incident`` and the CLI in remote mode. Authorised and audited by the core (admin
on the secret and on sys/audit); the leaked value a request may carry is never answered
nor logged."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from tests.cli_harness import Cli
from tests.unit.client.live import Live, live_server

from sealbox.auth.policy import parse_policy
from sealbox.client import Client
from sealbox.errors import AccessDenied, InvalidInput, NotFound
from sealbox.model import IncidentReport, SecretRef, SecretValue
from sealbox.wire.incident import decode_report, encode_report

REF = SecretRef("payments", "prod", "STRIPE_KEY")
COPY = SecretRef("payments", "dev", "COPY")
OLD = "sk_live_old_4f1e2d3c"
NEW = "sk_live_new_9a8b7c6d"


@pytest.fixture
def live(tmp_path: Path) -> Live:
    with live_server(tmp_path) as server:
        yield server  # type: ignore[misc]


def _setup(live: Live) -> Client:
    """v1 (read once by the admin), v2, a copy of v1's value elsewhere, and metadata."""
    client = Client(live.url, live.token)
    client.create_project("payments")
    client.set(REF, SecretValue(OLD))
    assert client.get(REF, reveal=True).value.reveal() == OLD
    client.set(REF, SecretValue(NEW))
    client.set(COPY, SecretValue(OLD))
    client.update_meta(
        REF,
        owner="payments-team",
        contact="oncall@example.com",
        upstream="stripe",
        depends_on=["checkout-api", "billing-worker"],
    )
    return client


def _post(live: Live, body: Any, *, token: str | None = None, raw: bytes | None = None) -> Any:
    """(status, decoded JSON, raw text) of ``POST /v1/incident``."""
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{live.url}/v1/incident",
        data=data,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token or live.token}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
            return response.status, json.loads(text), text
    except urllib.error.HTTPError as exc:
        text = exc.read().decode()
        return exc.code, json.loads(text), text


def _reader_token(client: Client) -> str:
    """A token that may read and list the secret, but is not admin on it."""
    client.accounts.apply_policy(
        parse_policy(
            {
                "name": "app",
                "rules": [
                    {"path": "payments/*/*", "capabilities": ["read", "list", "rotate"]},
                    {"path": "sys/audit", "capabilities": ["admin"]},
                ],
            }
        )
    )
    client.accounts.create_machine("checkout-api", ["app"])
    return client.accounts.create_token(identity="checkout-api", policies=["app"]).value


def test_the_sdk_assesses_and_the_report_round_trips(live: Live) -> None:
    client = _setup(live)
    report = client.incident(REF, reason="INC-42 key in a log")
    assert isinstance(report, IncidentReport)
    assert (report.ref, report.reason, report.current_version) == (REF, "INC-42 key in a log", 2)
    assert report.affected == (1, 2) and report.value_matched is None
    assert [v for v, _ in report.versions] == [1, 2]
    assert report.meta.contact == "oncall@example.com" and report.meta.owner == "payments-team"
    assert report.redeploy[:2] == ("checkout-api", "billing-worker")
    assert len(report.readers) == 1
    reader = report.readers[0]
    assert (reader.identity, reader.versions, reader.reads) == ("admin", (1,), 1)
    assert reader.remote_addr == "127.0.0.1" and "admin" in report.redeploy
    assert report.actions == ()
    # The codec is the report's own JSON, both ways.
    assert decode_report(encode_report(report)) == report
    log = client.audit_log(operations=["incident.assess"], limit=5)
    assert log and log[0]["reason"] == "INC-42 key in a log" and log[0]["path"] == REF.path
    assert client.get(REF, version=1).version == 1  # an assessment changes nothing
    client.close()


def test_an_exact_leaked_value_is_matched_and_never_answered_or_logged(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    client = _setup(live)
    caplog.set_level(logging.DEBUG)
    status, body, text = _post(live, {"path": REF.path, "reason": "INC-43", "value": OLD})
    assert status == 200, body
    assert body["value_matched"] is True and body["affected_versions"] == [1]
    assert body["also_holding"] == [{"secret": COPY.path, "version": 1}]
    assert [r["identity"] for r in body["readers"]] == ["admin"]
    assert OLD not in text and NEW not in text
    status, body, text = _post(live, {"path": REF.path, "reason": "INC-44", "value": "nope"})
    assert status == 200 and body["value_matched"] is False and body["affected_versions"] == []
    assert body["readers"] == [] and "nope" not in text
    report = client.incident(REF, reason="INC-45", value=SecretValue(OLD))
    assert report.affected == (1,) and report.also_holding == ((COPY.path, 1),)
    lines = json.dumps([{**r.__dict__, "msg": r.getMessage()} for r in caplog.records], default=str)
    assert OLD not in lines and '"route": "/v1/incident"' in lines
    # Nor in the audit trail: the events name the reason, never the value.
    events = client.audit_log(operations=["incident.assess"], limit=10)
    assert len(events) == 3 and OLD not in json.dumps(events)
    client.close()


def test_rotate_rotates_now_and_revokes_every_older_version(live: Live) -> None:
    client = _setup(live)
    client.rotations.configure(REF, "random")
    report = client.incident(REF, reason="INC-46", rotate=True)
    assert report.actions[0].startswith("rotated: version 3 is current (rot_")
    assert report.actions[1] == "revoked versions 1, 2"
    assert report.redeploy[:2] == ("checkout-api", "billing-worker")
    for version in (1, 2):
        with pytest.raises(NotFound, match="revoked"):
            client.get(REF, version=version)
    with pytest.raises(NotFound):
        client.get(REF, stage="previous")
    new = client.get(REF, reveal=True).value.reveal()
    assert client.get(REF).version == 3 and new not in (OLD, NEW)
    assert new not in json.dumps(encode_report(report))
    responded = client.audit_log(operations=["incident.respond"], limit=5)
    assert responded and "revoked versions 1, 2" in responded[0]["reason"]
    client.close()


def test_rotate_without_a_rotation_is_refused_before_any_change(live: Live) -> None:
    client = _setup(live)
    with pytest.raises(InvalidInput, match="no rotation configured"):
        client.incident(REF, reason="INC-47", rotate=True)
    assert client.get(REF, version=1).version == 1 and client.get(REF).version == 2
    client.close()


def test_a_token_without_admin_is_refused_and_nothing_changes(live: Live) -> None:
    admin = _setup(live)
    admin.rotations.configure(REF, "random")
    token = _reader_token(admin)
    reader = Client(live.url, token)
    assert reader.get(REF).version == 2  # it may read the secret, not run an incident on it
    with pytest.raises(AccessDenied):
        reader.incident(REF, reason="INC-48")
    with pytest.raises(AccessDenied):
        reader.incident(REF, reason="INC-48", value=SecretValue(OLD), rotate=True)
    status, body, _ = _post(live, {"path": REF.path, "reason": "x", "rotate": True}, token=token)
    assert status == 403 and body["error"]["code"] == "access_denied"
    # Missing or not, a secret it may not administer is denied alike (no existence oracle).
    with pytest.raises(AccessDenied):
        reader.incident(SecretRef("payments", "prod", "MISSING"), reason="x", rotate=True)
    assert admin.get(REF).version == 2 and admin.get(REF, version=1).version == 1
    assert admin.rotations.history(REF) == []
    # The refusals are audited as denials; no incident was assessed or responded to.
    events = admin.audit_log(operations=["incident.assess", "incident.respond"])
    assert events and {e["outcome"] for e in events} == {"denied"}
    assert {e["identity"] for e in events} == {"checkout-api"}
    reader.close()
    admin.close()


def test_a_missing_secret_is_404_and_malformed_bodies_are_400(live: Live) -> None:
    client = _setup(live)
    missing = SecretRef("payments", "prod", "MISSING")
    with pytest.raises(NotFound):
        client.incident(missing, reason="x")
    with pytest.raises(NotFound):
        client.incident(missing, reason="x", rotate=True)
    bad: list[tuple[Any, str]] = [
        ({"reason": "x"}, "missing field"),
        ({"path": REF.path}, "missing field"),
        ({"path": REF.path, "reason": "   "}, "must say why"),
        ({"path": REF.path, "reason": "x" * 501}, "longer than 500"),
        ({"path": REF.path, "reason": 7}, "must be a string"),
        ({"path": REF.path, "reason": "x", "rotate": "yes"}, "boolean"),
        ({"path": REF.path, "reason": "x", "value": 5}, "must be a string"),
        ({"path": REF.path, "reason": "x", "value": ""}, "is empty"),
        ({"path": REF.path, "reason": "x", "value": "\ud800"}, "surrogate"),
        ({"path": REF.path, "reason": "x", "extra": 1}, "unknown field"),
        ({"path": "not a path", "reason": "x"}, ""),
        ([REF.path], "JSON object"),
    ]
    for body, message in bad:
        status, answer, text = _post(live, body)
        assert status == 400, (body, answer)
        assert message in answer["error"]["message"], (body, answer)
    status, answer, _ = _post(live, None, raw=b'{"path": ')
    assert status == 400
    status, answer, text = _post(live, {"path": REF.path, "reason": "x", "value": OLD, "x": 1})
    assert status == 400 and OLD not in text
    assert client.audit_log(operations=["incident.assess", "incident.respond"]) == []
    client.close()


def test_the_cli_runs_an_incident_through_a_server(
    live: Live, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _setup(live)
    client.rotations.configure(REF, "random")
    reader_token = _reader_token(client)
    client.close()
    monkeypatch.setenv("SEALBOX_ADDR", live.url)
    monkeypatch.setenv("SEALBOX_TOKEN", reader_token)
    denied = cli("incident", REF.path, "--rotate", "--reason", "INC-49")
    assert denied.status == 4, denied.err
    monkeypatch.setenv("SEALBOX_TOKEN", live.token)
    r = cli("incident", REF.path, "--reason", "INC-50", "--json")
    assert r.status == 0, r.err
    report = json.loads(r.out)
    assert report["affected_versions"] == [1, 2] and report["contact"] == "oncall@example.com"
    text = cli("incident", REF.path, "--reason", "INC-50")
    assert text.status == 0, text.err
    assert "oncall@example.com" in text.out and "checkout-api, billing-worker" in text.out
    exact = cli("incident", REF.path, "--value", "-", "--reason", "INC-51", "--json", stdin=OLD)
    assert exact.status == 0, exact.err
    assert json.loads(exact.out)["also_holding"] == [{"secret": COPY.path, "version": 1}]
    assert OLD not in exact.out + exact.err
    missing = cli("incident", "payments/prod/MISSING", "--reason", "x")
    assert missing.status == 3
    r = cli("incident", REF.path, "--rotate", "--reason", "INC-52", "--json")
    assert r.status == 0, r.err
    assert json.loads(r.out)["actions"][1] == "revoked versions 1, 2"
    old = cli("secret", "get", REF.path, "--version", "1")
    assert old.status == 3 and "revoked" in old.err
    new = cli("secret", "get", REF.path).out.strip()
    assert new not in (OLD, NEW) and new not in r.out
