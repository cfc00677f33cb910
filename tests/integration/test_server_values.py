"""One value limit, embedded and remote, and values that are not UTF-8 over the native API.

A value of ``MAX_VALUE_BYTES`` bytes is accepted however it is encoded: JSON-escaped at
six bytes a byte (control characters as ``\\u00XX``), or as ``value_base64``; one byte
more is a 400 naming the limit; a body larger than any such value could need is a 413
naming it too. The SDK over a live server and the embedded CLI draw the line at the
same byte.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cli_harness import Cli
from tests.integration.test_server_native import Server, make_server
from tests.unit.client.live import live_server

from sealbox.client import Client
from sealbox.errors import InvalidInput
from sealbox.model import MAX_VALUE_BYTES, SecretRef, SecretValue
from sealbox.server.http import VALUE_BODY_LIMIT

EXIT_OK, EXIT_INVALID = 0, 2
URL = "/v1/secrets/payments/dev/BIG"
#: Every byte a control character: the JSON escape of each is six bytes long.
ESCAPED = "\x01\x1f" * (MAX_VALUE_BYTES // 2)
NOT_UTF8 = b"\xff" * MAX_VALUE_BYTES


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[Server]:
    # The smallest body_limit: a value body must not depend on it.
    gen = make_server(tmp_path, body_limit=1024)
    server = next(gen)
    assert server.call("POST", "/v1/projects", {"name": "payments"}).status_code == 201
    yield server
    gen.close()


def _put(srv: Server, raw: bytes) -> tuple[int, dict[str, str]]:
    headers = {**srv.h(), "Content-Type": "application/json"}
    r = srv.client.request("PUT", URL, content=raw, headers=headers)
    return r.status_code, r.json()


def test_a_value_at_the_limit_fully_escaped_is_accepted_one_byte_more_is_not(
    srv: Server,
) -> None:
    assert len(ESCAPED.encode()) == MAX_VALUE_BYTES
    raw = json.dumps({"value": ESCAPED}).encode()
    assert len(raw) > 6 * MAX_VALUE_BYTES  # every byte escaped
    status, body = _put(srv, raw)
    assert status == 200, body
    got = srv.call("GET", URL).json()
    assert got["value"] == ESCAPED and "value_base64" not in got
    status, body = _put(srv, json.dumps({"value": ESCAPED + "\x01"}).encode())
    assert status == 400
    assert body["error"]["code"] == "invalid_input"
    assert f"larger than {MAX_VALUE_BYTES} bytes" in body["error"]["message"]
    assert srv.call("GET", URL).json()["version"] == 1


def test_a_binary_value_at_the_limit_as_base64(srv: Server) -> None:
    raw = json.dumps({"value_base64": base64.b64encode(NOT_UTF8).decode()}).encode()
    status, body = _put(srv, raw)
    assert status == 200, body
    got = srv.call("GET", URL).json()
    assert "value" not in got
    assert base64.b64decode(got["value_base64"]) == NOT_UTF8
    resolved = srv.call("GET", "/v1/resolve/payments/dev").json()["secrets"]
    assert base64.b64decode(resolved["BIG"]["value_base64"]) == NOT_UTF8
    status, body = _put(
        srv, json.dumps({"value_base64": base64.b64encode(NOT_UTF8 + b"\xff").decode()}).encode()
    )
    assert status == 400
    assert f"larger than {MAX_VALUE_BYTES} bytes" in body["error"]["message"]


def test_a_body_larger_than_any_value_needs_is_413_naming_the_value_limit(srv: Server) -> None:
    raw = b'{"value": "' + b"x" * VALUE_BODY_LIMIT + b'"}'
    status, body = _put(srv, raw)
    assert status == 413
    assert body["error"]["code"] == "payload_too_large"
    assert f"a secret value may be at most {MAX_VALUE_BYTES} bytes" in body["error"]["message"]
    assert srv.call("GET", URL).status_code == 404


@pytest.mark.parametrize(
    ("fields", "wrong"),
    [
        ({}, "missing field"),
        ({"value": "a", "value_base64": "YQ=="}, "not both"),
        ({"value_base64": "not base64!"}, "base64"),
        ({"value_base64": "YQ"}, "base64"),  # unpadded
        ({"value_base64": 3}, "must be a string"),
        ({"value": None}, "must be a string"),
    ],
)
def test_a_bad_value_field_is_400_naming_it(
    srv: Server, fields: dict[str, object], wrong: str
) -> None:
    r = srv.call("PUT", URL, fields)
    assert r.status_code == 400
    assert wrong in r.json()["error"]["message"]
    assert srv.call("GET", URL).status_code == 404


def test_the_sdk_over_a_live_server_carries_the_limit_and_binary_values(tmp_path: Path) -> None:
    ref = SecretRef("payments", "dev", "BIG")
    with live_server(tmp_path) as live, Client(live.url, live.token) as sdk:
        sdk.create_project("payments")
        sdk.set(ref, SecretValue(ESCAPED))
        assert sdk.get(ref).value == SecretValue(ESCAPED)
        sdk.set(ref, SecretValue(NOT_UTF8))
        assert sdk.get(ref).value.reveal_bytes() == NOT_UTF8
        assert sdk.resolve("payments", "dev")["BIG"].reveal_bytes() == NOT_UTF8
        with pytest.raises(InvalidInput, match=f"larger than {MAX_VALUE_BYTES} bytes"):
            sdk.set(ref, SecretValue(NOT_UTF8 + b"\xff"))
        # The server draws the same line when a client does not check first.
        with pytest.raises(InvalidInput, match=f"larger than {MAX_VALUE_BYTES} bytes"):
            sdk._call("PUT", "/v1/secrets/payments/dev/BIG", body={"value": ESCAPED + "\x01"})
        assert sdk.get(ref).version == 2


def test_the_embedded_cli_draws_the_line_at_the_same_byte(
    keyfile_vault: Path, cli: Cli, tmp_path: Path
) -> None:
    at_limit = tmp_path / "at-limit.bin"
    at_limit.write_bytes(NOT_UTF8)
    over = tmp_path / "over.bin"
    over.write_bytes(NOT_UTF8 + b"\x00")
    assert cli("secret", "set", "BIG", "--from-file", str(at_limit)).status == EXIT_OK
    r = cli("secret", "set", "BIG", "--from-file", str(over))
    assert r.status == EXIT_INVALID
    assert f"larger than {MAX_VALUE_BYTES} bytes" in r.err
    shown = json.loads(cli("secret", "get", "BIG", "--json").out)
    assert (shown["version"], base64.b64decode(shown["value_base64"])) == (1, NOT_UTF8)
