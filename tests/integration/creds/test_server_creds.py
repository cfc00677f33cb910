"""Dynamic credentials over HTTP with the unmodified hvac client (Vault's database engine
and sys/leases shapes) against a running server and the scram PostgreSQL cluster."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import hvac
import hvac.exceptions
import psycopg
import pytest
from tests.cli_harness import Cli
from tests.integration.creds.conftest import PG_CREATION
from tests.upstream_servers import Cluster

from sealbox.cli.main import main
from sealbox.errors import InvalidInput
from sealbox.factory import bootstrap_server, open_vault
from sealbox.model import SecretRef, SecretValue
from sealbox.server.app import create_app
from sealbox.server.settings import ServerSettings
from sealbox.server.testing import running
from sealbox.vault import Vault

pytestmark = pytest.mark.integration

ROLE = "payments/prod/db-readonly"


@dataclass
class Live:
    url: str
    token: str
    #: Another Vault object on the server's vault (never the server's own, which its
    #: threads use).
    vault: Vault

    def client(self, token: str | None = None) -> hvac.Client:
        return hvac.Client(url=self.url, token=token or self.token)


@pytest.fixture
def live(tmp_path: Path, cluster: Cluster) -> Iterator[Live]:
    assert main(["init", "--key-file", str(tmp_path / "master.key")]) == 0
    _, token = bootstrap_server(admin="admin", password="correct horse battery staple")
    vault = open_vault(source="api")
    vault.create_project("payments")
    vault.set(SecretRef("payments", "prod", "PG_ADMIN_URL"), SecretValue(cluster.url()))
    vault.leases.define_role(
        ROLE,
        backend_name="postgres",
        admin="payments/prod/PG_ADMIN_URL",
        creation=PG_CREATION,
        max_ttl=timedelta(hours=2),
        max_leases=3,
    )
    # The server's vault is the server's: the test works through another view of the
    # same vault (its own connection), as another process would.
    other = open_vault()
    try:
        with running(create_app(vault, ServerSettings())) as url:
            yield Live(url, token.value, other)
    finally:
        other.close()
        vault.close()


def can_login(cluster: Cluster, user: str, password: str) -> bool:
    try:
        with psycopg.connect(cluster.dsn(user, password), autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


def test_hvac_generate_renew_lookup_revoke(live: Live, cluster: Cluster) -> None:
    client = live.client()
    answer = client.secrets.database.generate_credentials(name=ROLE)
    user, password = answer["data"]["username"], answer["data"]["password"]
    lease_id = answer["lease_id"]
    assert answer["renewable"] and answer["lease_duration"] == 3600
    assert can_login(cluster, user, password)

    renewed = client.sys.renew_lease(lease_id=lease_id, increment=600)
    assert renewed["lease_id"] == lease_id and renewed["lease_duration"] == 600
    listed = client.sys.list_leases(ROLE)
    assert listed["data"]["keys"] == [lease_id.rsplit("/", 1)[1]]
    looked = client.sys.read_lease(lease_id=lease_id)
    assert looked["data"]["id"] == lease_id and 0 < looked["data"]["ttl"] <= 600
    with pytest.raises(hvac.exceptions.InvalidRequest):  # past the max TTL (2 h)
        client.sys.renew_lease(lease_id=lease_id, increment="3h")

    client.sys.revoke_lease(lease_id=lease_id)
    assert not can_login(cluster, user, password)
    assert live.vault.leases.get_lease(lease_id).state == "revoked"


def test_hvac_revoke_prefix_and_force(live: Live, cluster: Cluster) -> None:
    client = live.client()
    made = [client.secrets.database.generate_credentials(name=ROLE) for _ in range(2)]
    client.sys.revoke_prefix(ROLE)
    for m in made:
        assert not can_login(cluster, m["data"]["username"], m["data"]["password"])
    stuck = client.secrets.database.generate_credentials(name=ROLE)
    live.vault.set(
        SecretRef("payments", "prod", "PG_ADMIN_URL"),
        SecretValue("postgresql://postgres:pw@127.0.0.1:1/postgres"),
    )
    with pytest.raises(hvac.exceptions.VaultError) as info:  # 502: retried by the reaper
        client.sys.revoke_prefix(ROLE)
    assert "pw@" not in str(info.value)
    client.sys.revoke_force(ROLE)
    assert live.vault.leases.get_lease(stuck["lease_id"]).last_error.startswith("forced")


def test_quota_and_unknown_role_and_denial(live: Live) -> None:
    client = live.client()
    for _ in range(3):
        client.secrets.database.generate_credentials(name=ROLE)
    with pytest.raises(hvac.exceptions.VaultError, match="quota of 3"):
        client.secrets.database.generate_credentials(name=ROLE)
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.secrets.database.generate_credentials(name="payments/prod/nope")
    live.vault.accounts.create_machine("app", [])
    # A token without a policy on the role is refused (403).
    token = live.vault.accounts.create_token(identity="app")
    with pytest.raises(hvac.exceptions.Forbidden):
        live.client(token.value).secrets.database.generate_credentials(name=ROLE)


def test_revoking_the_token_over_http_revokes_its_leases(live: Live, cluster: Cluster) -> None:
    token = live.vault.accounts.create_token(identity="admin")
    client = live.client(token.value)
    answer = client.secrets.database.generate_credentials(name=ROLE)
    assert can_login(cluster, answer["data"]["username"], answer["data"]["password"])
    client.auth.token.revoke_self()
    assert not can_login(cluster, answer["data"]["username"], answer["data"]["password"])
    assert live.vault.leases.get_lease(answer["lease_id"]).state == "revoked"


def test_metrics_show_live_leases_per_role(live: Live) -> None:
    import urllib.request

    live.client().secrets.database.generate_credentials(name=ROLE)
    live.client().secrets.database.generate_credentials(name=ROLE)
    with urllib.request.urlopen(live.url + "/metrics", timeout=10) as answer:
        text = answer.read().decode()
    assert f'sealbox_leases{{role="{ROLE}"}} 2.0' in text
    assert f'sealbox_lease_oldest_age_seconds{{role="{ROLE}"}}' in text


def test_the_sdk_issues_renews_and_revokes(live: Live, cluster: Cluster) -> None:
    from sealbox.client import Client

    with Client(live.url, token=live.token) as client:
        cred = client.leases.issue(ROLE)
        assert cred.url is not None and cred.username in cred.url.reveal()
        assert cred.password.reveal() not in repr(cred)
        assert can_login(cluster, cred.username, cred.password.reveal())
        assert cred.lease.role == ROLE and cred.lease.state == "live"
        renewed = client.leases.renew(cred.lease_id, increment=timedelta(minutes=20))
        assert renewed.expires_at > cred.lease.issued_at
        assert client.leases.get_lease(cred.lease_id).expires_at == renewed.expires_at
        assert client.leases.revoke(cred.lease_id).state == "revoked"
        assert not can_login(cluster, cred.username, cred.password.reveal())
        with pytest.raises(InvalidInput, match="cannot be chosen over HTTP"):
            client.leases.issue(ROLE, ttl=timedelta(minutes=5))


def test_the_cli_in_remote_mode(
    live: Live, cluster: Cluster, cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import json
    import sys

    monkeypatch.setenv("SEALBOX_ADDR", live.url)
    monkeypatch.setenv("SEALBOX_TOKEN", live.token)
    issued = cli("creds", ROLE, "--json")
    assert issued.status == 0, issued.err
    cred = json.loads(issued.out)
    assert can_login(cluster, cred["username"], cred["password"])
    assert cli("lease", "renew", cred["lease"]["id"], "--increment", "10m").status == 0
    assert cli("lease", "revoke", cred["lease"]["id"]).status == 0
    assert not can_login(cluster, cred["username"], cred["password"])
    listed = cli("lease", "list", "--role", ROLE, "--all", "--json")
    assert listed.status == 0, listed.err
    assert [x["id"] for x in json.loads(listed.out)] == [cred["lease"]["id"]]
    assert cred["password"] not in listed.out
    unnamed = cli("lease", "list")
    assert unnamed.status != 0 and "--role" in unnamed.err
    admin_only = cli("lease", "reap")
    assert admin_only.status != 0 and "unset SEALBOX_ADDR" in admin_only.err

    out = tmp_path / "seen"
    script = f"import os; open({str(out)!r}, 'w').write(os.environ['DB_LEASE_ID'])"
    ran = cli(
        "run",
        "-p",
        "payments",
        "-e",
        "prod",
        "--creds",
        f"DB={ROLE}",
        "--",
        sys.executable,
        "-c",
        script,
    )
    assert ran.status == 0, ran.err
    assert live.vault.leases.get_lease(out.read_text()).state == "revoked"


def test_hvac_defines_reads_and_deletes_a_role(live: Live, cluster: Cluster) -> None:
    client = live.client()
    db = client.secrets.database
    db.create_role(
        name="payments/prod/db-report",
        db_name="payments/prod/PG_ADMIN_URL",
        creation_statements=[
            "CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}'",
            'GRANT pg_read_all_data TO "{{name}}"',
        ],
        default_ttl=600,
        max_ttl="2h",
    )
    role = db.read_role(name="payments/prod/db-report")["data"]
    assert role["backend"] == "postgres"  # from the admin URL's scheme
    assert role["default_ttl"] == 600 and role["max_ttl"] == 7200
    assert len(role["creation_statements"]) == 2
    answer = db.generate_credentials(name="payments/prod/db-report")
    assert answer["lease_duration"] == 600
    assert can_login(cluster, answer["data"]["username"], answer["data"]["password"])
    with pytest.raises(hvac.exceptions.VaultError):  # 409: a live lease
        db.delete_role(name="payments/prod/db-report")
    client.sys.revoke_lease(lease_id=answer["lease_id"])
    db.delete_role(name="payments/prod/db-report")
    with pytest.raises(hvac.exceptions.InvalidPath):
        db.read_role(name="payments/prod/db-report")
    with pytest.raises(hvac.exceptions.InvalidRequest, match="rollback statements"):
        db.create_role(
            name="payments/prod/db-x",
            db_name="payments/prod/PG_ADMIN_URL",
            creation_statements=["CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}'"],
            rollback_statements=["DROP ROLE x"],
        )
    with pytest.raises(hvac.exceptions.InvalidRequest, match="must use"):
        db.create_role(
            name="payments/prod/db-x",
            db_name="payments/prod/PG_ADMIN_URL",
            creation_statements=['CREATE ROLE "{{name}}"'],
        )


def test_the_cli_defines_roles_in_remote_mode(
    live: Live, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    monkeypatch.setenv("SEALBOX_ADDR", live.url)
    monkeypatch.setenv("SEALBOX_TOKEN", live.token)
    made = cli(
        "creds", "role", "create", "payments/prod/db-remote",
        "--admin", "payments/prod/PG_ADMIN_URL", "--creation", PG_CREATION,
        "--ttl", "10m", "--max-ttl", "1h", "--max-leases", "2",
    )  # fmt: skip
    assert made.status == 0, made.err
    again = cli(
        "creds", "role", "create", "payments/prod/db-remote",
        "--admin", "payments/prod/PG_ADMIN_URL", "--creation", PG_CREATION,
    )  # fmt: skip
    assert again.status != 0 and "already exists" in again.err
    shown = json.loads(cli("creds", "role", "show", "payments/prod/db-remote", "--json").out)
    assert shown["backend"] == "postgres" and shown["max_leases"] == 2 and shown["ttl"] == 600
    assert live.vault.leases.get_role("payments/prod/db-remote").creation == shown["creation"]
    assert cli("creds", "role", "delete", "payments/prod/db-remote").status == 0
    listing = cli("creds", "role", "list")
    assert listing.status != 0 and "unset SEALBOX_ADDR" in listing.err


def test_an_incident_through_the_sdk_revokes_the_leases_of_its_admin_login(
    live: Live, cluster: Cluster
) -> None:
    """``client.incident(ADMIN, rotate=True)`` (POST /v1/incident): the users made with the
    leaked admin login's authority are dropped on the server, then the login is rotated."""
    from sealbox.client import Client

    admin = SecretRef("payments", "prod", "PG_ADMIN_URL")
    with Client(live.url, token=live.token) as client:
        issued = [client.leases.issue(ROLE) for _ in range(2)]
        assert all(can_login(cluster, c.username, c.password.reveal()) for c in issued)
        client.rotations.configure(admin, "random")
        report = client.incident(admin, reason="INC-9", rotate=True)
        assert f"revoked 2 lease(s) of {ROLE}" in report.actions
        assert report.actions[-1] == "revoked versions 1"
        assert not any(can_login(cluster, c.username, c.password.reveal()) for c in issued)
        assert all(client.leases.get_lease(c.lease_id).state == "revoked" for c in issued)
