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


def test_writes_of_one_turn_leave_together() -> None:
    import asyncio

    from sealbox.server.protocol import CorkedTransport

    raw = FakeTransport()

    async def main() -> None:
        corked = CorkedTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
        corked.write(b"HTTP/1.1 200 OK\r\n\r\n")
        corked.write(b"body")
        assert raw.writes == []
        await asyncio.sleep(0)
        assert raw.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
        assert corked.get_extra_info("peername") == "info:peername"
        corked.write(b"last")
        corked.close()  # sends what is buffered, then closes
        assert raw.writes[-1] == b"last" and raw.closed
        corked.write(b"late")
        await asyncio.sleep(0)
        assert raw.writes[-1] == b"last"  # nothing written to a closing transport

    asyncio.run(main())


def test_kv_read_body_is_the_envelope_byte_for_byte() -> None:
    import json
    import re
    from datetime import UTC, datetime, timedelta, timezone

    from sealbox.server.routes_kv import _version_meta, envelope, read_body

    created = datetime(2026, 11, 25, 21, 14, 33, 657850, tzinfo=UTC)
    cases = [
        ({"value": "plain"}, created, 1),
        ({"user": "ünïcødé ☃", "n": 3, "nested": {"a": [1, None, True]}}, created, 42),
        (
            {"value": 'quotes " and \\\\ and \\n'},
            created.astimezone(timezone(timedelta(hours=5))),
            7,
        ),
    ]
    for fields, when, version in cases:
        fast = read_body(fields, when, version)
        slow = json.dumps(
            envelope({"data": fields, "metadata": _version_meta(when, version, None)}),
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        rid = re.compile(rb'"request_id":"[0-9a-f]{32}"')
        assert rid.sub(b"", fast) == rid.sub(b"", slow)
        assert json.loads(fast)["data"]["data"] == fields
