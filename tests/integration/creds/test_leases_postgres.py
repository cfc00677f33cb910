"""Dynamic credentials on a real scram PostgreSQL cluster: a lease's user logs in, and
stops logging in when the lease is revoked, reaped after expiry, or its token revoked;
renewal stops at the max TTL; the quota holds; revocation failures are retried by the
reaper across restarts; no password reaches an error, an audit event or a repr."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from tests.integration.creds.conftest import PG_CREATION, Clock, reopen
from tests.upstream_servers import Cluster

from sealbox.auth.policy import parse_policy
from sealbox.caller import Actor
from sealbox.errors import AccessDenied, Conflict, InvalidInput, NotFound, UpstreamError
from sealbox.model import SecretRef, SecretValue
from sealbox.vault import Vault
from sealbox.wire.leases import Credential

pytestmark = pytest.mark.integration

ADMIN = SecretRef("payments", "prod", "PG_ADMIN_URL")


def can_login(cluster: Cluster, user: str, password: str) -> bool:
    try:
        with psycopg.connect(cluster.dsn(user, password), autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


def role_exists(cluster: Cluster, user: str) -> bool:
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        return (
            conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
            is not None
        )


def login(cluster: Cluster, cred: Credential) -> bool:
    return can_login(cluster, cred.username, cred.password.reveal())


def audit_text(home: Path) -> str:
    """Every stored audit column, as one text (to search for what must not be there)."""
    conn = sqlite3.connect(home / "vault.db")
    try:
        rows = conn.execute("SELECT * FROM sb_audit").fetchall()
    finally:
        conn.close()
    return json.dumps(rows, default=str)


def test_a_lease_user_logs_in_until_revoked(
    vault: Vault, pg_role: str, cluster: Cluster, keyfile_vault: Path
) -> None:
    cred = vault.leases.issue(pg_role)
    assert cred.username.startswith("v-") and len(cred.username) <= 63
    assert login(cluster, cred)
    # The URL holds the new login on the admin URL's server and database.
    assert cred.url is not None and cred.username in cred.url.reveal()
    with psycopg.connect(cred.url.reveal(), connect_timeout=5) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (cred.username,)
    [listed] = vault.leases.list_leases(pg_role)
    assert listed.id == cred.lease_id and listed.state == "live"
    assert vault.leases.get_lease(cred.lease_id).username == cred.username
    # Each lease is a new user.
    other = vault.leases.issue(pg_role)
    assert other.username != cred.username and login(cluster, other)

    revoked = vault.leases.revoke(cred.lease_id)
    assert revoked.state == "revoked" and revoked.last_error == "dropped"
    assert not login(cluster, cred) and not role_exists(cluster, cred.username)
    assert login(cluster, other)  # the other lease is untouched
    assert vault.leases.revoke(cred.lease_id).state == "revoked"  # twice is fine

    # Audited with the identity that asked; never the password.
    events = vault.audit.log(operations=["lease.issue", "lease.revoke"])
    assert {e["operation"] for e in events} == {"lease.issue", "lease.revoke"}
    assert all(e["identity"] == vault.principal.name for e in events)
    assert any(cred.lease_id in e["reason"] for e in events)
    stored = audit_text(keyfile_vault)
    for c in (cred, other):
        assert c.password.reveal() not in stored
        assert c.password.reveal() not in repr(c) and c.password.reveal() not in str(c)


def test_an_open_session_ends_at_revocation(vault: Vault, pg_role: str, cluster: Cluster) -> None:
    cred = vault.leases.issue(pg_role)
    with psycopg.connect(cluster.dsn(cred.username, cred.password.reveal()), autocommit=True) as c:
        c.execute("SELECT 1")
        vault.leases.revoke(cred.lease_id)
        with pytest.raises(psycopg.OperationalError):
            c.execute("SELECT 1")


def test_expiry_then_reap_drops_the_user(
    vault: Vault, pg_role: str, cluster: Cluster, clock: Clock
) -> None:
    cred = vault.leases.issue(pg_role, ttl=timedelta(minutes=30))
    assert vault.leases.reap().revoked == ()  # not due yet
    assert login(cluster, cred)
    clock.advance(timedelta(minutes=31))
    report = vault.leases.reap()
    assert report.revoked == (cred.lease_id,) and report.failed == ()
    assert not login(cluster, cred) and not role_exists(cluster, cred.username)
    assert vault.leases.list_leases(pg_role) == []
    assert len(vault.leases.list_leases(pg_role, include_revoked=True)) == 1


def test_renew_moves_valid_until_and_stops_at_the_max_ttl(
    vault: Vault, pg_role: str, cluster: Cluster, clock: Clock
) -> None:
    cred = vault.leases.issue(pg_role)
    clock.advance(timedelta(minutes=50))
    renewed = vault.leases.renew(cred.lease_id, increment=timedelta(hours=2))
    assert renewed.expires_at == (clock.now + timedelta(hours=2)).isoformat()
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        (until,) = conn.execute(
            "SELECT rolvaliduntil FROM pg_roles WHERE rolname = %s", (cred.username,)
        ).fetchone()  # type: ignore[misc]
    assert until == clock.now + timedelta(hours=2)
    assert login(cluster, cred)
    vault.leases.renew(cred.lease_id, increment=timedelta(hours=23))  # to 23:50 after issue
    # Past the max TTL (24 h from issue): refused, saying how much is left.
    clock.advance(timedelta(hours=22, minutes=10))  # 23 h after issue
    with pytest.raises(InvalidInput, match="would pass its max TTL") as info:
        vault.leases.renew(cred.lease_id, increment=timedelta(hours=2))
    assert "1h is left" in info.value.message
    vault.leases.renew(cred.lease_id, increment=timedelta(hours=1))  # exactly to the max
    with pytest.raises(Conflict, match="reached its max TTL"):
        vault.leases.renew(cred.lease_id, increment=timedelta(minutes=1))
    clock.advance(timedelta(hours=1))
    with pytest.raises(Conflict, match="expired"):
        vault.leases.renew(cred.lease_id)


def test_a_ttl_beyond_the_roles_max_is_refused(vault: Vault, pg_role: str) -> None:
    with pytest.raises(InvalidInput, match="longer than role"):
        vault.leases.issue(pg_role, ttl=timedelta(hours=25))
    assert vault.leases.list_leases(pg_role) == []


def test_the_quota_refuses_a_lease_and_makes_no_user(
    vault: Vault, pg_role: str, cluster: Cluster
) -> None:
    vault.leases.define_role(
        "payments/prod/db-small",
        backend_name="postgres",
        admin=ADMIN.path,
        creation=PG_CREATION,
        username_template="small-{{random}}",
        max_leases=2,
    )
    first = vault.leases.issue("payments/prod/db-small")
    vault.leases.issue("payments/prod/db-small")
    with pytest.raises(Conflict, match="quota of 2 live leases"):
        vault.leases.issue("payments/prod/db-small")
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        (count,) = conn.execute(
            "SELECT COUNT(*) FROM pg_roles WHERE rolname LIKE 'small-%'"
        ).fetchone()  # type: ignore[misc]
    assert count == 2
    vault.leases.revoke(first.lease_id)
    vault.leases.issue("payments/prod/db-small")  # a place is free again
    # Leases of another role do not count.
    vault.leases.issue(pg_role)


def test_a_vanished_user_is_revoked_and_force_forgets_an_unreachable_one(
    vault: Vault, pg_role: str, cluster: Cluster
) -> None:
    cred = vault.leases.issue(pg_role)
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute(f'DROP ROLE "{cred.username}"')
    assert vault.leases.revoke(cred.lease_id).last_error == "user already gone"

    # Custom revocation statements that fail on a missing user: it is gone, so done.
    vault.leases.define_role(
        "payments/prod/db-custom",
        backend_name="postgres",
        admin=ADMIN.path,
        creation=PG_CREATION,
        revocation='DROP ROLE "{{name}}"',
    )
    custom = vault.leases.issue("payments/prod/db-custom")
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        conn.execute(f'DROP ROLE "{custom.username}"')
    assert vault.leases.revoke(custom.lease_id).state == "revoked"

    # The database unreachable: refused and left due; force forgets it.
    stuck = vault.leases.issue(pg_role)
    vault.set(ADMIN, SecretValue("postgresql://postgres:pw@127.0.0.1:1/postgres"))
    with pytest.raises(UpstreamError, match="retried by the reaper") as info:
        vault.leases.revoke(stuck.lease_id)
    assert "pw@" not in info.value.message
    assert vault.leases.get_lease(stuck.lease_id).state == "revoking"
    forced = vault.leases.revoke(stuck.lease_id, force=True)
    assert forced.state == "revoked" and forced.last_error.startswith("forced:")


def test_unreachable_at_revoke_is_retried_by_the_reaper_across_restarts(
    vault: Vault, pg_role: str, cluster: Cluster, clock: Clock, keyfile_vault: Path
) -> None:
    cred = vault.leases.issue(pg_role, ttl=timedelta(minutes=5))
    good = vault.get(ADMIN).value
    vault.set(ADMIN, SecretValue("postgresql://postgres:x@127.0.0.1:1/postgres"))
    clock.advance(timedelta(minutes=6))
    first = vault.leases.reap()
    assert first.revoked == () and [lid for lid, _ in first.failed] == [cred.lease_id]
    assert "cannot log in to PostgreSQL" in first.failed[0][1]
    assert vault.leases.reap().failed == ()  # backing off: not retried at once
    clock.advance(timedelta(seconds=31))
    assert len(vault.leases.reap().failed) == 1
    row = vault.leases.get_lease(cred.lease_id)
    assert row.revoke_attempts == 2 and row.next_attempt_at is not None
    vault.close()

    # A new process: the count goes on from the row.
    again = reopen(keyfile_vault, clock)
    try:
        again.set(ADMIN, good)
        clock.advance(timedelta(seconds=30))
        assert again.leases.reap().revoked == ()  # the second backoff is a minute
        clock.advance(timedelta(seconds=31))
        assert again.leases.reap().revoked == (cred.lease_id,)
        assert not role_exists(cluster, cred.username)
        assert again.leases.get_lease(cred.lease_id).revoke_attempts == 2
    finally:
        again.close()


def test_a_creation_failure_leaves_no_user_and_no_live_lease(
    vault: Vault, pg_role: str, cluster: Cluster
) -> None:
    vault.leases.define_role(
        "payments/prod/db-broken",
        backend_name="postgres",
        admin=ADMIN.path,
        creation="CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}'; GRANT SELECT ON nowhere"
        ' TO "{{name}}"',
        username_template="broken-{{random}}",
    )
    with pytest.raises(UpstreamError, match="refused the creation statements") as info:
        vault.leases.issue("payments/prod/db-broken")
    assert "nowhere" in info.value.message
    assert vault.leases.list_leases("payments/prod/db-broken") == []
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        assert (
            conn.execute("SELECT 1 FROM pg_roles WHERE rolname LIKE 'broken-%'").fetchone() is None
        )


def _person(vault: Vault, name: str, paths: list[tuple[str, list[str]]]) -> Vault:
    """A view of the vault as a person logged in with a token holding these rules."""
    policy = parse_policy(
        {"name": name, "rules": [{"path": p, "capabilities": c} for p, c in paths]}
    )
    vault.accounts.apply_policy(policy)
    vault.accounts.create_person(name, "pw-of-" + name + "-long", [name])
    token = vault.accounts.create_token(identity=name)
    principal = vault.authenticator().resolve(token.value)
    return vault.as_principal(principal, Actor(name, "api"))


def test_revoking_a_token_revokes_its_leases(vault: Vault, pg_role: str, cluster: Cluster) -> None:
    app = _person(vault, "app", [(f"creds/{pg_role}", ["read"])])
    cred = app.leases.issue(pg_role)
    mine = vault.leases.issue(pg_role)  # the owner's: no token
    assert cred.lease.token_accessor == app.principal.token_accessor
    assert login(cluster, cred)
    vault.accounts.revoke_token(app.principal.token_accessor or "")
    assert vault.leases.get_lease(cred.lease_id).state == "revoked"
    assert not login(cluster, cred)
    assert login(cluster, mine)
    events = vault.audit.log(operations=["lease.revoke"])
    assert any("its token was revoked" in e["reason"] for e in events)


def test_a_token_that_expired_loses_its_leases_at_the_next_reap(
    vault: Vault, pg_role: str, cluster: Cluster, clock: Clock
) -> None:
    app = _person(vault, "app", [(f"creds/{pg_role}", ["read"])])
    cred = app.leases.issue(pg_role, ttl=timedelta(hours=5))
    # The lease never outlives its token (a login token: 24 h at most).
    assert cred.lease.max_expires_at <= (clock.now + timedelta(hours=24)).isoformat()
    clock.advance(timedelta(hours=2))  # the token (1 h) expired; the lease (5 h) not
    assert vault.leases.reap().revoked == (cred.lease_id,)
    assert not login(cluster, cred)


def test_authorisation_is_on_the_creds_path(vault: Vault, pg_role: str) -> None:
    # Reading every secret of the environment does not make database users.
    reader = _person(vault, "reader", [("payments/prod/*", ["read", "list"])])
    with pytest.raises(AccessDenied, match="read on creds/payments/prod/db-readonly"):
        reader.leases.issue(pg_role)
    assert reader.leases.list_roles() == []
    denied = vault.audit.log(operations=["lease.issue"], denied=True)
    assert denied and denied[0]["identity"] == "reader"

    # An app may renew and revoke its own lease, not another's; nor reap.
    app = _person(vault, "app", [(f"creds/{pg_role}", ["read"])])
    other = _person(vault, "other", [(f"creds/{pg_role}", ["read"])])
    cred = app.leases.issue(pg_role)
    app.leases.renew(cred.lease_id, increment=timedelta(minutes=10))
    with pytest.raises(AccessDenied):
        other.leases.revoke(cred.lease_id)
    with pytest.raises(AccessDenied):
        app.leases.revoke(cred.lease_id, force=True)  # force is an admin's decision
    with pytest.raises(AccessDenied):
        app.leases.reap()
    assert [x.id for x in other.leases.list_leases()] == []
    app.leases.revoke(cred.lease_id)

    # Defining a role needs admin on it and read on its admin secret.
    ops = _person(vault, "ops", [("creds/payments/**", ["admin"])])
    with pytest.raises(AccessDenied, match="read on payments/prod/PG_ADMIN_URL"):
        ops.leases.define_role(
            "payments/prod/sneaky", backend_name="postgres", admin=ADMIN.path, creation=PG_CREATION
        )
    with pytest.raises(NotFound):
        vault.leases.get_role("payments/prod/sneaky")


def test_the_admin_secret_read_is_audited_for_the_role(
    vault: Vault, pg_role: str, keyfile_vault: Path
) -> None:
    vault.leases.issue(pg_role)
    reads = vault.audit.log(secret=ADMIN, operations=["read"])
    assert reads and reads[0]["reason"] == f"credentials role {pg_role}"


def test_deleting_an_identity_revokes_the_leases_of_its_tokens(
    vault: Vault, pg_role: str, cluster: Cluster
) -> None:
    app = _person(vault, "app", [(f"creds/{pg_role}", ["read"])])
    cred = app.leases.issue(pg_role)
    vault.accounts.delete_identity("app")
    assert vault.leases.get_lease(cred.lease_id).state == "revoked"
    assert not login(cluster, cred)


def test_a_role_with_live_leases_keeps_its_database(
    vault: Vault, pg_role: str, cluster: Cluster
) -> None:
    cred = vault.leases.issue(pg_role)
    vault.set(SecretRef("payments", "prod", "OTHER_ADMIN"), SecretValue(cluster.url()))
    with pytest.raises(Conflict, match="cannot change until they are revoked"):
        vault.leases.define_role(
            pg_role, backend_name="postgres", admin="payments/prod/OTHER_ADMIN",
            creation=PG_CREATION, replace=True,
        )  # fmt: skip
    # The TTLs may change; the live user stays revocable.
    vault.leases.define_role(
        pg_role, backend_name="postgres", admin=ADMIN.path, creation=PG_CREATION,
        ttl=timedelta(minutes=10), replace=True,
    )  # fmt: skip
    assert vault.leases.get_role(pg_role).ttl == 600
    vault.leases.revoke(cred.lease_id)
    vault.leases.define_role(
        pg_role, backend_name="postgres", admin="payments/prod/OTHER_ADMIN",
        creation=PG_CREATION, replace=True,
    )  # fmt: skip


def test_doctor_warns_of_leases_not_revoked(vault: Vault, pg_role: str, clock: Clock) -> None:
    from sealbox.doctor import check_leases

    stuck = vault.leases.issue(pg_role, ttl=timedelta(minutes=5))
    vault.leases.issue(pg_role, ttl=timedelta(minutes=5))
    assert check_leases(vault, clock.now) == []
    clock.advance(timedelta(minutes=6))
    [unreaped] = check_leases(vault, clock.now)
    assert "2 lease(s) expired and were not revoked" in unreaped.message
    vault.set(ADMIN, SecretValue("postgresql://postgres:pw@127.0.0.1:1/postgres"))
    vault.leases.reap()
    found = check_leases(vault, clock.now)
    assert len(found) == 2 and all(f.level == "warn" for f in found)
    assert any(stuck.lease_id in f.message and "1 attempt(s)" in f.message for f in found)
    assert all("pw@" not in f.message for f in found)


def test_a_missing_lease_is_named_only_to_who_may_see_its_role(vault: Vault, pg_role: str) -> None:
    outsider = _person(vault, "outsider", [("payments/prod/*", ["read"])])
    app = _person(vault, "app", [(f"creds/{pg_role}", ["read"])])
    guess = f"creds/{pg_role}/not-a-real-lease-id"
    for attempt in (
        lambda: outsider.leases.get_lease(guess),
        lambda: outsider.leases.revoke(guess),
        lambda: outsider.leases.renew(guess),
        lambda: outsider.leases.revoke("garbage"),
    ):
        with pytest.raises(AccessDenied):
            attempt()
    with pytest.raises(NotFound):
        app.leases.revoke(guess)
    # A real lease of someone else is as invisible to the outsider.
    real = vault.leases.issue(pg_role)
    with pytest.raises(AccessDenied):
        outsider.leases.get_lease(real.lease_id)


def test_a_database_error_that_echoes_the_password_is_redacted(
    vault: Vault, pg_role: str, monkeypatch: pytest.MonkeyPatch, keyfile_vault: Path
) -> None:
    from sealbox.creds import templates

    known = "Zq7KnownPasswordForTheTest9"
    monkeypatch.setattr(templates, "password", lambda: known)
    vault.leases.define_role(
        "payments/prod/db-echo",
        backend_name="postgres",
        admin=ADMIN.path,
        # PostgreSQL quotes a bad integer's text in its message: here, the password.
        creation="CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}'; SELECT '{{password}}'::int",
    )
    with pytest.raises(UpstreamError) as info:
        vault.leases.issue("payments/prod/db-echo")
    assert known not in str(info.value) and "***" in str(info.value)
    assert known not in audit_text(keyfile_vault)
    [gone] = vault.leases.list_leases("payments/prod/db-echo", include_revoked=True)
    assert gone.state == "revoked" and known not in gone.last_error


def test_two_revokers_at_once_both_end_with_the_user_gone(
    vault: Vault, pg_role: str, cluster: Cluster, keyfile_vault: Path, clock: Clock
) -> None:
    """A reaper in another process and a revoke here, at the same instant: the lease is
    revoked once, and neither reports a failure."""
    import threading

    creds = [vault.leases.issue(pg_role) for _ in range(5)]
    other = reopen(keyfile_vault, clock)
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def revoke_all(v: Vault) -> None:
        start.wait()
        for c in creds:
            try:
                v.leases.revoke(c.lease_id)
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=revoke_all, args=(v,)) for v in (vault, other)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        other.close()
    assert errors == []
    for c in creds:
        assert vault.leases.get_lease(c.lease_id).state == "revoked"
        assert not role_exists(cluster, c.username)
    revokes = [e for e in vault.audit.log(operations=["lease.revoke"]) if e["outcome"] != "error"]
    assert len(revokes) == len(creds)  # each revocation recorded once
