"""Running `sealbox ARGS` in-process for tests: the result type and a piped stdin."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Result:
    status: int
    out: str
    err: str


Cli = Callable[..., Result]


def fake_stdin(data: bytes) -> io.TextIOWrapper:
    """A non-tty stdin with a ``.buffer``, as a pipe would be."""
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
