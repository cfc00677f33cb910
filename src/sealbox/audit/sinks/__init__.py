"""Audit sinks: ``db`` (default), ``file:PATH`` (JSONL), ``stdout``/``stderr``, ``syslog``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sealbox.errors import InvalidInput

if TYPE_CHECKING:
    from sealbox.audit.sinks.interface import Sink
    from sealbox.storage.interface import AuditWriter

SINK_KINDS = ("db", "file:PATH", "stdout", "stderr", "syslog[:/dev/log | :udp:HOST:PORT]")


def build_sinks(specs: Sequence[str], storage: AuditWriter, *, file_max_bytes: int) -> list[Sink]:
    """Sinks from their specs; a bad spec is an error naming it (never "no audit")."""
    sinks: list[Sink] = []
    for raw in specs:
        spec = raw.strip()
        kind, _, arg = spec.partition(":")
        if spec == "db":
            from sealbox.audit.sinks.db import DbSink

            sinks.append(DbSink(storage))
        elif kind == "file" and arg:
            from sealbox.audit.sinks.jsonl import JsonlSink

            sinks.append(JsonlSink(Path(arg).expanduser(), max_bytes=file_max_bytes))
        elif spec in ("stdout", "stderr"):
            from sealbox.audit.sinks.stream import StreamSink

            sinks.append(StreamSink(spec))
        elif kind == "syslog":
            from sealbox.audit.sinks.stream import SyslogSink

            if arg.startswith("udp:") and not arg[4:].rpartition(":")[2].isdigit():
                raise InvalidInput(f"invalid audit sink {spec!r}: use syslog:udp:HOST:PORT")
            sinks.append(SyslogSink(arg))
        else:
            raise InvalidInput(
                f"invalid audit sink {spec!r}", hint="use one of: " + ", ".join(SINK_KINDS)
            )
    if not sinks:
        raise InvalidInput("no audit sink configured: an empty list would mean no audit trail")
    return sinks
