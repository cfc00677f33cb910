"""Stream sinks for shipping elsewhere: a standard stream, or syslog.

They carry the event (not a chain: the chained copies are in the database or a file).
``stdout`` suits a server whose output is collected; a CLI prints results on stdout, so
use ``stderr`` or ``syslog`` there.
"""

from __future__ import annotations

import logging
import logging.handlers
import socket
import sys
from typing import TextIO

from sealbox.audit.events import AuditKeys, Event, canonical


class StreamSink:
    def __init__(self, which: str) -> None:
        if which not in ("stdout", "stderr"):
            raise ValueError(which)
        self.name = which

    def _stream(self) -> TextIO:
        return sys.stdout if self.name == "stdout" else sys.stderr

    def write(self, event: Event, keys: AuditKeys | None, node: str) -> None:
        stream = self._stream()
        stream.write("sealbox-audit " + canonical({**event, "node": node}).decode() + "\n")
        stream.flush()


class _RaisingSysLogHandler(logging.handlers.SysLogHandler):
    def handleError(self, record: logging.LogRecord) -> None:
        # NOTE: logging swallows emit errors; surface them so the recorder sees a refusal.
        exc = sys.exc_info()[1]
        raise exc if isinstance(exc, OSError) else OSError("syslog write failed")


class SyslogSink:
    """``syslog`` (/dev/log), ``syslog:/path/to/socket`` or ``syslog:udp:HOST:PORT``."""

    def __init__(self, target: str) -> None:
        self.name = f"syslog:{target}" if target else "syslog"
        self._target = target or "/dev/log"
        self._handler: logging.handlers.SysLogHandler | None = None

    def _open(self) -> logging.handlers.SysLogHandler:
        if self._handler is None:
            if self._target.startswith("udp:"):
                host, _, port = self._target[4:].rpartition(":")
                handler = _RaisingSysLogHandler(
                    address=(host, int(port)), socktype=socket.SOCK_DGRAM
                )
            else:
                handler = _RaisingSysLogHandler(address=self._target)
            handler.setFormatter(logging.Formatter("sealbox-audit: %(message)s"))
            self._handler = handler
        return self._handler

    def write(self, event: Event, keys: AuditKeys | None, node: str) -> None:
        record = logging.LogRecord(
            "sealbox.audit",
            logging.INFO,
            __file__,
            0,
            canonical({**event, "node": node}).decode(),
            None,
            None,
        )
        self._open().emit(record)

    def close(self) -> None:
        if self._handler is not None:
            self._handler.close()
