"""The access log's fast writer: the same JSON lines as the logging path, one write per turn."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest

from sealbox.server import logs

FIELDS = {"request_id": "r1", "method": "GET", "route": "/v1/x", "status": 200}


def _writer() -> tuple[logs.AccessWriter, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    return logs.AccessWriter(handler), stream


def test_line_matches_the_formatter() -> None:
    writer, _ = _writer()
    record = logging.LogRecord("sealbox.server.access", logging.INFO, "f", 1, "request", None, None)
    record.fields = FIELDS
    slow = json.loads(logs.JsonFormatter().format(record))
    fast = json.loads(writer.line(FIELDS))
    assert list(fast) == list(slow)
    assert {k: v for k, v in fast.items() if k != "ts"} == {
        k: v for k, v in slow.items() if k != "ts"
    }
    assert fast["ts"].endswith("Z") and len(fast["ts"]) == len(slow["ts"])


def test_lines_of_one_loop_turn_are_written_together() -> None:
    writer, stream = _writer()

    async def main() -> tuple[str, str]:
        writer.write(FIELDS)
        writer.write({**FIELDS, "request_id": "r2"})
        before = stream.getvalue()  # nothing yet: the drain runs at the end of the turn
        await asyncio.sleep(0)
        return before, stream.getvalue()

    before, after = asyncio.run(main())
    assert before == ""
    lines = after.splitlines()
    assert [json.loads(x)["request_id"] for x in lines] == ["r1", "r2"]


def test_without_a_loop_the_line_is_written_at_once() -> None:
    writer, stream = _writer()
    writer.write(FIELDS)
    assert json.loads(stream.getvalue())["status"] == 200


def test_access_uses_the_installed_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    writer, stream = _writer()
    monkeypatch.setattr(logs.AccessWriter, "installed", writer)
    level = logs.ACCESS.level
    try:
        logs.ACCESS.setLevel(logging.INFO)
        logs.access(FIELDS)
        assert json.loads(stream.getvalue())["logger"] == "sealbox.server.access"
        logs.ACCESS.setLevel(logging.WARNING)
        logs.access(FIELDS)
        assert len(stream.getvalue().splitlines()) == 1  # disabled: no line
    finally:
        logs.ACCESS.setLevel(level)


def test_a_closed_stream_never_fails_a_request() -> None:
    writer, stream = _writer()
    stream.close()
    writer.write(FIELDS)  # no exception


def test_lines_go_out_in_whole_chunks_that_fit_a_pipe() -> None:
    writes: list[str] = []

    class Stream(io.StringIO):
        def write(self, s: str) -> int:
            writes.append(s)
            return len(s)

    handler = logging.StreamHandler(Stream())
    writer = logs.AccessWriter(handler)

    async def main() -> None:
        for i in range(100):
            writer.write({**FIELDS, "request_id": f"r{i}", "pad": "x" * 200})
        await asyncio.sleep(0)

    asyncio.run(main())
    assert len(writes) > 1
    assert all(len(w.encode()) <= logs.PIPE_BUF and w.endswith("\n") for w in writes)
    ids = [json.loads(x)["request_id"] for w in writes for x in w.splitlines()]
    assert ids == [f"r{i}" for i in range(100)]
