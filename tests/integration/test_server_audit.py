"""Server requests leave audit events that say who, from where, through which request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from sealbox.cli.main import main
from sealbox.factory import bootstrap_server, open_vault
from sealbox.model import SecretRef
from sealbox.server.app import create_app
from sealbox.server.settings import ServerSettings
from sealbox.server.testing import audit_stored

CANARY = "server-audit-canary-19c2"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    assert main(["init", "--key-file", str(tmp_path / "master.key")]) == 0
    _, token = bootstrap_server(admin="admin", password="correct horse battery staple")
    settings = ServerSettings(audit_node="node-a")
    vault = open_vault(source="api", audit_node=settings.node)
    with TestClient(create_app(vault, settings), raise_server_exceptions=False) as client:
        yield client, token.value
    vault.close()


def test_read_event_names_identity_address_agent_request_and_node(
    server: tuple[TestClient, str],
) -> None:
    client, token = server
    h = {
        "Authorization": f"Bearer {token}",
        "User-Agent": "deploy-bot/1.2",
        "X-Request-Id": "req-42",
    }
    assert client.post("/v1/projects", json={"name": "payments"}, headers=h).status_code == 201
    assert (
        client.put("/v1/secrets/payments/prod/DB", json={"value": CANARY}, headers=h).status_code
        == 200
    )
    assert client.get("/v1/secrets/payments/prod/DB", headers=h).status_code == 200

    audit_stored(client.app)  # type: ignore[arg-type]
    vault = open_vault()
    events = vault.audit.log(secret=SecretRef("payments", "prod", "DB"), operations=["read"])
    assert events, "the read left no audit event"
    e = events[0]
    flat = repr(e)
    assert e["identity"] == "admin" and e["source"] == "api"
    assert "deploy-bot/1.2" in flat and "req-42" in flat and "testclient" in flat
    assert e.get("node") == "node-a"
    assert CANARY not in flat
    assert token not in flat


def test_no_value_leaves_when_its_audit_event_cannot_be_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Group commit stays fail-closed: a failed flush turns the response into a 503."""
    assert main(["init", "--key-file", str(tmp_path / "master.key")]) == 0
    _, token = bootstrap_server(admin="admin", password="correct horse battery staple")
    setup = open_vault()
    setup.create_project("payments")
    from sealbox.model import SecretValue

    setup.set(SecretRef("payments", "prod", "DB"), SecretValue(CANARY))
    setup.close()

    monkeypatch.setenv("SEALBOX_AUDIT_SINKS", "file:/dev/full")  # every write fails
    vault = open_vault(source="api")
    app = create_app(vault, ServerSettings())
    h = {"Authorization": f"Bearer {token.value}"}
    urls = ("/v1/secrets/payments/prod/DB", "/v1/secret/data/payments/prod")
    with TestClient(app, raise_server_exceptions=False) as client:  # the scheduled flush
        for url in urls:
            r = client.get(url, headers=h)
            assert r.status_code == 503, (url, r.text)
            assert CANARY not in r.text
    import httpx2

    from sealbox.server.testing import running

    barrier = app.user_middleware[0].kwargs["barrier"]  # type: ignore[attr-defined]
    flushes = barrier.flushes
    with running(app) as base:  # real uvicorn
        for url in urls:
            r = httpx2.get(base + url, headers=h)
            assert r.status_code == 503, (url, r.text)
            assert CANARY not in r.text
    assert barrier.flushes == flushes + 2  # each request's flush failed, and it was told
    vault.close()


