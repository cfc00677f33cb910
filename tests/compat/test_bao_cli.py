"""The real ``bao`` CLI against sealbox: login with a token (the stored token is the
token), token lookup/renew/create/revoke, ``status``, ``secrets list``, ``auth list``.

Each test runs ``bao`` with a throw-away HOME, so the token helper's file
(``~/.vault-token``) lands in the test's tmp directory."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.compat.conftest import READER, Peer
from tests.integration.test_server_bao import BAO, Bao, bao_runner

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(BAO is None, reason="the OpenBao CLI is not installed"),
]


@pytest.fixture
def bao(sealbox: Peer, tmp_path: Path) -> Bao:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "BAO_ADDR": sealbox.url,
        "VAULT_ADDR": sealbox.url,
    }

    return bao_runner(env)


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(result.stdout)


def child(sealbox: Peer) -> dict[str, Any]:
    answer: dict[str, Any] = sealbox.client().auth.token.create(policies=[READER], ttl="1h")
    return answer["auth"]


def test_login_stores_the_token_and_lookup_uses_it(bao: Bao, sealbox: Peer, tmp_path: Path) -> None:
    token = child(sealbox)["client_token"]
    bao("login", "-no-print", token)
    assert (tmp_path / ".vault-token").read_text().strip() == token  # not empty
    looked = as_json(bao("token", "lookup", "-format=json"))["data"]
    assert looked["id"] == token and READER in looked["policies"]


def test_login_with_a_bad_token_fails(bao: Bao) -> None:
    assert bao("login", "-no-print", "not-a-token", check=False).returncode != 0


def test_token_renew_and_revoke_self(bao: Bao, sealbox: Peer) -> None:
    token = child(sealbox)["client_token"]
    renewed = as_json(bao("token", "renew", "-format=json", "-increment=30m", token=token))
    assert 1700 <= renewed["auth"]["lease_duration"] <= 1800
    other = child(sealbox)["client_token"]
    bao("token", "renew", other, token=sealbox.token)
    bao("token", "revoke", "-self", token=token)
    assert bao("token", "lookup", token=token, check=False).returncode != 0


def test_token_create_a_subset_but_never_more(bao: Bao, sealbox: Peer) -> None:
    token = child(sealbox)["client_token"]
    made = as_json(bao("token", "create", "-format=json", f"-policy={READER}", token=token))
    assert made["auth"]["client_token"] and made["auth"]["policies"] == [READER]
    refused = bao("token", "create", "-policy=root", token=token, check=False)
    assert refused.returncode != 0 and "403" in refused.stderr


def test_status_secrets_list_and_auth_list(bao: Bao, sealbox: Peer) -> None:
    status = as_json(bao("status", "-format=json"))
    assert status["sealed"] is False and status["initialized"] is True
    mounts = as_json(bao("secrets", "list", "-format=json", token=sealbox.token))
    assert mounts["secret/"]["type"] == "kv" and mounts["secret/"]["options"]["version"] == "2"
    methods = as_json(bao("auth", "list", "-format=json", token=sealbox.token))
    assert methods["token/"]["type"] == "token" and "approle/" in methods


def test_an_approle_login_through_bao_write_answers_a_token(bao: Bao, sealbox: Peer) -> None:
    robot = {"name": "cli-robot", "kind": "machine", "policies": [READER]}
    role_id = sealbox.raw("POST", "/v1/identities", json=robot).json()["role_id"]
    secret_id = sealbox.raw("POST", "/v1/identities/cli-robot/secret-ids", json={}).json()
    answer = as_json(
        bao(
            "write",
            "-format=json",
            "auth/approle/login",
            f"role_id={role_id}",
            f"secret_id={secret_id['secret_id']}",
        )
    )
    token = answer["auth"]["client_token"]
    assert token and answer["auth"]["policies"] == [READER]
    assert as_json(bao("token", "lookup", "-format=json", token=token))["data"]["id"] == token


def test_token_lookup_and_revoke_of_another_by_token_or_accessor(bao: Bao, sealbox: Peer) -> None:
    made = child(sealbox)
    admin = sealbox.token
    by_token = as_json(bao("token", "lookup", "-format=json", made["client_token"], token=admin))
    assert by_token["data"]["accessor"] == made["accessor"]
    by_accessor = as_json(
        bao("token", "lookup", "-format=json", "-accessor", made["accessor"], token=admin)
    )
    assert by_accessor["data"]["id"] == "" and by_accessor["data"]["ttl"] > 0
    # a token without the right may not look another's up
    stranger = child(sealbox)["client_token"]
    refused = bao("token", "lookup", made["client_token"], token=stranger, check=False)
    assert refused.returncode != 0 and "403" in refused.stderr
    bao("token", "revoke", "-accessor", made["accessor"], token=admin)
    other = child(sealbox)["client_token"]
    bao("token", "revoke", other, token=admin)
    for gone in (made["client_token"], other):
        assert bao("token", "lookup", token=gone, check=False).returncode != 0
