"""The postgres rotator through the real engine and the CLI, against a throw-away scram
PostgreSQL cluster: the old password is refused after ``sealbox rotate``, ``--stage
previous`` reads it within grace, ``--dry-run`` changes nothing, an unreachable server
leaves the rotation pending (exit 11) and ``rotation resume`` completes it once the server
is back (the old error no longer shown), a failing test promotes nothing, SIGKILL inside set
then resume agrees with the database, cancelling an alternating rotation after set
gives the idle login its previous password back; the mysql rotator on MariaDB likewise;
and the same through the HTTP API and the SDK."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from tests.cli_harness import Cli
from tests.integration.rotation.test_mysql_rotator import Server
from tests.upstream_servers import (
    Cluster,
    _as_owner,
    mariadb_database,
    postgres_bin,
    scram_cluster,
)

pytestmark = pytest.mark.integration

EXIT_UPSTREAM = 11


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    with scram_cluster() as c:
        yield c


@pytest.fixture
def maria() -> Iterator[Server]:
    with mariadb_database() as db:
        s = Server(db)
        try:
            yield s
        finally:
            for user, host in s.users:
                s.run("DROP USER IF EXISTS %s@%s", (user, host))


def works(cluster: Cluster, user: str, password: str) -> bool:
    try:
        with psycopg.connect(cluster.dsn(user, password), connect_timeout=5):
            return True
    except psycopg.OperationalError as exc:
        assert "password authentication failed" in str(exc)
        return False


def make_role(cluster: Cluster, password: str) -> str:
    role = f"app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
    return role


def pg_ctl(cluster: Cluster, action: str) -> None:
    root = cluster.data.parent
    subprocess.run(
        _as_owner(
            [
                postgres_bin("pg_ctl"), "-D", str(cluster.data), "-l", str(root / "log"), "-w",
                "-o", f"-p {cluster.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off",
                "-m", "fast", action,
            ]
        ),
        check=True, capture_output=True,
    )  # fmt: skip


def configure(cli: Cli, cluster: Cluster, role: str, *extra: str) -> None:
    assert cli("secret", "set", "PG_ADMIN", stdin=cluster.url()).status == 0
    r = cli(
        "rotation", "configure", "DB", "--method", "postgres",
        "--option", "admin=payments/dev/PG_ADMIN", "--option", f"username={role}",
        "--option", "timeout=2", "--grace", "1h", *extra,
    )  # fmt: skip
    assert r.status == 0, r.err


def get(cli: Cli, *args: str) -> str:
    r = cli("secret", "get", "DB", *args)
    assert r.status == 0, r.err
    return r.out.rstrip("\n")


def test_single_user_rotate_then_the_old_password_is_refused(
    keyfile_vault: Path, cli: Cli, cluster: Cluster
) -> None:
    role = make_role(cluster, "old-app-password-1")
    assert cli("secret", "set", "DB", stdin="old-app-password-1").status == 0
    configure(cli, cluster, role)
    r = cli("rotate", "DB", "--dry-run", "--json")
    assert r.status == 0, r.err
    report = json.loads(r.out)
    assert (report["state"], report["test"]) == ("rehearsed", "passed")
    assert get(cli) == "old-app-password-1"
    assert works(cluster, role, "old-app-password-1")  # undone upstream
    r = cli("rotate", "DB", "--json")
    assert r.status == 0, r.err
    new = get(cli)
    assert new != "old-app-password-1" and new not in r.out + r.err
    assert works(cluster, role, new)
    assert not works(cluster, role, "old-app-password-1")
    assert get(cli, "--stage", "previous") == "old-app-password-1"
    history = json.loads(cli("secret", "history", "DB", "--json").out)
    stages = sorted((v["version"], v["stage"]) for v in history)
    assert stages == [(1, "previous"), (2, None), (3, "current")]  # 2: the rehearsal's


def test_unreachable_server_leaves_it_pending_and_resume_completes(
    keyfile_vault: Path, cli: Cli, cluster: Cluster
) -> None:
    role = make_role(cluster, "old-app-password-2")
    assert cli("secret", "set", "DB", stdin="old-app-password-2").status == 0
    configure(cli, cluster, role)
    pg_ctl(cluster, "stop")
    r = cli("rotate", "DB", "--json")
    assert r.status == EXIT_UPSTREAM, r.err
    stuck = json.loads(r.out)
    assert stuck["state"] == "pending" and stuck["error"]
    assert get(cli) == "old-app-password-2"
    pg_ctl(cluster, "start")
    assert works(cluster, role, "old-app-password-2")  # set never reached the server
    r = cli("rotation", "resume", stuck["id"], "--json")
    assert r.status == 0, r.err
    done = json.loads(r.out)
    assert done["state"] == "succeeded" and not done["error"]  # the old error is history
    assert any("earlier error" in n for n in done["notes"])
    assert works(cluster, role, get(cli))
    assert not works(cluster, role, "old-app-password-2")


def test_alternating_cancel_after_set_restores_the_previous_password(
    keyfile_vault: Path, cli: Cli, cluster: Cluster
) -> None:
    role = make_role(cluster, "old-app-password-3")
    assert cli("secret", "set", "DB", stdin=cluster.url(role, "old-app-password-3")).status == 0
    configure(cli, cluster, role, "--option", "strategy=alternating")
    assert cli("rotate", "DB").status == 0  # the clone takes the new password
    assert cli("rotate", "DB").status == 0  # the role takes one: previous is the clone's
    previous = psycopg.conninfo.conninfo_to_dict(get(cli, "--stage", "previous"))
    assert previous["user"] == f"{role}_clone"
    assert works(cluster, f"{role}_clone", str(previous["password"]))
    # A third rotation, cancelled after set: the clone's password is the previous one again.
    pg_ctl(cluster, "stop")
    r = cli("rotate", "DB", "--json")
    assert r.status == EXIT_UPSTREAM
    pg_ctl(cluster, "start")
    r = cli("rotation", "cancel", "DB", "--json")
    assert r.status == 0, r.err
    cancelled = json.loads(r.out)
    assert cancelled["state"] == "cancelled" and not cancelled["error"]
    assert works(cluster, f"{role}_clone", str(previous["password"]))
    current = psycopg.conninfo.conninfo_to_dict(get(cli))
    assert works(cluster, str(current["user"]), str(current["password"]))


def test_a_failing_test_promotes_nothing_and_cancel_restores_upstream(
    keyfile_vault: Path, cli: Cli, cluster: Cluster
) -> None:
    from tests.upstream_servers import _free_port

    role = make_role(cluster, "old-app-password-4")
    assert cli("secret", "set", "DB", stdin="old-app-password-4").status == 0
    # Applications connect elsewhere (option port), where nothing listens: test fails.
    configure(cli, cluster, role, "--option", f"port={_free_port()}")
    r = cli("rotate", "DB", "--json")
    assert r.status == 12, r.err
    failed = json.loads(r.out)
    assert (failed["state"], failed["test"]) == ("failed", "failed")
    assert "does not log in" in failed["error"]
    assert get(cli) == "old-app-password-4"  # nothing promoted
    assert not works(cluster, role, "old-app-password-4")  # set ran upstream
    r = cli("rotation", "cancel", "DB", "--json")
    assert r.status == 0, r.err
    assert not json.loads(r.out)["error"]
    assert works(cluster, role, "old-app-password-4")  # undo put the current one back
    assert cli("secret", "get", "DB", "--stage", "pending").status == 3


def test_killed_inside_set_then_resume_agrees_with_the_database(
    keyfile_vault: Path, cli: Cli, cluster: Cluster
) -> None:
    """SIGKILL a ``sealbox rotate`` whose ALTER ROLE waits on a lock the test holds on the
    role, then ``rotation resume``: one new version, and it is what the database takes."""
    import os
    import shutil
    import signal
    import sys
    import time

    role = make_role(cluster, "old-app-password-5")
    assert cli("secret", "set", "DB", stdin="old-app-password-5").status == 0
    configure(cli, cluster, role)
    cli("rotation", "configure", "DB", "--method", "postgres",
        "--option", "admin=payments/dev/PG_ADMIN", "--option", f"username={role}",
        "--option", "timeout=60")  # fmt: skip
    exe = shutil.which("sealbox", path=os.path.dirname(sys.executable))
    assert exe is not None
    holder = psycopg.connect(cluster.dsn())  # a transaction holding the role's row
    holder.execute(sql.SQL("ALTER ROLE {} CONNECTION LIMIT 50").format(sql.Identifier(role)))
    proc = subprocess.Popen([exe, "rotate", "DB"], env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        with psycopg.connect(cluster.dsn(), autocommit=True) as watch:
            while True:
                row = watch.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query ILIKE 'ALTER ROLE%'"
                ).fetchone()
                if row and row[0]:
                    break
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the rotation never reached set"
                time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        holder.rollback()
        holder.close()
    [stuck] = [
        x for x in json.loads(cli("rotation", "status", "--json").out) if x["state"] == "running"
    ]
    assert stuck["step"] == "set"
    r = cli("rotation", "resume", "DB", "--json")
    assert r.status == 0, r.err
    assert json.loads(r.out)["id"] == stuck["id"]
    history = json.loads(cli("secret", "history", "DB", "--json").out)
    assert sorted((v["version"], v["stage"]) for v in history) == [(1, "previous"), (2, "current")]
    assert works(cluster, role, get(cli))
    assert not works(cluster, role, "old-app-password-5")


def test_mariadb_rotate_dry_run_alternating_and_cancel(
    keyfile_vault: Path, cli: Cli, maria: Server
) -> None:
    user = maria.account(f"app_{uuid.uuid4().hex[:6]}", "old-app-password-6")
    admin = f"mysql://root:@127.0.0.1:3306/{maria.db}"
    assert cli("secret", "set", "MY_ADMIN", stdin=admin).status == 0
    assert cli("secret", "set", "DB", stdin="old-app-password-6").status == 0
    r = cli("rotation", "configure", "DB", "--method", "mysql",
            "--option", "admin=payments/dev/MY_ADMIN", "--option", f"username={user}")  # fmt: skip
    assert r.status == 0, r.err
    assert cli("rotate", "DB", "--dry-run").status == 0
    assert maria.works(user, "old-app-password-6") and get(cli) == "old-app-password-6"
    r = cli("rotate", "DB")
    assert r.status == 0, r.err
    assert maria.works(user, get(cli)) and not maria.works(user, "old-app-password-6")
    assert get(cli, "--stage", "previous") == "old-app-password-6"
    # Alternating on a second secret: the old login keeps working until the next rotation.
    url = f"mysql://{user}:{get(cli)}@127.0.0.1:3306/{maria.db}"
    assert cli("secret", "set", "ALT", stdin=url).status == 0
    r = cli("rotation", "configure", "ALT", "--method", "mysql", "--option", "strategy=alternating",
            "--option", "admin=payments/dev/MY_ADMIN", "--option", f"username={user}")  # fmt: skip
    assert r.status == 0, r.err
    assert cli("rotate", "ALT").status == 0
    assert maria.works(user, get(cli))  # the original's password is untouched
    first = cli("secret", "get", "ALT").out.strip()
    assert cli("rotate", "ALT").status == 0  # the original takes a new password now
    from urllib.parse import unquote, urlsplit

    old = urlsplit(first)
    assert old.username == f"{user}_clone"
    assert maria.works(str(old.username), unquote(old.password or ""))  # previous still works
    # A cancelled third rotation (after its set) gives the clone the previous password back.
    r = cli("rotation", "configure", "ALT", "--method", "mysql", "--option", "strategy=alternating",
            "--option", "admin=payments/dev/MY_ADMIN", "--option", f"username={user}",
            "--option", "port=1")  # fmt: skip
    assert r.status == 0, r.err
    assert cli("rotate", "ALT").status == 12  # test cannot log in on port 1
    assert cli("rotation", "cancel", "ALT").status == 0
    assert maria.works(str(old.username), unquote(old.password or ""))


def test_through_the_http_api_and_the_sdk(tmp_path: Path, cluster: Cluster) -> None:
    from tests.unit.client.live import live_server

    from sealbox.client import Client
    from sealbox.model import RotationState, SecretRef, SecretValue

    role = make_role(cluster, "old-app-password-7")
    ref = SecretRef("payments", "prod", "DB")
    with live_server(tmp_path) as live:
        client = Client(live.url, live.token)
        try:
            client.create_project("payments")
            client.set(SecretRef("payments", "prod", "PG_ADMIN"), SecretValue(cluster.url()))
            client.set(ref, SecretValue("old-app-password-7"))
            options = {"admin": "payments/prod/PG_ADMIN", "username": role, "timeout": "2"}
            client.rotations.configure(ref, "postgres", options=options)
            rehearsal = client.rotations.start(ref, dry_run=True)
            assert (rehearsal.state, rehearsal.tested) == (RotationState.REHEARSED, "passed")
            assert works(cluster, role, "old-app-password-7")
            pg_ctl(cluster, "stop")
            stuck = client.rotations.start(ref)
            assert stuck.state == RotationState.PENDING and stuck.error
            assert client.get(ref).value.reveal() == "old-app-password-7"
            pg_ctl(cluster, "start")
            done = client.rotations.resume(stuck.id)
            assert done.state == RotationState.SUCCEEDED and done.error == ""
            assert client.rotations.get(stuck.id).error == ""
            new = client.get(ref).value.reveal()
            assert works(cluster, role, new) and not works(cluster, role, "old-app-password-7")
            assert client.get(ref, stage="previous").value.reveal() == "old-app-password-7"
        finally:
            client.close()


def test_alternating_cancel_never_puts_back_a_revoked_previous_password(
    keyfile_vault: Path, cli: Cli, cluster: Cluster
) -> None:
    role = make_role(cluster, "old-app-password-8")
    assert cli("secret", "set", "DB", stdin=cluster.url(role, "old-app-password-8")).status == 0
    configure(cli, cluster, role, "--option", "strategy=alternating")
    assert cli("rotate", "DB").status == 0
    assert cli("rotate", "DB").status == 0
    leaked = psycopg.conninfo.conninfo_to_dict(get(cli, "--stage", "previous"))
    history = json.loads(cli("secret", "history", "DB", "--json").out)
    [version] = [v["version"] for v in history if v["stage"] == "previous"]
    assert cli("rotation", "revoke", "DB", str(version)).status == 0
    pg_ctl(cluster, "stop")
    assert cli("rotate", "DB").status == EXIT_UPSTREAM
    pg_ctl(cluster, "start")
    assert works(cluster, str(leaked["user"]), str(leaked["password"]))  # until the cancel
    r = cli("rotation", "cancel", "DB", "--json")
    assert r.status == 0, r.err
    assert any("nobody" in n for n in json.loads(r.out)["notes"])
    assert not works(cluster, str(leaked["user"]), str(leaked["password"]))
    current = psycopg.conninfo.conninfo_to_dict(get(cli))
    assert works(cluster, str(current["user"]), str(current["password"]))
