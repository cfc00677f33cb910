"""Per-version KMS wrapping through the server's read hot path: a version wrapped by a
provider itself is served (through the data-key cache), and that provider's outage is a
503 for that secret only."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient
from tests.unit.kms.fake_remote import REMOTE
from tests.unit.kms.test_per_version import CRIT, _on, vault

from sealbox.factory import bootstrap_server
from sealbox.model import SecretValue
from sealbox.server.app import create_app
from sealbox.server.settings import ServerSettings
from sealbox.vault import Vault

__all__ = ["vault"]  # the fixture


@pytest.fixture
def token(vault: Vault) -> str:
    _, tok = bootstrap_server(admin="admin", password="correct horse battery staple")
    return tok.value


def test_server_hot_path_reads_a_kms_version_and_maps_an_outage_to_503(
    vault: Vault, token: str
) -> None:
    _on(vault)
    vault.set(CRIT, SecretValue(b"served"))
    app = create_app(vault, ServerSettings())
    with TestClient(app, raise_server_exceptions=False) as client:
        headers = {"authorization": f"Bearer {token}"}
        url = "/v1/secrets/payments/prod/SIGNING_KEY?reveal=true"
        ok = client.get(url, headers=headers)
        assert ok.status_code == 200 and "served" in ok.text
        vault._state.drop_data_keys()
        REMOTE.up = False
        down = client.get(url, headers=headers)
        assert down.status_code == 503
        assert client.get("/v1/secrets/payments/prod/API_KEY", headers=headers).status_code == 200