@pytest.fixture
def group_commit(tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    """A server that group-commits its audit events (PostgreSQL's way; on SQLite with
    ``audit_spool = false``)."""
    assert main(["init", "--key-file", str(tmp_path / "master.key")]) == 0
    _, token = bootstrap_server(admin="admin", password="correct horse battery staple")
    vault = open_vault(source="api")
    app = create_app(vault, ServerSettings(audit_spool=False))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, token.value
    vault.close()


def test_concurrent_reads_share_audit_flushes(group_commit: tuple[TestClient, str]) -> None:
    """Many requests in flight at once are recorded in fewer transactions than requests."""
    import asyncio

    import httpx2 as httpx  # what Starlette's test client uses (a dev dependency)

    client, token = group_commit
    h = {"Authorization": f"Bearer {token}"}
    assert client.post("/v1/projects", json={"name": "payments"}, headers=h).status_code == 201
    assert (
        client.put("/v1/secrets/payments/prod/DB", json={"value": "v"}, headers=h).status_code
        == 200
    )
    app = client.app
    barrier = app.user_middleware[0].kwargs["barrier"]  # type: ignore[attr-defined]
    before = barrier.flushes

    async def burst() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as ac:
            rs = await asyncio.gather(
                *(ac.get("/v1/secrets/payments/prod/DB", headers=h) for _ in range(40))
            )
        return [r.status_code for r in rs]

    assert asyncio.run(burst()) == [200] * 40
    flushes = barrier.flushes - before
    assert 1 <= flushes < 40
    vault = open_vault()
    reads = vault.audit.log(
        secret=SecretRef("payments", "prod", "DB"), operations=["read"], limit=None
    )
    assert len(reads) == 40


@pytest.mark.parametrize(
    ("trusted", "expected"), [((), "127.0.0.1"), (("127.0.0.1",), "203.0.113.9")]
)
def test_forwarded_addresses_count_only_from_trusted_proxies(
    tmp_path: Path, trusted: tuple[str, ...], expected: str
) -> None:
    """A local process cannot put a made-up address into the audit trail (uvicorn's own
    default believes X-Forwarded-For from 127.0.0.1); a named proxy's header is used."""
    import httpx2

    from sealbox.server.run import proxy_options
    from sealbox.server.testing import running

    assert main(["init", "--key-file", str(tmp_path / "master.key")]) == 0
    _, token = bootstrap_server(admin="admin", password="correct horse battery staple")
    settings = ServerSettings(trusted_proxies=trusted).validated()
    vault = open_vault(source="api", audit_node=settings.node)
    try:
        app = create_app(vault, settings)
        with running(app, **proxy_options(settings)) as url:
            h = {"Authorization": f"Bearer {token.value}", "X-Forwarded-For": "203.0.113.9"}
            r = httpx2.post(f"{url}/v1/projects", json={"name": "payments"}, headers=h)
            assert r.status_code == 201
            audit_stored(app)
        event = open_vault().audit.log(operations=["project.create"], limit=1)[0]
        assert event["remote_addr"] == expected
    finally:
        vault.close()


def test_trusted_proxies_must_be_addresses() -> None:
    from sealbox.errors import InvalidInput

    with pytest.raises(InvalidInput, match="trusted_proxies"):
        ServerSettings(trusted_proxies=("proxy.example",)).validated()
    assert ServerSettings(trusted_proxies=("10.0.0.0/8", "::1")).validated()


def test_a_lone_request_has_its_own_flush_and_company_shares_one(tmp_path: Path) -> None:
    """Through real uvicorn: a sequential client's events are stored one flush each;
    concurrent requests share flushes."""
    import asyncio

    import httpx2

    from sealbox.server.testing import running

    assert main(["init", "--key-file", str(tmp_path / "master.key")]) == 0
    _, token = bootstrap_server(admin="admin", password="correct horse battery staple")
    vault = open_vault(source="api")
    app = create_app(vault, ServerSettings(audit_spool=False))
    barrier = app.user_middleware[0].kwargs["barrier"]  # type: ignore[attr-defined]
    h = {"Authorization": f"Bearer {token.value}"}
    try:
        with running(app) as url:
            with httpx2.Client(base_url=url, headers=h) as c:
                assert c.post("/v1/projects", json={"name": "payments"}).status_code == 201
                c.put("/v1/secrets/payments/prod/DB", json={"value": "v"})
                flushes, woken = barrier.counts()[:2]
                for _ in range(10):
                    assert c.get("/v1/secrets/payments/prod/DB").status_code == 200
                assert barrier.counts()[:2] == (flushes + 10, woken + 10)

            async def burst() -> list[int]:
                limits = httpx2.Limits(max_connections=20)
                async with httpx2.AsyncClient(base_url=url, headers=h, limits=limits) as ac:
                    rs = await asyncio.gather(
                        *(ac.get("/v1/secrets/payments/prod/DB") for _ in range(60))
                    )
                return [r.status_code for r in rs]

            woken = barrier.counts()[1]
            assert asyncio.run(burst()) == [200] * 60
            new_woken = barrier.counts()[1]
            # (Whether they shared flushes depends on timing here; the ASGITransport test
            # above drives concurrency deterministically.)
            assert new_woken - woken == 60
        reads = open_vault().audit.log(
            secret=SecretRef("payments", "prod", "DB"), operations=["read"], limit=None
        )
        assert len(reads) == 70
    finally:
        vault.close()
