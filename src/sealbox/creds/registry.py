"""The credentials backends by name (``postgres``, ``mysql``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sealbox.errors import InvalidInput

if TYPE_CHECKING:
    from sealbox.creds.interface import CredBackend

BACKENDS = ("postgres", "mysql")


def backend(name: str) -> CredBackend:
    """The backend called ``name``; InvalidInput naming the known ones."""
    if name == "postgres":
        from sealbox.creds.postgres import PostgresBackend

        return PostgresBackend()
    if name in ("mysql", "mariadb"):
        from sealbox.creds.mysql import MysqlBackend

        return MysqlBackend()
    raise InvalidInput(f"unknown credentials backend {name[:40]!r}: use {' or '.join(BACKENDS)}")
