"""The LIST rewrite that lets hvac's LIST requests through the httptools parser."""

from __future__ import annotations

from sealbox.server.protocol import rewrite_list


def test_list_becomes_get_with_list_true() -> None:
    req = b"LIST /v1/secret/metadata/app HTTP/1.1\r\nHost: x\r\n\r\n"
    assert rewrite_list(req) == b"GET /v1/secret/metadata/app?list=true HTTP/1.1\r\nHost: x\r\n\r\n"


def test_existing_query_is_kept() -> None:
    req = b"LIST /v1/secret/metadata/app?a=1 HTTP/1.1\r\n\r\n"
    assert rewrite_list(req).startswith(b"GET /v1/secret/metadata/app?a=1&list=true HTTP/1.1\r\n")


def test_other_requests_and_malformed_lines_are_untouched() -> None:
    for data in (
        b"GET /v1/sys/health HTTP/1.1\r\n\r\n",
        b"LISTEN /x HTTP/1.1\r\n\r\n",
        b"LIST /x\r\n\r\n",
        b"LIST /x HTTP/1.1",
    ):
        assert rewrite_list(data) == data
