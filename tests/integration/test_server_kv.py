"""Vault KV v2 compatibility: the path mapping, and the unmodified hvac client against a
real uvicorn server on a loopback port."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sealbox.cli.main import main
from sealbox.errors import InvalidInput
from sealbox.factory import bootstrap_server, open_vault
from sealbox.model import NAME_RE, SecretRef
from sealbox.server import kv_names
from sealbox.server.app import create_app
from sealbox.server.settings import ServerSettings
from sealbox.server.testing import running

AWKWARD = [
    "stripe",
    "DATABASE_URL",
    "api-keys/stripe",
    "a/b/c/d",
    "with space",
    "dots.in.name",
    "__dunder__",
    "_5f",
    "__",
    "1starts-with-digit",
    "ünïcødé/ключ",
    "tabs\tand~tildes",
    "trailing_",
    "x" * 200,
]


# -- the name mapping -------------------------------------------------------------------------------
@pytest.mark.parametrize("rest", AWKWARD)
def test_awkward_paths_round_trip(rest: str) -> None:
    name = kv_names.encode(rest)
    assert NAME_RE.match(name)
    SecretRef("p", "e", name)  # a valid sealbox address
    assert kv_names.decode(name) == rest


def test_plain_names_map_to_themselves() -> None:
    assert kv_names.encode("stripe") == "stripe"
    assert kv_names.encode("DATABASE_URL") == "DATABASE_URL"
    assert kv_names.encode("api-keys/stripe") == "__api_2dkeys__stripe"


@pytest.mark.parametrize("rest", ["", "a//b", "a/./b", "../x", "a/", "nul\x00"])
def test_unmappable_paths_are_refused(rest: str) -> None:
    with pytest.raises(InvalidInput):
        kv_names.encode(rest)


SEGMENT = st.text(min_size=1, max_size=12).filter(lambda s: "/" not in s and s not in (".", ".."))


@given(st.lists(SEGMENT.filter(lambda s: "\x00" not in s), min_size=1, max_size=4))
def test_encoding_round_trips_and_is_injective(segments: list[str]) -> None:
    rest = "/".join(segments)
    try:
        name = kv_names.encode(rest)
    except InvalidInput:
        assert len(rest.encode()) * 3 + 2 > 255  # only "too long" may refuse it
        return
    assert NAME_RE.match(name)
    assert kv_names.decode(name) == rest


@given(SEGMENT, SEGMENT)
def test_distinct_paths_get_distinct_names(a: str, b: str) -> None:
    if a != b and "\x00" not in a + b:
        assert kv_names.encode(a) != kv_names.encode(b)


# -- hvac against a running server --------------------------------------------------------------------
@dataclass
class Live:
    url: str
    token: str

    def client(self, token: str | None = None) -> hvac.Client:
        return hvac.Client(url=self.url, token=token or self.token)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    assert main(["init", "--key-file", str(tmp_path / "master.key")]) == 0
    _, token = bootstrap_server(admin="admin", password="correct horse battery staple")
    vault = open_vault(source="api")
    vault.create_project("payments")
    with running(create_app(vault, ServerSettings())) as url:
        yield Live(url, token.value)
    vault.close()


def kv(live: Live) -> Any:
    return live.client().secrets.kv.v2


def test_hvac_create_and_read_round_trip(live: Live) -> None:
    client = live.client()
    assert client.is_authenticated()
    fields = {"api_key": "sk_live_1", "webhook": "whsec_2", "n": 3, "nested": {"a": [1]}}
    r = kv(live).create_or_update_secret("payments/prod/stripe", secret=fields)
    assert r["data"]["version"] == 1
    got = kv(live).read_secret_version("payments/prod/stripe", raise_on_deleted_version=True)
    assert got["data"]["data"] == fields
    assert got["data"]["metadata"]["version"] == 1
    kv(live).create_or_update_secret("payments/prod/stripe", secret={"api_key": "sk_live_3"})
    old = kv(live).read_secret_version(
        "payments/prod/stripe", version=1, raise_on_deleted_version=True
    )
    assert old["data"]["data"] == fields
    # Stored as ONE sealbox secret named from the path, tagged kv2, holding the field map.
    vault = open_vault()
    try:
        info = vault.info(SecretRef("payments", "prod", "stripe"))
        assert "kv2" in info.meta.tags
        assert info.current_version == 2
    finally:
        vault.close()


@pytest.mark.parametrize("rest", ["api-keys/stripe", "a/b/c", "with space/ünï", "__x__"])
def test_hvac_awkward_paths_round_trip(live: Live, rest: str) -> None:
    path = f"payments/dev/{rest}"
    kv(live).create_or_update_secret(path, secret={"k": rest})
    got = kv(live).read_secret_version(path, raise_on_deleted_version=True)
    assert got["data"]["data"] == {"k": rest}


def test_hvac_cas(live: Live) -> None:
    kv(live).create_or_update_secret("payments/dev/cas", secret={"a": "1"}, cas=0)
    with pytest.raises(hvac.exceptions.VaultError):
        kv(live).create_or_update_secret("payments/dev/cas", secret={"a": "2"}, cas=0)
    kv(live).create_or_update_secret("payments/dev/cas", secret={"a": "2"}, cas=1)


def test_hvac_list_secrets(live: Live) -> None:
    for rest in ("db", "api/stripe", "api/github", "api/deep/x"):
        kv(live).create_or_update_secret(f"payments/prod/{rest}", secret={"v": "1"})
    keys = kv(live).list_secrets("payments/prod")["data"]["keys"]
    assert keys == ["api/", "db"]
    keys = kv(live).list_secrets("payments/prod/api")["data"]["keys"]
    assert keys == ["deep/", "github", "stripe"]
    assert kv(live).list_secrets("payments")["data"]["keys"] == ["dev/", "prod/", "staging/"]
    assert kv(live).list_secrets("")["data"]["keys"] == ["payments/"]
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv(live).list_secrets("payments/dev/nothing")


def test_hvac_read_secret_metadata(live: Live) -> None:
    kv(live).create_or_update_secret("payments/prod/meta", secret={"v": "1"})
    kv(live).create_or_update_secret("payments/prod/meta", secret={"v": "2"})
    meta = kv(live).read_secret_metadata("payments/prod/meta")["data"]
    assert meta["current_version"] == 2
    assert set(meta["versions"]) == {"1", "2"}
    assert meta["versions"]["2"]["deletion_time"] == ""
    assert meta["custom_metadata"] == {"tags": "kv2"}


def test_hvac_delete_undelete_destroy(live: Live) -> None:
    path = "payments/prod/lifecycle"
    kv(live).create_or_update_secret(path, secret={"v": "1"})
    kv(live).delete_latest_version_of_secret(path)
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv(live).read_secret_version(path, raise_on_deleted_version=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        deleted = kv(live).read_secret_version(path, raise_on_deleted_version=False)
    assert deleted["data"]["metadata"]["deletion_time"] != ""
    meta = kv(live).read_secret_metadata(path)["data"]
    assert meta["versions"]["1"]["deletion_time"] != ""
    kv(live).undelete_secret_versions(path, versions=[1])
    got = kv(live).read_secret_version(path, raise_on_deleted_version=True)
    assert got["data"]["data"] == {"v": "1"}
    kv(live).create_or_update_secret(path, secret={"v": "2"})
    with pytest.raises(hvac.exceptions.InvalidRequest):
        kv(live).destroy_secret_versions(path, versions=[1])  # sealbox destroys all at once
    kv(live).destroy_secret_versions(path, versions=[1, 2])
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv(live).read_secret_metadata(path)


def test_hvac_delete_versions_and_metadata(live: Live) -> None:
    path = "payments/prod/versions"
    kv(live).create_or_update_secret(path, secret={"v": "1"})
    kv(live).create_or_update_secret(path, secret={"v": "2"})
    with pytest.raises(hvac.exceptions.InvalidRequest):
        kv(live).delete_secret_versions(path, versions=[1])
    kv(live).delete_secret_versions(path, versions=[2])
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv(live).read_secret_version(path, raise_on_deleted_version=True)
    kv(live).delete_metadata_and_all_versions(path)
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv(live).read_secret_metadata(path)


def test_kv_write_auto_creates_env_only_for_admin(live: Live) -> None:
    admin = live.client()
    # Admin (root): a missing env, even a missing project, is created by the write.
    kv(live).create_or_update_secret("newproj/qa/thing", secret={"v": "1"})
    assert kv(live).read_secret_version("newproj/qa/thing", raise_on_deleted_version=True)
    # A writer without admin gets a clear 404 and nothing is created.
    admin.adapter.put(
        "/v1/policies/writer",
        json={"rules": [{"path": "payments/**", "capabilities": ["read", "write", "list"]}]},
    )
    admin.adapter.post(
        "/v1/identities",
        json={
            "name": "writer",
            "kind": "person",
            "password": "writer password",
            "policies": ["writer"],
        },
    )
    token = admin.adapter.post("/v1/tokens", json={"identity": "writer"})["token"]
    writer = live.client(token).secrets.kv.v2
    writer.create_or_update_secret("payments/dev/ok", secret={"v": "1"})
    with pytest.raises(hvac.exceptions.InvalidPath) as exc:
        writer.create_or_update_secret("payments/nope/x", secret={"v": "1"})
    assert "admin" in str(exc.value)
    assert "nope" not in admin.adapter.get("/v1/projects/payments/envs")["environments"]


def test_kv_errors_are_vault_shaped(live: Live) -> None:
    import httpx2

    h = {"X-Vault-Token": live.token}
    r = httpx2.get(f"{live.url}/v1/secret/data/payments/dev/missing", headers=h)
    assert r.status_code == 404
    assert isinstance(r.json()["errors"], list)
    r = httpx2.get(f"{live.url}/v1/secret/data/toofew", headers=h)
    assert r.status_code == 400
    assert "<project>/<env>/<name" in r.json()["errors"][0]
    r = httpx2.post(f"{live.url}/v1/secret/data/payments/dev/x", headers=h, json={"dta": {}})
    assert r.status_code == 400
    assert "dta" in r.json()["errors"][0]
    r = httpx2.get(f"{live.url}/v1/secret/data/payments/dev/x", headers={"X-Vault-Token": "nope"})
    assert r.status_code == 403  # Vault's answer to a bad token
    assert r.json() == {"errors": ["permission denied"]}
    r = httpx2.get(f"{live.url}/v1/sys/internal/ui/mounts/secret/payments/dev/x", headers=h)
    assert r.json()["data"]["path"] == "secret/"
    assert r.json()["data"]["options"] == {"version": "2"}


def test_any_mount_name_maps_to_the_same_space(live: Live) -> None:
    live.client().secrets.kv.v2.create_or_update_secret(
        "payments/dev/shared", secret={"v": "1"}, mount_point="kv"
    )
    got = kv(live).read_secret_version("payments/dev/shared", raise_on_deleted_version=True)
    assert got["data"]["data"] == {"v": "1"}


def test_mounts_can_be_restricted(tmp_path: Path) -> None:
    assert main(["init", "--key-file", str(tmp_path / "master.key")]) == 0
    _, token = bootstrap_server(admin="admin", password="correct horse battery staple")
    vault = open_vault(source="api")
    vault.create_project("payments")
    with running(create_app(vault, ServerSettings(kv_mounts=("secret",)))) as url:
        client = hvac.Client(url=url, token=token.value)
        client.secrets.kv.v2.create_or_update_secret("payments/dev/a", secret={"v": "1"})
        with pytest.raises(hvac.exceptions.InvalidPath):
            client.secrets.kv.v2.create_or_update_secret(
                "payments/dev/a", secret={"v": "1"}, mount_point="other"
            )
    vault.close()


MERGE = {"Content-Type": "application/merge-patch+json"}


def test_kv_patch_is_a_json_merge_patch_with_cas(live: Live) -> None:
    import httpx2

    h = {"X-Vault-Token": live.token}
    url = f"{live.url}/v1/secret/data/payments/dev/merge"
    fields = {"keep": "k", "drop": "d", "nested": {"a": "1", "b": "2"}}
    kv(live).create_or_update_secret("payments/dev/merge", secret=fields)
    patch = {"data": {"drop": None, "nested": {"b": None, "c": "3"}, "new": "n"}}
    r = httpx2.patch(url, headers={**h, **MERGE}, json=patch)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["version"] == 2
    got = kv(live).read_secret_version("payments/dev/merge", raise_on_deleted_version=True)
    assert got["data"]["data"] == {"keep": "k", "nested": {"a": "1", "c": "3"}, "new": "n"}
    # Not a merge patch: 415, nothing written.
    r = httpx2.patch(url, headers=h, json={"data": {"x": "1"}})
    assert r.status_code == 415 and "merge-patch" in r.json()["errors"][0]
    # A stale check-and-set: 409, nothing written.
    r = httpx2.patch(url, headers={**h, **MERGE}, json={"data": {"x": "1"}, "options": {"cas": 1}})
    assert r.status_code == 409
    r = httpx2.patch(url, headers={**h, **MERGE}, json={"data": "not fields"})
    assert r.status_code == 400
    assert kv(live).read_secret_metadata("payments/dev/merge")["data"]["current_version"] == 2


def test_kv_patch_needs_read_as_well_as_write(live: Live) -> None:
    import httpx2

    admin = live.client()
    kv(live).create_or_update_secret("payments/dev/guarded", secret={"v": "1"})
    admin.adapter.put(
        "/v1/policies/blind-writer",
        json={"rules": [{"path": "payments/dev/*", "capabilities": ["write"]}]},
    )
    admin.adapter.post(
        "/v1/identities",
        json={"name": "blind", "kind": "person", "password": "blind password!", "policies": [
            "blind-writer"
        ]},
    )  # fmt: skip
    token = admin.adapter.post("/v1/tokens", json={"identity": "blind"})["token"]
    r = httpx2.patch(
        f"{live.url}/v1/secret/data/payments/dev/guarded",
        headers={"X-Vault-Token": token, **MERGE},
        json={"data": {"v": "2"}},
    )
    assert r.status_code == 403
    got = kv(live).read_secret_version("payments/dev/guarded", raise_on_deleted_version=True)
    assert got["data"]["data"] == {"v": "1"}


def test_kv_metadata_writes_map_custom_metadata_onto_the_inventory(live: Live) -> None:
    import httpx2

    h = {"X-Vault-Token": live.token}
    path = "payments/prod/inventory"
    kv(live).create_or_update_secret(path, secret={"v": "1"})
    # hvac's update_metadata (a POST that always sends delete_version_after "0s").
    kv(live).update_metadata(path, custom_metadata={"owner": "team-a", "rotate_every_days": "30"})
    meta = kv(live).read_secret_metadata(path)["data"]["custom_metadata"]
    assert meta == {"owner": "team-a", "rotate_every_days": "30", "tags": "kv2"}
    url = f"{live.url}/v1/secret/metadata/{path}"
    r = httpx2.patch(url, headers={**h, **MERGE}, json={"custom_metadata": {"owner": ""}})
    assert r.status_code == 204
    vault = open_vault()
    try:
        info = vault.info(SecretRef("payments", "prod", "inventory"))
        assert info.meta.owner is None and info.meta.rotate_every_days == 30
    finally:
        vault.close()
    bad = [
        ({"custom_metadata": {"colour": "blue"}}, 400, "inventory field"),
        ({"custom_metadata": {"rotate_every_days": "monthly"}}, 400, "number of days"),
        ({"custom_metadata": {"owner": 7}}, 400, "string"),
        ({"cas_required": True}, 400, "options.cas"),
        ({"delete_version_after": "24h"}, 400, "do not expire"),
        ({"max_versions": 3}, 400, "keeps every version"),
    ]
    for body, status, words in bad:
        r = httpx2.post(url, headers=h, json=body)
        assert (r.status_code, words in r.json()["errors"][0]) == (status, True), (body, r.text)
    r = httpx2.post(f"{live.url}/v1/secret/metadata/payments/prod/absent", headers=h, json={})
    assert r.status_code == 404
