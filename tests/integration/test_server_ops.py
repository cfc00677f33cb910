"""Prometheus metrics, structured logs, settings (the OpenAPI document: test_server_openapi.py)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from sealbox.cli.main import main
from sealbox.errors import InvalidInput
from sealbox.factory import bootstrap_server, open_vault
from sealbox.server.app import create_app
from sealbox.server.settings import ServerSettings, load_settings


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    assert main(["init", "--key-file", str(tmp_path / "master.key")]) == 0
    _, token = bootstrap_server(admin="admin", password="correct horse battery staple")
    vault = open_vault(source="api")
    vault.create_project("payments")
    with TestClient(create_app(vault, ServerSettings())) as c:
        yield c, token.value
    vault.close()


def test_metrics_label_routes_by_template_never_by_name(client: tuple[TestClient, str]) -> None:
    c, token = client
    h = {"Authorization": f"Bearer {token}"}
    c.put("/v1/secrets/payments/dev/VERY_SECRET_NAME", json={"value": "hunter2"}, headers=h)
    c.get("/v1/secrets/payments/dev/VERY_SECRET_NAME", headers=h)
    c.get("/v1/secret/data/payments/dev/kv-secret-name", headers=h)
    c.get("/v1/no/such/route/at-all", headers=h)
    text = c.get("/metrics").text
    assert "VERY_SECRET_NAME" not in text
    assert "kv-secret-name" not in text
    assert "hunter2" not in text
    assert "at-all" not in text
    assert (
        'sealbox_http_requests_total{method="GET",route="/v1/secrets/{project}/{env}/{name}",'
        'status="200"} 1.0'
    ) in text
    assert 'route="/v1/{mount}/data/{path:path}",status="404"' in text
    assert "sealbox_http_request_duration_seconds_bucket" in text
    assert "sealbox_storage_errors_total" in text
    assert 'sealbox_token_cache_total{result="hit"}' in text


def test_access_log_is_json_without_token_or_value(
    client: tuple[TestClient, str], caplog: pytest.LogCaptureFixture
) -> None:
    c, token = client
    h = {"Authorization": f"Bearer {token}", "X-Request-Id": "req-42"}
    c.put("/v1/secrets/payments/dev/LOGGED", json={"value": "hunter2"}, headers=h)
    with caplog.at_level(logging.INFO, logger="sealbox.server.access"):
        c.get("/v1/secrets/payments/dev/LOGGED", headers=h)
    records = [r for r in caplog.records if r.name == "sealbox.server.access"]
    assert records
    fields = records[-1].fields  # type: ignore[attr-defined]
    assert fields["request_id"] == "req-42"
    assert fields["route"] == "/v1/secrets/{project}/{env}/{name}"
    assert fields["status"] == 200
    assert fields["identity"] == "admin"
    assert fields["accessor"]
    assert fields["duration_ms"] >= 0
    from sealbox.server.logs import JsonFormatter

    line = JsonFormatter().format(records[-1])
    parsed = json.loads(line)
    assert parsed["method"] == "GET"
    assert token not in line
    assert "hunter2" not in line
    assert "LOGGED" not in line


def test_unexpected_error_logs_type_and_frames_only(
    client: tuple[TestClient, str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sealbox.vault import Vault

    def boom(*args: object, **kwargs: object) -> None:
        raise ValueError("the value hunter2 appears here")

    monkeypatch.setattr(Vault, "list_projects", boom)
    c, token = client
    with caplog.at_level(logging.INFO):
        r = c.get("/v1/projects", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 500
    errors = [r for r in caplog.records if r.name == "sealbox.server.error"]
    assert errors
    fields = errors[0].fields  # type: ignore[attr-defined]
    assert fields["error"] == "ValueError"
    assert "hunter2" not in json.dumps(fields)


# -- settings ------------------------------------------------------------------------------------
def test_settings_file_env_and_overrides(tmp_path: Path) -> None:
    cfg = tmp_path / "server.toml"
    cfg.write_text('[server]\naddress = "127.0.0.1:9000"\nbody_limit = 2048\nlog_level = "debug"\n')
    s = load_settings(config_file=cfg, env={"SEALBOX_BODY_LIMIT": "4096"}, overrides={})
    assert s.address == "127.0.0.1:9000"
    assert s.body_limit == 4096
    assert s.log_level == "debug"
    s = load_settings(
        config_file=cfg, env={"SEALBOX_KV_MOUNTS": "secret,kv"}, overrides={"address": "[::1]:1"}
    )
    assert s.host == "::1"
    assert s.port == 1
    assert s.kv_mounts == ("secret", "kv")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('colour = "red"', "colour"),
        ('address = "nowhere"', "address"),
        ("body_limit = 1", "body_limit"),
        ('log_level = "loud"', "log_level"),
        ('tls_cert = "/x.pem"', "TLS"),
        ("workers = true", "workers"),
        ("workers = -1", "workers"),
        ("workers = 65", "workers"),
        ("header_timeout = 0", "header_timeout"),
        ("body_timeout = 7200", "body_timeout"),
        ("keepalive_timeout = 0", "keepalive_timeout"),
    ],
)
def test_bad_settings_are_named(tmp_path: Path, text: str, needle: str) -> None:
    cfg = tmp_path / "server.toml"
    cfg.write_text(text + "\n")
    with pytest.raises(InvalidInput, match=needle):
        load_settings(config_file=cfg, env={})


def test_timeouts_reach_the_protocol_and_uvicorn() -> None:
    from sealbox.server.fastpath.protocol import Limits, SealboxHttpProtocol
    from sealbox.server.run import configure_protocol, uvicorn_options

    env = {
        "SEALBOX_HEADER_TIMEOUT": "2.5",
        "SEALBOX_BODY_TIMEOUT": "9",
        "SEALBOX_KEEPALIVE_TIMEOUT": "7",
    }
    settings = load_settings(env=env)
    assert uvicorn_options(settings)["timeout_keep_alive"] == 7
    try:
        configure_protocol(settings)
        limits = SealboxHttpProtocol.limits
        assert (limits.header_timeout, limits.body_timeout) == (2.5, 9.0)
    finally:
        SealboxHttpProtocol.limits = Limits()


def test_workers_default_to_one_per_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert load_settings(env={}).processes == 2
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert load_settings(env={}).processes == 4  # one SQLite write lock: a few suffice
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert load_settings(env={}).processes == 1
    assert load_settings(env={"SEALBOX_WORKERS": "7"}).processes == 7
