"""hvac's ``sys`` readers against sealbox and a real OpenBao dev server: same status,
keys and value types."""

from __future__ import annotations

import pytest
from tests.compat.conftest import READER, Peer, same_shape

pytestmark = pytest.mark.integration


def test_health(sealbox: Peer, openbao: Peer) -> None:
    ours = sealbox.client().sys.read_health_status(method="GET")
    theirs = openbao.client().sys.read_health_status(method="GET")
    same_shape(ours, theirs, ignore=("status", "enterprise", "echo_duration_ms",
                                     "clock_skew_ms", "replication_primary_canary_age_ms"))  # fmt: skip
    assert ours["sealed"] is False and ours["initialized"] is True
    r = sealbox.raw("GET", "/v1/sys/health?activecode=299")
    assert r.status_code == 299


def test_seal_status(sealbox: Peer, openbao: Peer) -> None:
    ours = sealbox.client().sys.read_seal_status()
    theirs = openbao.client().sys.read_seal_status()
    same_shape(ours, theirs, ignore=("build_date",))  # Vault's, beside OpenBao's commit_date


def test_list_mounted_secrets_engines(sealbox: Peer, openbao: Peer) -> None:
    ours = sealbox.client().sys.list_mounted_secrets_engines()
    theirs = openbao.client().sys.list_mounted_secrets_engines()
    assert "secret/" in ours and "secret/" in ours["data"]
    assert ours["secret/"]["options"] == {"version": "2"}
    same_shape(ours["secret/"], theirs["secret/"], ignore=("deprecation_status",))
    same_shape(ours["data"]["sys/"], theirs["data"]["sys/"], ignore=("deprecation_status",))


def test_read_mount_configuration(sealbox: Peer, openbao: Peer) -> None:
    ours = sealbox.client().sys.read_mount_configuration(path="secret")
    theirs = openbao.client().sys.read_mount_configuration(path="secret")
    same_shape(ours, theirs, ignore=("mount_type",))


def test_list_auth_methods(sealbox: Peer, openbao: Peer) -> None:
    ours = sealbox.client().sys.list_auth_methods()
    theirs = openbao.client().sys.list_auth_methods()
    assert {"token/", "approle/", "password/"} <= set(ours["data"])
    same_shape(ours["token/"], theirs["token/"], ignore=("deprecation_status",))


def test_capabilities_self(sealbox: Peer, openbao: Peer) -> None:
    paths = ["secret/data/payments/dev/db", "secret/data/other/dev/db"]

    def call(peer: Peer) -> dict[str, object]:
        token = peer.client().auth.token.create(policies=[READER], ttl="1h")["auth"]["client_token"]
        answer: dict[str, object] = peer.client(token).sys.get_capabilities(paths)
        return answer

    ours, theirs = call(sealbox), call(openbao)
    same_shape(ours, theirs)
    assert ours[paths[0]] == theirs[paths[0]] == ["list", "read"]
    assert ours[paths[1]] == theirs[paths[1]] == ["deny"]
    one = sealbox.client().sys.get_capabilities(paths[:1])
    assert one["capabilities"] == one[paths[0]] == ["root"]
    root = sealbox.client().sys.get_capabilities(paths)
    assert root[paths[1]] == ["root"]
