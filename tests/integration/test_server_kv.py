"""Vault KV v2 compatibility: the unmodified hvac client against a real uvicorn server on a
loopback port, on the one data model (a KV document is a folder's secrets)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import pytest

from sealbox.cli.main import main
from sealbox.factory import bootstrap_server, open_vault
from sealbox.model import SecretRef, SecretValue
from sealbox.server.app import create_app
from sealbox.server.settings import ServerSettings
from sealbox.server.testing import running


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
    # created_time of the write is what a read returns.
    assert got["data"]["metadata"]["created_time"] == r["data"]["created_time"]
    kv(live).create_or_update_secret("payments/prod/stripe", secret={"api_key": "sk_live_3"})
    old = kv(live).read_secret_version(
        "payments/prod/stripe", version=1, raise_on_deleted_version=True
    )
    assert old["data"]["data"] == fields
    # The document is the folder payments/prod:stripe; each key a plain secret.
    vault = open_vault()
    try:
        assert vault.get(SecretRef.parse("payments/prod/stripe/api_key")).value.reveal() == (
            "sk_live_3"
        )
        assert vault.list_secrets("payments", "prod:stripe")[0].ref.name == "api_key"
        assert vault.info(SecretRef("payments", "prod:stripe", "webhook")).deleted_at is not None
    finally:
        vault.close()


@pytest.mark.parametrize(
    "path", ["myapp", "myapp/config", "MyApp/Prod/DB", "a/b/c/d/e/f", "api.example.com/x_y"]
)
def test_any_depth_and_upper_case_paths(live: Live, path: str) -> None:
    kv(live).create_or_update_secret(path, secret={"k": path})
    got = kv(live).read_secret_version(path, raise_on_deleted_version=True)
    assert got["data"]["data"] == {"k": path}


def test_hvac_cas_mismatch_is_invalid_request(live: Live) -> None:
    kv(live).create_or_update_secret("payments/dev/cas", secret={"a": "1"}, cas=0)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="check-and-set"):
        kv(live).create_or_update_secret("payments/dev/cas", secret={"a": "2"}, cas=0)
    kv(live).create_or_update_secret("payments/dev/cas", secret={"a": "2"}, cas=1)
    kv(live).update_metadata("payments/dev/cas", cas_required=True)
    with pytest.raises(hvac.exceptions.InvalidRequest, match="required"):
        kv(live).create_or_update_secret("payments/dev/cas", secret={"a": "3"})


def test_hvac_list_secrets(live: Live) -> None:
    for rest in ("db", "api/stripe", "api/github", "api/deep/x"):
        kv(live).create_or_update_secret(f"payments/prod/{rest}", secret={"v": "1"})
    keys = kv(live).list_secrets("payments/prod")["data"]["keys"]
    assert keys == ["api/", "db"]
    keys = kv(live).list_secrets("payments/prod/api")["data"]["keys"]
    assert keys == ["deep/", "github", "stripe"]
    assert kv(live).list_secrets("payments")["data"]["keys"] == ["prod/"]
    assert kv(live).list_secrets("")["data"]["keys"] == ["payments/"]
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv(live).list_secrets("payments/dev/nothing")


def test_hvac_metadata_settings_and_custom_metadata(live: Live) -> None:
    path = "payments/prod/meta"
    kv(live).create_or_update_secret(path, secret={"v": "1"})
    kv(live).create_or_update_secret(path, secret={"v": "2"})
    kv(live).update_metadata(
        path,
        max_versions=5,
        delete_version_after="1h30m",
        custom_metadata={"owner": "team-a", "managed-by": "terraform"},
    )
    meta = kv(live).read_secret_metadata(path)["data"]
    assert (meta["current_version"], meta["oldest_version"], meta["max_versions"]) == (2, 1, 5)
    assert meta["delete_version_after"] == "1h30m0s"
    assert set(meta["versions"]) == {"1", "2"}
    assert meta["versions"]["2"]["deletion_time"] != ""  # created + delete_version_after
    assert meta["custom_metadata"] == {"owner": "team-a", "managed-by": "terraform"}
    got = kv(live).read_secret_version(path, raise_on_deleted_version=True)
    assert got["data"]["metadata"]["custom_metadata"] == meta["custom_metadata"]
    vault = open_vault()
    try:  # owner is an inventory field: the folder's secrets have it
        assert vault.info(SecretRef("payments", "prod:meta", "v")).meta.owner == "team-a"
    finally:
        vault.close()


def test_hvac_delete_undelete_destroy_per_version(live: Live) -> None:
    path = "payments/prod/lifecycle"
    for n in (1, 2, 3):
        kv(live).create_or_update_secret(path, secret={"v": str(n)})
    kv(live).delete_latest_version_of_secret(path)
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv(live).read_secret_version(path, raise_on_deleted_version=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        deleted = kv(live).read_secret_version(path, raise_on_deleted_version=False)
    assert deleted["data"]["metadata"]["deletion_time"] != ""
    # Any live version reads whatever the latest's state.
    old = kv(live).read_secret_version(path, version=2, raise_on_deleted_version=True)
    assert old["data"]["data"] == {"v": "2"}
    kv(live).undelete_secret_versions(path, versions=[3])
    kv(live).delete_secret_versions(path, versions=[1])
    kv(live).destroy_secret_versions(path, versions=[2])
    versions = kv(live).read_secret_metadata(path)["data"]["versions"]
    assert [(v["deletion_time"] != "", v["destroyed"]) for v in versions.values()] == [
        (True, False),
        (False, True),
        (False, False),
    ]
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv(live).read_secret_version(path, version=2, raise_on_deleted_version=True)
    # Destroying every version keeps the metadata, as in Vault.
    kv(live).destroy_secret_versions(path, versions=[1, 3])
    assert kv(live).read_secret_metadata(path)["data"]["current_version"] == 3
    kv(live).delete_metadata_and_all_versions(path)
    with pytest.raises(hvac.exceptions.InvalidPath):
        kv(live).read_secret_metadata(path)


def test_hvac_max_versions_prunes_and_mount_configuration(live: Live) -> None:
    path = "payments/dev/pruned"
    kv(live).configure(max_versions=2, cas_required=False)
    assert kv(live).read_configuration()["data"] == {
        "cas_required": False,
        "delete_version_after": "0s",
        "max_versions": 2,
        "metadata_cas_required": False,
    }
    for n in range(1, 5):
        kv(live).create_or_update_secret(path, secret={"v": str(n)})
    meta = kv(live).read_secret_metadata(path)["data"]
    assert (meta["oldest_version"], sorted(meta["versions"])) == (3, ["3", "4"])
    kv(live).configure(max_versions=0)


def test_hvac_patch_is_a_merge(live: Live) -> None:
    path = "payments/dev/patched"
    kv(live).create_or_update_secret(path, secret={"a": "1", "b": "2"})
    kv(live).patch(path, secret={"b": "3", "c": "4"})
    got = kv(live).read_secret_version(path, raise_on_deleted_version=True)
    assert got["data"]["data"] == {"a": "1", "b": "3", "c": "4"}


def test_kv_and_the_cli_see_the_same_secrets_both_ways(live: Live) -> None:
    kv(live).create_or_update_secret("payments/prod", secret={"DB_URL": "postgres://p", "n": 1})
    vault = open_vault()
    try:
        assert vault.get(SecretRef("payments", "prod", "DB_URL")).value.reveal() == "postgres://p"
        vault.set(SecretRef("payments", "prod", "TOKEN"), SecretValue("t\n"))
    finally:
        vault.close()
    got = kv(live).read_secret_version("payments/prod", raise_on_deleted_version=True)
    assert got["data"]["data"] == {"DB_URL": "postgres://p", "n": 1, "TOKEN": "t\n"}
    assert got["data"]["metadata"]["version"] == 2


def test_kv_write_creates_folders_for_writers_and_projects_for_admins(live: Live) -> None:
    admin = live.client()
    kv(live).create_or_update_secret("newproj/qa/thing", secret={"v": "1"})
    assert kv(live).read_secret_version("newproj/qa/thing", raise_on_deleted_version=True)
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
    writer.create_or_update_secret("payments/new/folder", secret={"v": "1"})
    assert "new:folder" in admin.adapter.get("/v1/projects/payments/envs")["environments"]
    with pytest.raises(hvac.exceptions.Forbidden):
        writer.create_or_update_secret("elsewhere/x", secret={"v": "1"})
    assert "elsewhere" not in admin.adapter.get("/v1/projects")["projects"]


def test_kv_errors_are_vault_shaped(live: Live) -> None:
    import httpx2

    h = {"X-Vault-Token": live.token}
    r = httpx2.get(f"{live.url}/v1/secret/data/payments/dev/missing", headers=h)
    assert r.status_code == 404
    assert isinstance(r.json()["errors"], list)
    r = httpx2.get(f"{live.url}/v1/secret/data/payments/bad%20segment", headers=h)
    assert r.status_code == 400
    assert "bad segment" in r.json()["errors"][0]
    r = httpx2.post(f"{live.url}/v1/secret/data/payments/dev/x", headers=h, json={"dta": {}})
    assert r.status_code == 400
    assert "dta" in r.json()["errors"][0]
    r = httpx2.post(
        f"{live.url}/v1/secret/data/payments/dev/x", headers=h, json={"data": {"a b": "1"}}
    )
    assert r.status_code == 400 and "'a b'" in r.json()["errors"][0]
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
    r = httpx2.patch(url, headers=h, json={"data": {"x": "1"}})
    assert r.status_code == 415 and "merge-patch" in r.json()["errors"][0]
    r = httpx2.patch(url, headers={**h, **MERGE}, json={"data": {"x": "1"}, "options": {"cas": 1}})
    assert r.status_code == 400 and "check-and-set" in r.json()["errors"][0]
    r = httpx2.patch(url, headers={**h, **MERGE}, json={"data": "not fields"})
    assert r.status_code == 400
    assert kv(live).read_secret_metadata("payments/dev/merge")["data"]["current_version"] == 2


def test_kv_patch_needs_read_as_well_as_write(live: Live) -> None:
    import httpx2

    admin = live.client()
    kv(live).create_or_update_secret("payments/dev/guarded", secret={"v": "1"})
    admin.adapter.put(
        "/v1/policies/blind-writer",
        json={"rules": [{"path": "payments/dev:guarded/*", "capabilities": ["write"]}]},
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


def test_kv_metadata_refuses_bad_settings(live: Live) -> None:
    import httpx2

    h = {"X-Vault-Token": live.token}
    url = f"{live.url}/v1/secret/metadata/payments/prod/inventory"
    bad = [
        ({"custom_metadata": {"rotate_every_days": "monthly"}}, "number of days"),
        ({"custom_metadata": {"owner": 7}}, "string"),
        ({"cas_required": "maybe"}, "true or false"),
        ({"delete_version_after": "one day"}, "duration"),
        ({"max_versions": -1}, "number of versions"),
    ]
    for body, words in bad:
        r = httpx2.post(url, headers=h, json=body)
        assert (r.status_code, words in r.json()["errors"][0]) == (400, True), (body, r.text)
