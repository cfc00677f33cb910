"""``client.audit``: the server's audit trail shaped as the embedded ``vault.audit``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sealbox.model import CheckpointRow, SecretRef, SecretValue, Verification

if TYPE_CHECKING:
    from sealbox.client.client import Client


class RemoteAudit:
    """The server's audit trail as ``AuditAPI`` names it (``vault.audit.log`` …); the
    work is the Client's flat ``audit_*`` methods, which the SDK keeps."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def __repr__(self) -> str:
        return f"RemoteAudit({self._client.address!r})"

    def log(
        self,
        *,
        secret: SecretRef | None = None,
        identity: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        operations: Sequence[str] | None = None,
        denied: bool = False,
        source: str | None = None,
        limit: int | None = 100,
    ) -> list[dict[str, Any]]:
        return self._client.audit_log(
            secret=secret,
            identity=identity,
            since=since,
            until=until,
            operations=operations,
            denied=denied,
            source=source,
            limit=limit,
        )

    def who_read(
        self,
        ref: SecretRef | None = None,
        *,
        version: int | None = None,
        value_hmac: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[dict[str, Any]]:
        return self._client.who_read(
            ref, version=version, value_hmac=value_hmac, since=since, until=until
        )

    def value_hmac(self, value: SecretValue) -> str:
        return self._client.audit_hash(value)

    def verify(self, files: Sequence[str] = ()) -> Verification:
        return self._client.audit_verify(files)

    def accept_rejected(self, file: str) -> str:
        return self._client.audit_accept_rejected(file)

    def checkpoint(self) -> list[CheckpointRow]:
        return self._client.audit_checkpoint()
