"""The LIST rewrite that lets hvac's LIST requests through the httptools parser."""

from __future__ import annotations

from typing import Any

from sealbox.server.fastpath.protocol import rewrite_list


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


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_kv_read_body_is_the_envelope_byte_for_byte() -> None:
    import json
    import re
    from datetime import UTC, datetime, timedelta, timezone

    from sealbox.documents import DocumentRead, DocVersion
    from sealbox.server.routes_kv import _version_meta, envelope, read_body

    created = datetime(2026, 11, 25, 21, 14, 33, 657850, tzinfo=UTC)
    five = timezone(timedelta(hours=5))
    cases = [
        DocumentRead({"value": "plain"}, DocVersion(1, created, None, False), {}),
        DocumentRead(
            {"user": "ünïcødé ☃", "n": 3, "nested": {"a": [1, None, True]}},
            DocVersion(42, created, created + timedelta(hours=1), False),
            {"owner": "team-a", "managed-by": "eso"},
        ),
        DocumentRead(
            {"value": 'quotes " and \\ and \n'},
            DocVersion(7, created.astimezone(five), None, False),
            {},
            ("value: the value is not UTF-8 text",),
        ),
    ]
    for read in cases:
        fast = read_body(read)
        slow = json.dumps(
            envelope(
                {"data": read.data, "metadata": _version_meta(read.version, read.custom_metadata)},
                list(read.warnings),
            ),
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        rid = re.compile(rb'"request_id":"[0-9a-f]{32}"')
        assert rid.sub(b"", fast) == rid.sub(b"", slow)
        assert json.loads(fast)["data"]["data"] == read.data


def test_vault_times_are_go_rfc3339nano() -> None:
    from datetime import UTC, datetime

    from sealbox.server.routes_kv import go_duration, vault_time

    assert vault_time(datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=UTC)) == (
        "2026-01-02T03:04:05.12Z"
    )
    assert vault_time(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05Z"
    assert vault_time(None) == ""
    assert [go_duration(s) for s in (0, 45, 90, 3600, 5419)] == [
        "0s",
        "45s",
        "1m30s",
        "1h0m0s",
        "1h30m19s",
    ]


# -- the protocol, fed by hand: LIST wherever a request starts, bounded heads ----------------
class FeedTransport(FakeTransport):
    """What uvicorn's protocol asks of an asyncio transport."""

    def get_extra_info(self, name: str) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 80)}.get(name)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def set_protocol(self, protocol: Any) -> None:  # pragma: no cover - no upgrades here
        raise AssertionError("no upgrade expected")


Seen = list[tuple[str, str, bytes, bytes]]


def feed(chunks: list[bytes], limits: Any = None) -> tuple[Seen, bytes, bool]:
    """Run the protocol over ``chunks`` (one read each); the requests the app saw (method,
    path, query, body), everything written back, and whether the connection was closed."""
    import asyncio

    import uvicorn
    from uvicorn.server import ServerState

    from sealbox.server.fastpath.protocol import Limits, SealboxHttpProtocol

    seen: Seen = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        seen.append((scope["method"], scope["path"], scope["query_string"], body))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def main() -> tuple[bytes, bool]:
        config = uvicorn.Config(app, http=SealboxHttpProtocol, lifespan="off", log_config=None)
        config.load()
        loop = asyncio.get_running_loop()
        proto = SealboxHttpProtocol(
            config=config, server_state=ServerState(), app_state={}, _loop=loop
        )
        proto.limits = limits or Limits()
        transport = FeedTransport()
        proto.connection_made(transport)  # type: ignore[arg-type]
        for chunk in chunks:
            if not transport.closed:
                proto.data_received(chunk)
            for _ in range(20):
                await asyncio.sleep(0)
        proto.connection_lost(None)
        return b"".join(transport.writes), transport.closed

    written, closed = asyncio.run(main())
    return seen, written, closed


GET_A = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
LIST_B = b"LIST /v1/secret/metadata/b?x=1 HTTP/1.1\r\nHost: x\r\n\r\n"
BODY = b"\r\nLIST /evil HTTP/1.1\r\n\r\nLIST"  # a body that looks like a request line
POST_C = b"POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
EXPECTED = [
    ("GET", "/a", b"", b""),
    ("GET", "/v1/secret/metadata/b", b"x=1&list=true", b""),
    ("POST", "/c", b"", BODY),
    ("GET", "/v1/secret/metadata/b", b"x=1&list=true", b""),
]
STREAM = GET_A + LIST_B + POST_C + LIST_B


def test_pipelined_list_after_another_request_is_rewritten() -> None:
    seen, written, _ = feed([STREAM])
    assert seen == EXPECTED
    assert written.count(b"HTTP/1.1 200 OK") == 4


def test_list_split_across_reads_anywhere_is_rewritten() -> None:
    # Every split point of the stream, and one byte per read: the same four requests.
    for cut in range(1, len(STREAM)):
        seen, _, _ = feed([STREAM[:cut], STREAM[cut:]])
        assert seen == EXPECTED, cut
    seen, _, _ = feed([STREAM[i : i + 1] for i in range(len(STREAM))])
    assert seen == EXPECTED


def test_too_many_or_too_large_headers_are_431() -> None:
    from sealbox.server.fastpath.protocol import Limits

    many = b"GET /a HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n"
    seen, written, closed = feed([many])
    assert seen == [] and written.startswith(b"HTTP/1.1 431 ") and closed
    assert b"request_header_fields_too_large" in written
    big = b"GET /a HTTP/1.1\r\nX-Big: " + b"v" * 70_000 + b"\r\n\r\n"
    seen, written, closed = feed([big])
    assert seen == [] and written.startswith(b"HTTP/1.1 431 ") and closed
    # A long request target counts too; a head under the bounds is served.
    small = Limits(max_headers=3, max_header_bytes=200)
    seen, written, _ = feed([b"GET /" + b"a" * 300 + b" HTTP/1.1\r\n\r\n"], small)
    assert seen == [] and written.startswith(b"HTTP/1.1 431 ")
    seen, written, _ = feed([GET_A + b"GET /b HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"], small)
    assert [s[1] for s in seen] == ["/a", "/b"]


def test_a_huge_header_is_refused_before_it_is_complete() -> None:
    # Never ended: the parser would buffer it whole before on_header; the raw count stops it.
    chunks = [b"GET /a HTTP/1.1\r\nX-Big: "] + [b"v" * 16_384] * 8
    seen, written, closed = feed(chunks)
    assert seen == [] and written.startswith(b"HTTP/1.1 431 ") and closed
