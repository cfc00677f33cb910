"""hvac's ``auth.token`` methods against sealbox and a real OpenBao dev server in the same
run: same status, same keys, same value types (``same_shape``)."""

from __future__ import annotations

from typing import Any

import hvac
import hvac.exceptions
import pytest
from tests.compat.conftest import READER, Peer, same_shape

pytestmark = pytest.mark.integration

#: OpenBao's token ``meta`` and an ``auth`` block's ``metadata`` are null for tokens made
#: without metadata; sealbox's say which identity a token belongs to (a map).
NULLABLE_META = ("data.meta", "auth.metadata")


def child(peer: Peer, **kw: Any) -> dict[str, Any]:
    """A child token of the peer's full-power token with the shared ``reader`` policy."""
    answer: dict[str, Any] = peer.client().auth.token.create(policies=[READER], ttl="1h", **kw)
    return answer


def both(
    sealbox: Peer, openbao: Peer, call: Any, *, ignore: tuple[str, ...] = ()
) -> tuple[Any, Any]:
    ours, theirs = call(sealbox), call(openbao)
    same_shape(ours, theirs, ignore=ignore)
    return ours, theirs


def test_is_authenticated_with_good_and_bad_tokens(sealbox: Peer, openbao: Peer) -> None:
    for peer in (sealbox, openbao):
        assert peer.client().is_authenticated() is True
        assert peer.client(token="not-a-token").is_authenticated() is False
        assert peer.client(token="").is_authenticated() is False


def test_a_bad_token_is_403_permission_denied(sealbox: Peer, openbao: Peer) -> None:
    ours = sealbox.raw("GET", "/v1/auth/token/lookup-self", token="nope")
    theirs = openbao.raw("GET", "/v1/auth/token/lookup-self", token="nope")
    assert ours.status_code == theirs.status_code == 403
    assert ours.json() == theirs.json() == {"errors": ["permission denied"]}


def test_create_and_create_orphan(sealbox: Peer, openbao: Peer) -> None:
    ours, theirs = both(sealbox, openbao, child, ignore=NULLABLE_META)
    assert ours["auth"]["client_token"] and ours["auth"]["orphan"] is False
    assert READER in ours["auth"]["policies"]
    ours, theirs = both(
        sealbox,
        openbao,
        lambda p: p.client().auth.token.create_orphan(policies=[READER], ttl="1h"),
        ignore=NULLABLE_META,
    )
    assert ours["auth"]["orphan"] is theirs["auth"]["orphan"] is True


def test_create_refuses_a_policy_the_caller_lacks(sealbox: Peer) -> None:
    reader = child(sealbox)["auth"]["client_token"]
    with pytest.raises(hvac.exceptions.Forbidden):
        sealbox.client(reader).auth.token.create(policies=[READER, "root"])
    # a subset (here: all of it) is fine
    assert sealbox.client(reader).auth.token.create(policies=[READER])["auth"]["client_token"]


@pytest.mark.parametrize(
    "option",
    [{"num_uses": 3}, {"period": "1h"}, {"role_name": "r"}, {"renewable": False}],
)
def test_create_refuses_options_sealbox_does_not_have(
    sealbox: Peer, option: dict[str, Any]
) -> None:
    r = sealbox.raw("POST", "/v1/auth/token/create", json={"policies": [READER], **option})
    assert r.status_code == 400
    assert next(iter(option)) in r.json()["errors"][0]


def test_lookup_self(sealbox: Peer, openbao: Peer) -> None:
    def call(peer: Peer) -> Any:
        token = child(peer)["auth"]["client_token"]
        return token, peer.client(token).auth.token.lookup_self()

    (token, ours), (_, theirs) = call(sealbox), call(openbao)
    same_shape(ours, theirs, ignore=NULLABLE_META)
    data = ours["data"]
    assert data["id"] == token  # what `bao login` stores
    assert data["type"] == "service" and data["renewable"] is True
    assert 3500 <= data["ttl"] <= 3600 and data["policies"] == [READER]


