"""Structured JSON log lines on stderr: one per request, plus unexpected errors.

A line holds the request id, method, route template, status, duration, identity name and
token accessor, never a token, a value or a concrete secret path. Unexpected errors are
logged with their type and stack frames only (an exception message could quote data).

Access lines skip the ``logging`` machinery once :func:`configure` has set up the server's
handler: a ``LogRecord``, ``findCaller``, the formatter and a flush per line cost about
60 µs, a third of a secret read. :class:`AccessWriter` writes the same JSON line (same
keys, same order) to the same stream under the handler's lock, and writes the lines of
one event-loop turn with one ``write``. Without :func:`configure` (tests, embedding) access
lines go through ``logging`` as before, so handlers and ``caplog`` see them.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import sys
import time
import traceback
from typing import Any, ClassVar

ACCESS = logging.getLogger("sealbox.server.access")
PIPE_BUF = 4096
ERRORS = logging.getLogger("sealbox.server.error")


def timestamp(created: float) -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
        + f".{int(created * 1000) % 1000:03d}Z"
    )


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        return json.dumps(line, separators=(",", ":"), default=str)


class AccessWriter:
    """Access lines for one handler's stream, written once per event-loop turn."""

    #: The writer :func:`configure` installed in this process, if any.
    installed: ClassVar[AccessWriter | None] = None

    def __init__(self, handler: logging.StreamHandler[Any]) -> None:
        self.handler = handler
        self._lines: list[str] = []
        self._second = -1
        self._prefix = ""

    def line(self, fields: dict[str, Any]) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
        line: dict[str, Any] = {
            "ts": f"{self._prefix}.{int(now * 1000) % 1000:03d}Z",
            "level": "info",
            "logger": ACCESS.name,
            "msg": "request",
        }
        line.update(fields)
        return json.dumps(line, separators=(",", ":"), default=str)

    def write(self, fields: dict[str, Any]) -> None:
        lines = self._lines
        lines.append(self.line(fields))
        if len(lines) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.drain)
            except RuntimeError:
                self.drain()

    def drain(self) -> None:
        lines, self._lines = self._lines, []
        if not lines:
            return
        handler = self.handler
        handler.acquire()
        try:
            stream = handler.stream
            chunk: list[str] = []
            size = 0
            for line in lines:
                # Worker processes share stderr: a pipe keeps a write whole only up to
                # PIPE_BUF bytes, so lines go out in chunks of at most that (whole lines).
                if chunk and size + len(line) >= PIPE_BUF:
                    stream.write("".join(chunk))
                    stream.flush()
                    chunk, size = [], 0
                chunk.append(line + "\n")
                size += len(line) + 1
            stream.write("".join(chunk))
            stream.flush()
        except (OSError, ValueError):  # a closed or full stderr must not fail requests
            pass
        finally:
            handler.release()


def configure(level: str) -> None:
    """Send sealbox's and uvicorn's logs to stderr as JSON lines (the server process only)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("sealbox", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
    if AccessWriter.installed is not None:
        AccessWriter.installed.drain()
    writer = AccessWriter.installed = AccessWriter(handler)
    atexit.register(writer.drain)


def access(fields: dict[str, Any]) -> None:
    if ACCESS.isEnabledFor(logging.INFO):
        writer = AccessWriter.installed
        if writer is not None:
            writer.write(fields)
        else:
            ACCESS.info("request", extra={"fields": fields})


def unexpected(exc: BaseException, request_id: str) -> None:
    """An unexpected error: its type and where, never its message."""
    frames = [
        f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} in {f.name}"
        for f in traceback.extract_tb(exc.__traceback__)
    ]
    ERRORS.error(
        "unexpected error",
        extra={"fields": {"request_id": request_id, "error": type(exc).__name__, "at": frames}},
    )
