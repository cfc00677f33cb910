"""``sealbox creds`` / ``sealbox lease`` / ``sealbox run --creds`` driven through the CLI
against the scram PostgreSQL cluster: the commands of docs/dynamic-credentials.md."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import psycopg
import pytest
from tests.cli_harness import Cli
from tests.upstream_servers import Cluster

pytestmark = pytest.mark.integration

ROLE = "payments/prod/db-readonly"
CREATION = (
    "CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"
    ' GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{{name}}";'
)


def can_login(cluster: Cluster, user: str, password: str) -> bool:
    try:
        with psycopg.connect(cluster.dsn(user, password), autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


@pytest.fixture
def role(cli: Cli, keyfile_vault: Path, cluster: Cluster) -> str:
    assert cli("secret", "set", "payments/prod/PG_ADMIN_URL", stdin=cluster.url()).status == 0
    made = cli(
        "creds", "role", "create", ROLE, "--backend", "postgres",
        "--admin", "payments/prod/PG_ADMIN_URL", "--creation", CREATION,
        "--ttl", "1h", "--max-ttl", "24h", "--max-leases", "50",
    )  # fmt: skip
    assert made.status == 0, made.err
    return ROLE


def test_role_commands(cli: Cli, role: str, cluster: Cluster) -> None:
    listed = cli("creds", "role", "list", "--json")
    assert listed.status == 0
    [data] = json.loads(listed.out)
    assert data["path"] == ROLE and data["max_leases"] == 50 and data["ttl"] == 3600
    shown = cli("creds", "role", "show", ROLE)
    assert "payments/prod/PG_ADMIN_URL" in shown.out and "drop the user" in shown.out
    again = cli(
        "creds", "role", "create", ROLE, "--backend", "postgres",
        "--admin", "payments/prod/PG_ADMIN_URL", "--creation", CREATION,
    )  # fmt: skip
    assert again.status != 0 and "--replace" in again.err
    bad = cli(
        "creds", "role", "create", "payments/prod/x", "--backend", "postgres",
        "--admin", "payments/prod/PG_ADMIN_URL", "--creation", "CREATE ROLE \"{{name}}\"",
    )  # fmt: skip
    assert bad.status != 0 and "{{password}}" in bad.err
    worse = cli(
        "creds", "role", "create", "payments/prod/x", "--backend", "postgres",
        "--admin", "payments/prod/PG_ADMIN_URL", "--creation", CREATION, "--ttl", "2d",
    )  # fmt: skip
    assert worse.status != 0 and "longer than its max TTL" in worse.err
    # A role with a live lease cannot be deleted; after its leases go, it can.
    assert cli("creds", ROLE, "--json").status == 0
    refused = cli("creds", "role", "delete", ROLE)
    assert refused.status != 0 and f"sealbox lease revoke --prefix {ROLE}" in refused.err
    assert cli("lease", "revoke", "--prefix", ROLE).status == 0
    assert cli("creds", "role", "delete", ROLE).status == 0
    assert cli("creds", "role", "show", ROLE).status != 0


def test_creds_lease_renew_revoke(cli: Cli, role: str, cluster: Cluster) -> None:
    issued = cli("creds", ROLE, "--ttl", "30m", "--json")
    assert issued.status == 0, issued.err
    cred = json.loads(issued.out)
    assert can_login(cluster, cred["username"], cred["password"])
    lease_id = cred["lease"]["id"]
    text = cli("creds", ROLE)
    assert text.status == 0 and "password" in text.out and "lease_id" in text.out

    listed = cli("lease", "list", "--role", ROLE, "--json")
    assert next(x["id"] for x in json.loads(listed.out)) == lease_id
    assert cred["password"] not in listed.out
    renewed = cli("lease", "renew", lease_id, "--increment", "2h", "--json")
    assert renewed.status == 0 and json.loads(renewed.out)["id"] == lease_id
    past = cli("lease", "renew", lease_id, "--increment", "25h")
    assert past.status != 0 and "would pass its max TTL" in past.err and "--increment" in past.err
    assert cli("lease", "revoke", lease_id).status == 0
    assert not can_login(cluster, cred["username"], cred["password"])
    shown = cli("lease", "show", lease_id, "--json")
    assert json.loads(shown.out)["state"] == "revoked"
    assert cli("lease", "reap", "--json").status == 0
    usage = cli("lease", "revoke")
    assert usage.status != 0 and "LEASE_ID or --prefix" in usage.err


def test_revoke_of_an_unreachable_database_names_force(cli: Cli, role: str) -> None:
    cred = json.loads(cli("creds", ROLE, "--json").out)
    lease_id = cred["lease"]["id"]
    dead = "postgresql://postgres:pw@127.0.0.1:1/postgres"
    assert cli("secret", "set", "payments/prod/PG_ADMIN_URL", stdin=dead).status == 0
    failed = cli("lease", "revoke", lease_id)
    assert failed.status == 11  # UpstreamError
    assert f"sealbox lease revoke {lease_id} --force" in failed.err
    assert cred["password"] not in failed.err and "pw@" not in failed.err
    reaped = cli("lease", "reap")
    assert reaped.status == 0  # backing off: nothing due yet
    assert cli("lease", "revoke", lease_id, "--force").status == 0
    [row] = json.loads(cli("lease", "list", "--all", "--json").out)
    assert row["state"] == "revoked" and row["last_error"].startswith("forced")


def test_run_creds_injects_and_revokes_at_exit(
    cli: Cli, role: str, cluster: Cluster, tmp_path: Path
) -> None:
    out = tmp_path / "child.json"
    script = (
        "import json, os, sys, psycopg;"
        "conn = psycopg.connect(os.environ['DB_URL'], connect_timeout=5);"
        "user = conn.execute('SELECT current_user').fetchone()[0];"
        "json.dump({'user': user, 'name': os.environ['DB_USERNAME'],"
        " 'pw': os.environ['DB_PASSWORD'], 'lease': os.environ['DB_LEASE_ID']},"
        f" open({str(out)!r}, 'w'));"
        "sys.exit(3)"
    )
    ran = cli("run", "--creds", f"DB={ROLE}", "--", sys.executable, "-c", script)
    assert ran.status == 3, ran.err  # the command's status
    seen = json.loads(out.read_text())
    assert seen["user"] == seen["name"]
    assert not can_login(cluster, seen["name"], seen["pw"])  # revoked at exit
    shown = json.loads(cli("lease", "show", seen["lease"], "--json").out)
    assert shown["state"] == "revoked"
    assert seen["pw"] not in ran.err and seen["pw"] not in ran.out


def test_run_creds_refuses_a_malformed_spec_and_a_missing_command(cli: Cli, role: str) -> None:
    bad = cli("run", "--creds", "DB", "--", "true")
    assert bad.status != 0 and "VAR=project/env/role" in bad.err
    missing = cli("run", "--creds", "DB=payments/prod/nope", "--", "true")
    assert missing.status != 0 and "no credentials role payments/prod/nope" in missing.err
    gone = cli("run", "--creds", f"DB={ROLE}", "--", "/no/such/command")
    assert gone.status != 0
    # The lease made for the command that could not start is revoked too.
    assert json.loads(cli("lease", "list", "--json").out) == []


def test_statements_from_a_file_and_stdin(cli: Cli, role: str, tmp_path: Path) -> None:
    sql = tmp_path / "create.sql"
    sql.write_text(CREATION)
    made = cli(
        "creds", "role", "create", "payments/prod/db-file", "--backend", "postgres",
        "--admin", "payments/prod/PG_ADMIN_URL", "--creation", f"@{sql}",
        "--revocation", "-", stdin='DROP ROLE IF EXISTS "{{name}}"',
    )  # fmt: skip
    assert made.status == 0, made.err
    shown = json.loads(cli("creds", "role", "show", "payments/prod/db-file", "--json").out)
    assert shown["creation"] == CREATION.strip()
    assert shown["revocation"] == 'DROP ROLE IF EXISTS "{{name}}"'
    cred = json.loads(cli("creds", "payments/prod/db-file", "--json").out)
    assert cli("lease", "revoke", cred["lease"]["id"]).status == 0
    missing = cli(
        "creds", "role", "create", "payments/prod/db-nofile", "--backend", "postgres",
        "--admin", "payments/prod/PG_ADMIN_URL", "--creation", f"@{tmp_path / 'nope.sql'}",
    )  # fmt: skip
    assert missing.status != 0 and "cannot read" in missing.err


def test_run_creds_renews_the_lease_while_the_command_runs(
    cli: Cli, role: str, tmp_path: Path, keyfile_vault: Path
) -> None:
    made = cli(
        "creds", "role", "create", "payments/prod/db-short", "--backend", "postgres",
        "--admin", "payments/prod/PG_ADMIN_URL", "--creation", CREATION,
        "--ttl", "3s", "--max-ttl", "1h",
    )  # fmt: skip
    assert made.status == 0, made.err
    # The command waits until its lease's expiry moved (read from the vault's table),
    # so nothing here depends on how fast the machine is.
    script = (
        "import os, sqlite3, sys, time\n"
        f"db = sqlite3.connect({str(keyfile_vault / 'vault.db')!r})\n"
        "q = 'SELECT expires_at FROM sb_leases WHERE id = ?'\n"
        "first = db.execute(q, (os.environ['DB_LEASE_ID'],)).fetchone()[0]\n"
        "for _ in range(600):\n"
        "    if db.execute(q, (os.environ['DB_LEASE_ID'],)).fetchone()[0] != first:\n"
        "        sys.exit(0)\n"
        "    time.sleep(0.1)\n"
        "sys.exit(1)\n"
    )
    ran = cli("run", "--creds", "DB=payments/prod/db-short", "--", sys.executable, "-c", script)
    assert ran.status == 0, ran.err
    [lease] = json.loads(cli("lease", "list", "--all", "--json").out)
    assert lease["state"] == "revoked"


def test_an_incident_on_the_admin_login_revokes_its_leases(
    cli: Cli, role: str, cluster: Cluster
) -> None:
    """``sealbox incident ADMIN --rotate``: the users made with the leaked admin login's
    authority are dropped, before the login is rotated (here by the random rotator, a
    stand-in: the postgres rotator's own tests cover rotating a login)."""
    issued = [json.loads(cli("creds", ROLE, "--json").out) for _ in range(2)]
    assert all(can_login(cluster, c["username"], c["password"]) for c in issued)
    assert (
        cli("rotation", "configure", "payments/prod/PG_ADMIN_URL", "--method", "random").status == 0
    )
    r = cli("incident", "payments/prod/PG_ADMIN_URL", "--rotate", "--reason", "INC-9", "--json")
    assert r.status == 0, r.err
    actions = json.loads(r.out)["actions"]
    assert f"revoked 2 lease(s) of {ROLE}" in actions
    assert not any(can_login(cluster, c["username"], c["password"]) for c in issued)
    assert cluster.password not in r.out


def test_the_scheduler_reaps_expired_leases(cli: Cli, role: str, cluster: Cluster) -> None:
    import time

    # NOTE: a few seconds, not one: on a loaded machine a 1 s lease (PostgreSQL's VALID
    # UNTIL) could expire before the first login below is tried.
    cred = json.loads(cli("creds", ROLE, "--ttl", "4s", "--json").out)
    assert can_login(cluster, cred["username"], cred["password"])
    time.sleep(4.5)
    r = cli("scheduler", "--once")
    assert r.status == 0, r.err
    assert "leases: 1 lease(s) revoked, 0 revocation(s) failed" in r.out
    assert not can_login(cluster, cred["username"], cred["password"])
