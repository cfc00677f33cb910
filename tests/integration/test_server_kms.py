"""``GET /v1/sys/kms`` (the key providers' status) through a server: the SDK's
``Client.kms_status`` and ``sealbox kms status`` in remote mode; admin on sys/kms."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from tests.cli_harness import Cli
from tests.unit.client.live import Live, live_server

from sealbox.auth.policy import parse_policy
from sealbox.client import Client
from sealbox.errors import AccessDenied
from sealbox.wire.kms import decode_status, encode_status


@pytest.fixture
def live(tmp_path: Path) -> Live:
    with live_server(tmp_path) as server:
        yield server  # type: ignore[misc]


def test_status_over_http_sdk_and_remote_cli(
    live: Live, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = Client(live.url, live.token)
    found = client.kms_status()
    assert [p.name for p in found.providers] == ["local"]
    local = found.providers[0]
    assert local.reachable is True and local.opens == local.wraps and not local.missing
    assert found.problems == () and found.keks[0].active
    assert decode_status(encode_status(found)) == found
    quiet = client.kms_status(probe=False)
    assert quiet.providers[0].reachable is None and quiet.providers[0].wraps == local.wraps
    monkeypatch.setenv("SEALBOX_ADDR", live.url)
    monkeypatch.setenv("SEALBOX_TOKEN", live.token)
    r = cli("kms", "status", "--json")
    assert r.status == 0, r.err
    assert json.loads(r.out)["providers"][0]["name"] == "local"
    # Changing providers is an operator command on the vault's host, never remote.
    r = cli("kms", "add", "x", "--kind", "local")
    assert r.status != 0 and "remote mode" in r.err


def test_status_needs_admin_on_sys_kms(live: Live) -> None:
    admin = Client(live.url, live.token)
    admin.create_project("app")
    accounts = admin.accounts
    accounts.apply_policy(
        parse_policy({"name": "reader", "rules": [{"path": "app/**", "capabilities": ["read"]}]})
    )
    accounts.create_machine("bob", ["reader"])
    token = accounts.create_token(identity="bob").value
    with pytest.raises(AccessDenied):
        Client(live.url, token).kms_status()
    req = urllib.request.Request(f"{live.url}/v1/sys/kms?probe=maybe")
    req.add_header("Authorization", f"Bearer {live.token}")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 400
