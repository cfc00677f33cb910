"""Structured JSON log lines on stderr: one per request, plus unexpected errors.

A line holds the request id, method, route template, status, duration, identity name and
token accessor, never a token, a value or a concrete secret path. Unexpected errors are
logged with their type and stack frames only (an exception message could quote data).
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from typing import Any

ACCESS = logging.getLogger("sealbox.server.access")
ERRORS = logging.getLogger("sealbox.server.error")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        return json.dumps(line, separators=(",", ":"), default=str)


def configure(level: str) -> None:
    """Send sealbox's and uvicorn's logs to stderr as JSON lines (the server process only)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("sealbox", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False


def access(fields: dict[str, Any]) -> None:
    if ACCESS.isEnabledFor(logging.INFO):
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
