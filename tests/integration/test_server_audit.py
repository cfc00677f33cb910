"""Server requests leave audit events that say who, from where, through which request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from sealbox.cli.main import main
from sealbox.factory import bootstrap_server, open_vault
from sealbox.model import SecretRef
from sealbox.server.app import create_app
from sealbox.server.settings import ServerSettings

CANARY = "server-audit-canary-19c2"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    assert main(["init", "--key-file", str(tmp_path / "master.key")]) == 0
    _, token = bootstrap_server(admin="admin", password="correct horse battery staple")
    settings = ServerSettings(audit_node="node-a")
    vault = open_vault(source="api", audit_node=settings.node)
    with TestClient(create_app(vault, settings), raise_server_exceptions=False) as client:
        yield client, token.value
    vault.close()


def test_read_event_names_identity_address_agent_request_and_node(
    server: tuple[TestClient, str],
) -> None:
    client, token = server
    h = {
        "Authorization": f"Bearer {token}",
        "User-Agent": "deploy-bot/1.2",
        "X-Request-Id": "req-42",
    }
    assert client.post("/v1/projects", json={"name": "payments"}, headers=h).status_code == 201
    assert (
        client.put("/v1/secrets/payments/prod/DB", json={"value": CANARY}, headers=h).status_code
        == 200
    )
    assert client.get("/v1/secrets/payments/prod/DB", headers=h).status_code == 200

    vault = open_vault()
    events = vault.audit_log(secret=SecretRef("payments", "prod", "DB"), operations=["read"])
    assert events, "the read left no audit event"
    e = events[0]
    flat = repr(e)
    assert e["identity"] == "admin" and e["source"] == "api"
    assert "deploy-bot/1.2" in flat and "req-42" in flat and "testclient" in flat
    assert e.get("node") == "node-a"
    assert CANARY not in flat
    assert token not in flat
