"""Hostile and sloppy input at the HTTP layer: bodies, paths and reflected headers.

Each case is a 4xx with a clear message and changes nothing (issue 10: defects 7, 8, 9, 11).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.test_server_native import Server, make_server

from sealbox.factory import open_vault
from sealbox.server.http import MAX_JSON_DEPTH
from sealbox.server.testing import audit_stored

SECRET = "/v1/secrets/payments/dev/X"
KV = "/v1/secret/data/payments/dev/app"


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[Server]:
    gen = make_server(tmp_path)
    server = next(gen)
    assert server.call("POST", "/v1/projects", {"name": "payments"}).status_code == 201
    yield server
    gen.close()


def send(srv: Server, method: str, url: str, body: bytes, content_type: str | None) -> object:
    headers = srv.h()
    if content_type is not None:
        headers["Content-Type"] = content_type
    return srv.client.request(method, url, content=body, headers=headers)


def error_of(r: object) -> tuple[int, str, str]:
    status = r.status_code  # type: ignore[attr-defined]
    data = r.json()  # type: ignore[attr-defined]
    if "error" in data:
        return status, data["error"]["code"], data["error"]["message"]
    return status, "", " ".join(data["errors"])


def nothing_written(srv: Server) -> None:
    assert srv.call("GET", SECRET).status_code == 404
    assert srv.call("GET", KV).status_code == 404


# -- defect 7: deep JSON, lone surrogates -------------------------------------------------------
def test_deeply_nested_json_to_login_is_400_without_authentication(srv: Server) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    r = srv.client.post(
        "/v1/auth/login", content=deep, headers={"Content-Type": "application/json"}
    )
    assert error_of(r)[:2] == (400, "invalid_input")
    assert f"deeper than {MAX_JSON_DEPTH}" in error_of(r)[2]
    # Deep objects, and depth hidden behind strings that hold brackets, are caught alike.
    obj = b'{"a":' * 5000 + b"1" + b"}" * 5000
    r = send(srv, "PUT", SECRET, obj, "application/json")
    assert error_of(r)[0] == 400 and "deeper than" in error_of(r)[2]
    nothing_written(srv)


def test_depth_at_the_limit_is_parsed_and_brackets_in_strings_do_not_count(srv: Server) -> None:
    def kv_body(arrays: int) -> bytes:  # {"data": {"k": [[…]]}}: 2 objects + the arrays
        return ('{"data":{"k":' + "[" * arrays + "]" * arrays + "}}").encode()

    assert send(srv, "POST", KV, kv_body(MAX_JSON_DEPTH - 2), "application/json").status_code == 200
    r = send(srv, "POST", KV, kv_body(MAX_JSON_DEPTH - 1), "application/json")
    assert error_of(r)[0] == 400 and "deeper than" in error_of(r)[2]
    brackets = json.dumps({"value": "[" * 1000 + "{" * 1000 + '\\"['}).encode()
    assert send(srv, "PUT", SECRET, brackets, "application/json").status_code == 200


@pytest.mark.parametrize("escaped", ["\\ud800", "\\udfff", "x\\udc80y"])
def test_a_lone_surrogate_in_a_value_is_400(srv: Server, escaped: str) -> None:
    body = ('{"value": "' + escaped + '"}').encode()
    r = send(srv, "PUT", SECRET, body, "application/json")
    assert error_of(r)[:2] == (400, "invalid_input")
    assert "surrogate" in error_of(r)[2]
    body = ('{"data": {"k": "' + escaped + '"}}').encode()
    r = send(srv, "POST", KV, body, "application/json")
    assert error_of(r)[0] == 400 and "surrogate" in error_of(r)[2]
    nothing_written(srv)


def test_a_surrogate_pair_is_a_character(srv: Server) -> None:
    body = b'{"value": "\\ud83d\\ude00"}'
    assert send(srv, "PUT", SECRET, body, "application/json").status_code == 200
    r = srv.call("GET", SECRET + "?reveal=true")
    assert r.json()["value"] == "\U0001f600"


# -- defect 9: media type, duplicate keys, encodings --------------------------------------------
@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "application/jsonx",
        "",
    ],
)
def test_a_body_that_is_not_declared_json_is_415(srv: Server, content_type: str) -> None:
    r = send(srv, "PUT", SECRET, b'{"value": "v"}', content_type)
    status, code, message = error_of(r)
    assert (status, code) == (415, "unsupported_media_type")
    assert "application/json" in message
    r = send(srv, "POST", KV, b'{"data": {"k": "v"}}', content_type)
    assert r.status_code == 415  # type: ignore[attr-defined]
    nothing_written(srv)


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "Application/JSON", None],
)
def test_json_with_parameters_or_no_type_is_accepted(srv: Server, content_type: str | None) -> None:
    # No Content-Type at all: the bao CLI sends none (tests/integration/test_server_bao.py).
    assert send(srv, "PUT", SECRET, b'{"value": "v"}', content_type).status_code == 200
    assert send(srv, "POST", KV, b'{"data": {"k": "v"}}', content_type).status_code == 200


def test_a_structured_json_type_is_accepted(srv: Server) -> None:
    r = send(srv, "PUT", SECRET, b'{"value": "v"}', "application/vnd.sealbox+json")
    assert r.status_code == 200  # type: ignore[attr-defined]


def test_an_empty_body_needs_no_type(srv: Server) -> None:
    send(srv, "PUT", SECRET, b'{"value": "v"}', None)
    assert srv.call("DELETE", SECRET).status_code < 400
    r = send(srv, "POST", SECRET + "/undelete", b"", "text/plain")
    assert r.status_code < 400, r.text  # type: ignore[attr-defined]


def test_duplicate_keys_are_400(srv: Server) -> None:
    r = send(srv, "PUT", SECRET, b'{"value": "a", "value": "b"}', "application/json")
    status, code, message = error_of(r)
    assert (status, code) == (400, "invalid_input") and "duplicate key 'value'" in message
    r = send(srv, "POST", KV, b'{"data": {"k": "a", "k": "b"}}', "application/json")
    assert error_of(r)[0] == 400 and "duplicate key 'k'" in error_of(r)[2]
    nothing_written(srv)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_a_json_body_that_is_not_utf8_is_400(srv: Server, encoding: str) -> None:
    body = '{"value": "v"}'.encode(encoding)
    r = send(srv, "PUT", SECRET, body, "application/json")
    status, code, message = error_of(r)
    assert (status, code) == (400, "invalid_input") and "UTF-8" in message
    assert send(srv, "PUT", SECRET, b'{"value": "\xff"}', None).status_code == 400
    nothing_written(srv)


# -- defect 8: invalid UTF-8 in a path ----------------------------------------------------------
@pytest.mark.parametrize("bad", ["%ff", "%fe", "%c3", "%ed%a0%80", "a%80b"])
def test_invalid_utf8_in_a_path_is_400(srv: Server, bad: str) -> None:
    r = srv.client.request(
        "POST", f"/v1/secret/data/payments/dev/{bad}", json={"data": {"k": "v"}}, headers=srv.h()
    )
    assert r.status_code == 400, r.text
    assert "UTF-8" in " ".join(r.json()["errors"])
    r = srv.client.get(f"/v1/secrets/payments/dev/{bad}", headers=srv.h())
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_input"


def test_distinct_kv_paths_stay_distinct_documents(srv: Server) -> None:
    put = srv.client.post
    for i, rest in enumerate(["a.b", "a-b", "a_b", "A_b", "a/b"]):
        r = put(f"/v1/secret/data/payments/dev/{rest}", json={"data": {"i": i}}, headers=srv.h())
        assert r.status_code == 200, r.text
    for i, rest in enumerate(["a.b", "a-b", "a_b", "A_b", "a/b"]):
        r = srv.client.get(f"/v1/secret/data/payments/dev/{rest}", headers=srv.h())
        assert r.json()["data"]["data"] == {"i": i}
    # Invalid UTF-8, and characters a folder cannot hold: a 400 naming the segment.
    for rest in ("%ff", "%fe", "caf%C3%A9", "%EF%BF%BD", "a%3Ab"):
        r = put(f"/v1/secret/data/payments/dev/{rest}", json={"data": {"i": 9}}, headers=srv.h())
        assert r.status_code == 400, (rest, r.text)


# -- defect 11: reflected headers ---------------------------------------------------------------
@pytest.mark.parametrize(
    "rid",
    ["x" * 129, 'quote"d', "new\nline", "tab\tbed", "back\\slash", "ünï", "sp ace", ""],
)
def test_an_unacceptable_request_id_is_replaced(
    srv: Server, rid: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="sealbox.server.access"):
        r = srv.client.get(
            "/v1/secrets/payments/dev/NOPE",
            headers={**srv.h(), "X-Request-Id": rid.encode("utf-8")},  # type: ignore[dict-item]
        )
    given = r.headers["x-request-id"]
    assert given != rid and len(given) == 16 and given.isalnum()
    assert r.json()["error"]["request_id"] == given
    logged = [rec.fields["request_id"] for rec in caplog.records if hasattr(rec, "fields")]
    assert logged == [given]


def test_an_acceptable_request_id_is_kept(srv: Server) -> None:
    rid = "A" * 128
    r = srv.client.get("/v1/secrets/payments/dev/NOPE", headers={**srv.h(), "X-Request-Id": rid})
    assert r.headers["x-request-id"] == rid == r.json()["error"]["request_id"]


def test_the_user_agent_in_audit_events_is_bounded_and_printable(srv: Server) -> None:
    agent = b'evil"\\agent\x1b[31m\r\xe9' + b"A" * 1000
    r = srv.client.get(SECRET, headers={**srv.h(), "User-Agent": agent})  # type: ignore[dict-item]
    assert r.status_code == 404
    audit_stored(srv.client.app)  # type: ignore[arg-type]
    vault = open_vault()
    try:
        agents = [e["user_agent"] for e in vault.audit.tail(5) if e["path"] == "payments/dev/X"]
    finally:
        vault.close()
    assert agents, "the denied read left no event"
    seen = agents[-1]
    assert seen.startswith("evil??agent?[31m?") and seen.endswith("AAA") and len(seen) == 256
    assert all(0x20 <= ord(c) < 0x7F and c not in '"\\' for c in seen)
