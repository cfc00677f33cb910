"""External Secrets Operator's Vault provider, replayed request by request against sealbox.

The sequences are those of ESO's ``providers/v1/vault`` (auth.go's token check,
client_get.go, client_get_all_secrets.go, client_push.go): the same methods (the Vault Go
client writes with PUT and lists with LIST), paths, bodies and the fields ESO reads from
each answer. A KV store with ``checkAndSet.required``, path ``secret``, version v2.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from sealbox.cli.main import main
from sealbox.factory import bootstrap_server, open_vault
from sealbox.server.app import create_app
from sealbox.server.settings import ServerSettings
from sealbox.server.testing import running

MANAGED = {"managed-by": "external-secrets"}


@dataclass
class Eso:
    """ESO's Vault client: one token, Vault's headers."""

    url: str
    token: str

    def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        headers = {"X-Vault-Token": self.token, "X-Vault-Request": "true"}
        return httpx.request(method, f"{self.url}/v1/{path}", json=body, headers=headers)

    def read(self, path: str) -> dict[str, Any] | None:
        """``logical.ReadWithData``: None on a 404 (the Go client's "no secret")."""
        r = self.call("GET", path)
        if r.status_code == 404:
            return None
        assert r.status_code == 200, (path, r.text)
        data: dict[str, Any] = r.json()["data"]
        return data

    def write(self, path: str, body: dict[str, Any]) -> None:
        r = self.call("PUT", path, body)
        assert r.status_code in (200, 204), (path, r.text)

    def list(self, path: str) -> list[str] | None:
        r = self.call("LIST", path)
        if r.status_code == 404:
            return None
        assert r.status_code == 200, (path, r.text)
        keys: list[str] = r.json()["data"]["keys"]
        return keys

    # -- the provider's operations ----------------------------------------------------------
    def check_token(self) -> None:
        """auth.go checkToken: lookup-self, its ``type`` and ``ttl`` (a json.Number)."""
        data = self.read("auth/token/lookup-self")
        assert data is not None
        assert data["type"] != "batch"
        assert isinstance(data["ttl"], int) and (data["ttl"] == 0 or data["ttl"] >= 60)

    def get_secret(self, key: str, version: str = "") -> dict[str, Any] | None:
        path = f"secret/data/{key}" + (f"?version={version}" if version else "")
        data = self.read(path)
        if data is None:
            return None
        fields: dict[str, Any] | None = data["data"]
        return fields

    def metadata(self, key: str) -> dict[str, str] | None:
        data = self.read(f"secret/metadata/{key}")
        if data is None:
            return None
        return data["custom_metadata"] or {}

    def list_secrets(self, path: str) -> list[str]:
        """client_get_all_secrets.go listSecrets: LIST, recursing into ``name/``; a folder
        that answers 404 is an error there."""
        keys = self.list(f"secret/metadata/{path}")
        assert keys is not None, f"LIST secret/metadata/{path}: 404 (ESO: NoSecretError)"
        out: list[str] = []
        for key in keys:
            full = path + key
            out.extend(self.list_secrets(full) if key.endswith("/") else [full])
        return out

    def find_by_tags(self, path: str, tags: dict[str, str]) -> dict[str, dict[str, Any]]:
        found = {}
        for name in self.list_secrets(path + "/"):
            meta = self.metadata(name) or {}
            if all(meta.get(k) == v for k, v in tags.items()):
                secret = self.get_secret(name)
                if secret is not None:
                    found[name] = secret
        return found

    def push(self, key: str, fields: dict[str, Any]) -> str:
        """client_push.go pushSecretKV2 with checkAndSet required; what it did."""
        existing = self.get_secret(key)
        exists = existing is not None
        remote: dict[str, str] = {}
        if exists:
            remote = self.metadata(key) or {}
            if remote.get("managed-by") != "external-secrets":
                return "refused: secret not managed by external-secrets"
        data_changed = existing != fields
        wanted = {**remote, **MANAGED}
        meta_changed = not exists or wanted != remote
        if not data_changed and not meta_changed:
            return "unchanged"
        if meta_changed:
            self.write(f"secret/metadata/{key}", {"custom_metadata": wanted})
        if data_changed:
            cas = 0
            if exists:
                meta = self.read(f"secret/metadata/{key}")
                assert meta is not None
                cas = int(meta["current_version"])
            self.write(f"secret/data/{key}", {"data": fields, "options": {"cas": cas}})
        return "written"

    def delete(self, key: str) -> str:
        """client_push.go DeleteSecret (a whole secret)."""
        if self.get_secret(key) is None:
            return "absent"
        if (self.metadata(key) or {}).get("managed-by") != "external-secrets":
            return "not managed"
        assert self.call("DELETE", f"secret/data/{key}").status_code == 204
        assert self.call("DELETE", f"secret/metadata/{key}").status_code == 204
        return "deleted"


@pytest.fixture
def eso(tmp_path: Path) -> Iterator[Eso]:
    assert main(["init", "--key-file", str(tmp_path / "master.key")]) == 0
    _, root = bootstrap_server(admin="admin", password="correct horse battery staple")
    vault = open_vault(source="api")
    with running(create_app(vault, ServerSettings())) as url:
        admin = Eso(url, root.value)
        # What an operator sets up: data, labels, and a policy for ESO (no admin).
        admin.write("secret/data/apps/prod/web", {"data": {"API_KEY": "k1", "port": 8080}})
        admin.write("secret/data/apps/prod/web", {"data": {"API_KEY": "k2", "port": 8080}})
        admin.write("secret/metadata/apps/prod/web", {"custom_metadata": {"team": "web"}})
        admin.write("secret/data/apps/prod/db", {"data": {"DB_URL": "postgres://x"}})
        admin.write("secret/metadata/apps/prod/db", {"custom_metadata": {"team": "data"}})
        admin.write("secret/data/apps/staging/web", {"data": {"API_KEY": "s1"}})
        admin.write("secret/metadata/apps/staging/web", {"custom_metadata": {"team": "web"}})
        admin.write("secret/config", {"cas_required": True})
        policy = {
            "rules": [{"path": "apps/**", "capabilities": ["read", "write", "list", "delete"]}]
        }
        assert admin.call("PUT", "policies/eso", policy).status_code == 200
        assert (
            admin.call(
                "POST", "identities", {"name": "eso", "kind": "machine", "policies": ["eso"]}
            ).status_code
            == 201
        )
        r = admin.call("POST", "tokens", {"identity": "eso"})
        assert r.status_code == 200, r.text
        yield Eso(url, r.json()["token"])
    vault.close()


def test_eso_reads_secrets_versions_and_metadata(eso: Eso) -> None:
    eso.check_token()
    assert eso.get_secret("apps/prod/web") == {"API_KEY": "k2", "port": 8080}
    assert eso.get_secret("apps/prod/web", version="1") == {"API_KEY": "k1", "port": 8080}
    assert eso.metadata("apps/prod/web") == {"team": "web"}
    assert eso.get_secret("apps/prod/absent") is None


def test_eso_finds_secrets_by_tags_through_a_recursive_list(eso: Eso) -> None:
    assert sorted(eso.list_secrets("apps/")) == [
        "apps/prod/db",
        "apps/prod/web",
        "apps/staging/web",
    ]
    found = eso.find_by_tags("apps", {"team": "web"})
    assert found == {
        "apps/prod/web": {"API_KEY": "k2", "port": 8080},
        "apps/staging/web": {"API_KEY": "s1"},
    }


def test_eso_push_secret_creates_updates_and_deletes_what_it_manages(eso: Eso) -> None:
    key = "apps/prod/pushed"
    assert eso.push(key, {"TOKEN": "t1"}) == "written"  # metadata first, then data (cas 0)
    assert eso.metadata(key) == MANAGED
    assert eso.push(key, {"TOKEN": "t1"}) == "unchanged"
    assert eso.push(key, {"TOKEN": "t2"}) == "written"  # cas = current_version
    meta = eso.read(f"secret/metadata/{key}")
    assert meta is not None and meta["current_version"] == 2
    # The same data reaches sealbox run (remote: GET /v1/resolve) as plain variables.
    r = eso.call("GET", "resolve/apps/prod:pushed")
    assert r.status_code == 200, r.text
    assert r.json()["secrets"] == {"TOKEN": "t2"}
    # A secret someone else manages is never overwritten, nor deleted.
    assert eso.push("apps/prod/web", {"API_KEY": "mine"}) == "refused: " + (
        "secret not managed by external-secrets"
    )
    assert eso.delete("apps/prod/web") == "not managed"
    assert eso.get_secret("apps/prod/web") == {"API_KEY": "k2", "port": 8080}
    assert eso.delete(key) == "deleted"
    assert eso.get_secret(key) is None and eso.metadata(key) is None
    r = eso.call("GET", "secrets/apps/prod:pushed?deleted=true")
    assert r.status_code == 200 and r.json()["secrets"] == [], r.text


def test_a_write_without_cas_is_refused_when_the_mount_requires_it(eso: Eso) -> None:
    r = eso.call("PUT", "secret/data/apps/prod/nocas", {"data": {"A": "1"}})
    assert r.status_code == 400
    assert r.json() == {"errors": ["check-and-set parameter required for this call"]}
