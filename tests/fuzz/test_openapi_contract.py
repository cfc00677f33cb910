"""Hostile inputs the fuzzer does not generate, each answered as the OpenAPI document says.

Each case sends raw bytes and checks that the status is one the operation documents and the
body matches the document's schema for it. Each once found a defect of issue 10
(defects 7-9: nested JSON, lone surrogates, invalid UTF-8 paths, content types, duplicate
keys, UTF-16 bodies).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import schemathesis
from starlette.testclient import TestClient
from tests.fuzz.served import served_app, served_document
from tests.standing_summary import record

SCHEMA = schemathesis.openapi.from_dict(served_document())
SECRET = "/v1/secrets/{project}/{env}/{name}"
KV_DATA = "/v1/{mount}/data/{project}/{env}/{key}"


class Api:
    def __init__(self, client: TestClient, token: str) -> None:
        self.client = client
        self.auth = {"Authorization": f"Bearer {token}"}

    def send(
        self,
        method: str,
        template: str,
        url: str,
        content: bytes = b"",
        *,
        content_type: str = "application/json",
        auth: bool = True,
    ) -> httpx.Response:
        """Send, then check the answer against the document's operation ``template``."""
        headers = {"Content-Type": content_type, **(self.auth if auth else {})}
        response = self.client.request(method, url, content=content, headers=headers)
        record("fuzz", "contract cases")
        operation = SCHEMA[template][method]
        documented = operation.definition.raw["responses"]
        assert str(response.status_code) in documented, (response.status_code, response.text)
        operation.validate_response(response)
        return response


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    with served_app(tmp_path) as (app, token), TestClient(app) as client:
        yield Api(client, token)


def _nested(depth: int) -> bytes:
    return b'{"name": ' + b"[" * depth + b"]" * depth + b', "password": "x"}'


def test_rollback_without_a_version_number_is_a_400(api: Api) -> None:
    """``{"version": null}`` failed an assert: a 500."""
    url = "/v1/secrets/payments/dev/API_KEY/rollback"
    r = api.send("POST", SECRET + "/rollback", url, b'{"version": null}')
    assert r.status_code == 400
    assert "version" in r.json()["error"]["message"]


def test_a_method_the_path_does_not_take_is_a_405_naming_the_ones_it_does(api: Api) -> None:
    r = api.client.request("PATCH", "/v1/projects", headers=api.auth)
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, HEAD, POST"
    SCHEMA["/v1/projects"]["POST"].validate_response(r)


def test_a_wrong_password_is_a_documented_401(api: Api) -> None:
    body = json.dumps({"name": "admin", "password": "not the password"}).encode()
    r = api.send("POST", "/v1/auth/login", "/v1/auth/login", body, auth=False)
    assert r.status_code == 401


def test_a_missing_token_is_a_documented_401_natively_and_vaults_403(api: Api) -> None:
    native = api.send("GET", SECRET, "/v1/secrets/payments/dev/API_KEY", auth=False)
    kv = api.send("GET", KV_DATA, "/v1/secret/data/payments/dev/stripe", auth=False)
    assert native.status_code == 401
    assert kv.status_code == 403  # Vault's answer, so hvac's is_authenticated() is False
    assert kv.json() == {"errors": ["permission denied"]}


def test_a_text_plain_body_is_a_415(api: Api) -> None:
    url = "/v1/secrets/payments/dev/PLAIN"
    r = api.send("PUT", SECRET, url, b'{"value": "v"}', content_type="text/plain")
    assert r.status_code == 415


def test_a_form_body_is_a_415(api: Api) -> None:
    url = "/v1/secrets/payments/dev/FORM"
    ctype = "application/x-www-form-urlencoded"
    r = api.send("PUT", SECRET, url, b'{"value": "v"}', content_type=ctype)
    assert r.status_code == 415


def test_duplicate_json_keys_are_a_400(api: Api) -> None:
    url = "/v1/secrets/payments/dev/DUP"
    r = api.send("PUT", SECRET, url, b'{"value": "a", "value": "b"}')
    assert r.status_code == 400


def test_a_utf16_body_is_a_400(api: Api) -> None:
    url = "/v1/secrets/payments/dev/WIDE"
    r = api.send("PUT", SECRET, url, '{"value": "v"}'.encode("utf-16"))
    assert r.status_code == 400


def test_deeply_nested_json_to_login_is_a_400(api: Api) -> None:
    r = api.send("POST", "/v1/auth/login", "/v1/auth/login", _nested(100_000), auth=False)
    assert r.status_code == 400


def test_a_lone_surrogate_in_a_native_value_is_a_400(api: Api) -> None:
    url = "/v1/secrets/payments/dev/SURROGATE"
    r = api.send("PUT", SECRET, url, b'{"value": "\\ud800"}')
    assert r.status_code == 400


def test_a_lone_surrogate_in_a_kv_value_is_a_400(api: Api) -> None:
    url = "/v1/secret/data/payments/dev/surrogate"
    r = api.send("PUT", KV_DATA, url, b'{"data": {"v": "\\ud800"}}')
    assert r.status_code == 400


@pytest.mark.parametrize("key", ["%ff", "%fe", "a%c3"])
def test_invalid_utf8_in_a_kv_path_is_a_400(api: Api, key: str) -> None:
    url = f"/v1/secret/data/payments/dev/{key}"
    r = api.send("PUT", KV_DATA, url, b'{"data": {"v": "1"}}')
    assert r.status_code == 400


def test_integral_float_is_an_integer(api: Api) -> None:
    url = "/v1/secrets/payments/dev/API_KEY/rollback"
    r = api.send("POST", SECRET + "/rollback", url, b'{"version": 1.0}')
    assert r.status_code == 200


def test_the_document_lists_415_where_defect_9_will_answer_it() -> None:
    """So the fix on server-http lands on a document that already says so."""
    for template, method in ((SECRET, "PUT"), (KV_DATA, "POST"), ("/v1/auth/login", "POST")):
        responses: dict[str, Any] = SCHEMA[template][method].definition.raw["responses"]
        assert "415" in responses
        assert "400" in responses