def test_lookup_and_lookup_accessor(sealbox: Peer, openbao: Peer) -> None:
    def call(peer: Peer) -> Any:
        made = child(peer)["auth"]
        by_token = peer.client().auth.token.lookup(made["client_token"])
        by_accessor = peer.client().auth.token.lookup_accessor(made["accessor"])
        return made, by_token, by_accessor

    (made, ours, ours_acc), (_, theirs, theirs_acc) = call(sealbox), call(openbao)
    same_shape(ours, theirs, ignore=NULLABLE_META)
    same_shape(ours_acc, theirs_acc, ignore=NULLABLE_META)
    assert ours["data"]["id"] == made["client_token"]
    assert ours_acc["data"]["id"] == "" and ours_acc["data"]["accessor"] == made["accessor"]


def test_lookup_of_anothers_token_needs_the_right(sealbox: Peer) -> None:
    first, second = child(sealbox)["auth"], child(sealbox)["auth"]
    with pytest.raises(hvac.exceptions.Forbidden):
        sealbox.client(first["client_token"]).auth.token.lookup(second["client_token"])
    with pytest.raises(hvac.exceptions.Forbidden):
        sealbox.client(first["client_token"]).auth.token.lookup_accessor(second["accessor"])
    # its own, and its own child's, it may look up
    own = sealbox.client(first["client_token"]).auth.token.create(policies=[READER])["auth"]
    mine = sealbox.client(first["client_token"]).auth.token.lookup_accessor(own["accessor"])
    assert mine["data"]["accessor"] == own["accessor"]


def test_renew_self_and_renew(sealbox: Peer, openbao: Peer) -> None:
    def call(peer: Peer) -> Any:
        token = child(peer)["auth"]["client_token"]
        own = peer.client(token).auth.token.renew_self(increment="30m")
        other = peer.client().auth.token.renew(token, increment="20m")
        return own, other

    (ours, ours_other), (theirs, theirs_other) = call(sealbox), call(openbao)
    same_shape(ours, theirs, ignore=NULLABLE_META)
    # sealbox's native keys sit beside Vault's (the SDK reads them)
    same_shape(ours_other, theirs_other, ignore=(*NULLABLE_META, "expires_at", "warnings"))
    assert 1700 <= ours["auth"]["lease_duration"] <= 1800
    assert 1100 <= ours_other["auth"]["lease_duration"] <= 1200


def test_revoke_self_revoke_and_revoke_accessor(sealbox: Peer, openbao: Peer) -> None:
    for peer in (sealbox, openbao):
        one, two, three = (child(peer)["auth"] for _ in range(3))
        assert peer.client(one["client_token"]).auth.token.revoke_self().status_code == 204
        assert peer.client().auth.token.revoke(two["client_token"]).status_code == 204
        assert peer.client().auth.token.revoke_accessor(three["accessor"]).status_code == 204
        for gone in (one, two, three):
            assert peer.client(gone["client_token"]).is_authenticated() is False


def test_an_approle_login_answers_vaults_auth_block(sealbox: Peer, openbao: Peer) -> None:
    """hvac's login helpers read ``auth.client_token`` (and so does ``bao login -method``);
    sealbox's native keys sit beside it, for the SDK."""
    bao = openbao.client()
    bao.sys.enable_auth_method("approle")
    bao.auth.approle.create_or_update_approle("robot", token_policies=[READER])
    theirs_role = bao.auth.approle.read_role_id("robot")["data"]["role_id"]
    theirs_secret = bao.auth.approle.generate_secret_id("robot")["data"]["secret_id"]
    robot = {"name": "robot", "kind": "machine", "policies": [READER]}
    made = sealbox.raw("POST", "/v1/identities", json=robot)
    assert made.status_code in (200, 201), made.text
    ours_role = made.json()["role_id"]
    ours_secret = sealbox.raw("POST", "/v1/identities/robot/secret-ids", json={}).json()
    ours_client, theirs_client = sealbox.client(""), openbao.client("")
    ours = ours_client.auth.approle.login(ours_role, ours_secret["secret_id"])
    theirs = theirs_client.auth.approle.login(theirs_role, theirs_secret)
    same_shape(ours, theirs, ignore=("token", "accessor", "expires_at", "auth.metadata"))
    assert ours["auth"]["client_token"] == ours["token"]
    assert ours_client.is_authenticated() and theirs_client.is_authenticated()
