"""``client.rotations``: a server's rotations, shaped as the embedded ``vault.rotations``
(the same method names and results; the server runs the steps)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sealbox.client.errors import reading
from sealbox.client.transport import path_of
from sealbox.errors import InvalidInput
from sealbox.model import DueOutcome, DueRotation, RotationConfig, RotationInfo, SecretRef
from sealbox.wire import rotations as wire

if TYPE_CHECKING:
    from sealbox.client.client import Client

#: The server's default grace (``stages.DEFAULT_GRACE_SECONDS``): one day.
DEFAULT_GRACE = timedelta(days=1)


def _secret(ref: SecretRef, *rest: str) -> str:
    return path_of("v1", "rotation", "secrets", ref.project, ref.env, ref.name, *rest)


def _run(rotation_id: str, *rest: str) -> str:
    return path_of("v1", "rotation", "runs", rotation_id, *rest)


class RemoteRotations:
    """Rotations through a sealbox server."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def __repr__(self) -> str:
        return f"RemoteRotations({self._client.address!r})"

    def _rotation(self, data: Any, what: str) -> RotationInfo:
        with reading(self._client.address, what):
            found = wire.decode_rotation(data)
        self._changed(found.ref)
        return found

    def _changed(self, ref: SecretRef) -> None:
        # NOTE: a rotation may have promoted a new current version: this client's cached
        # reads of the secret (and its environment's resolves) would answer with the old
        # one, as they do after a write made through this client.
        self._client.invalidate(ref.project, ref.env, ref.name)

    def configure(
        self,
        ref: SecretRef,
        method: str,
        *,
        options: Mapping[str, str] | None = None,
        grace: timedelta = DEFAULT_GRACE,
        window: str = "",
        start_offset: timedelta = timedelta(0),
        notify_url: str = "",
    ) -> RotationConfig:
        body = {
            "method": method,
            "options": dict(options or {}),
            "grace_seconds": int(grace.total_seconds()),
            "window": window,
            "start_offset_seconds": int(start_offset.total_seconds()),
            "notify_url": notify_url,
        }
        data = self._client._call("PUT", _secret(ref), body=body)
        with reading(self._client.address, "rotation configure"):
            return wire.decode_config(data)

    def config(self, ref: SecretRef) -> RotationConfig | None:
        from sealbox.errors import NotFound

        try:
            data = self._client._call("GET", _secret(ref))
        except NotFound as exc:
            if "no rotation settings" in exc.message:
                return None
            raise
        with reading(self._client.address, "rotation config"):
            return wire.decode_config(data)

    def start(
        self, ref: SecretRef, *, dry_run: bool = False, rotation_id: str | None = None
    ) -> RotationInfo:
        body: dict[str, Any] = {"dry_run": dry_run}
        if rotation_id is not None:
            body["rotation_id"] = rotation_id
        data = self._client._call("POST", _secret(ref, "rotate"), body=body)
        return self._rotation(data, "rotate")

    def resume(self, target: str | SecretRef) -> RotationInfo:
        path = (
            _secret(target, "resume") if isinstance(target, SecretRef) else _run(target, "resume")
        )
        return self._rotation(self._client._call("POST", path, body={}), "rotation resume")

    def cancel(self, target: str | SecretRef) -> RotationInfo:
        path = (
            _secret(target, "cancel") if isinstance(target, SecretRef) else _run(target, "cancel")
        )
        return self._rotation(self._client._call("POST", path, body={}), "rotation cancel")

    def get(self, rotation_id: str) -> RotationInfo:
        return self._rotation(self._client._call("GET", _run(rotation_id)), "rotation")

    def status(self, *, failed_only: bool = False, limit: int = 100) -> list[RotationInfo]:
        query = {"failed": "true"} if failed_only else None
        data = self._client._call("GET", "/v1/rotation/status", query=query)
        with reading(self._client.address, "rotation status"):
            return wire.decode_rotations(data)[:limit]

    def history(self, ref: SecretRef, *, limit: int = 100) -> list[RotationInfo]:
        data = self._client._call("GET", _secret(ref, "history"))
        with reading(self._client.address, "rotation history"):
            return wire.decode_rotations(data)[:limit]

    def revoke(self, ref: SecretRef, version: int) -> None:
        try:
            self._client._call("POST", _secret(ref, "revoke"), body={"version": version})
        finally:
            # NOTE: copies of the revoked value may sit under any cache key (a read by its
            # number, a current read or a resolve from before the rotation), in memory and
            # on disk: none may be served again, so every copy goes. Revocations are rare.
            self._client.wipe_offline_cache()

    def rotate_due(
        self, *, limit: int | None = None, now: datetime | None = None
    ) -> list[DueOutcome]:
        if now is not None:
            raise InvalidInput("a server rotates by its own clock: `now` is for an embedded vault")
        body = {"limit": limit} if limit is not None else {}
        data = self._client._call("POST", "/v1/rotation/due", body=body)
        with reading(self._client.address, "rotate due"):
            outcomes = wire.decode_outcomes(data)
        for outcome in outcomes:
            self._changed(outcome.ref)
        return outcomes

    def due(self, now: datetime | None = None) -> list[DueRotation]:
        if now is not None:
            raise InvalidInput("a server rotates by its own clock: `now` is for an embedded vault")
        data = self._client._call("GET", "/v1/rotation/due")
        with reading(self._client.address, "rotation due"):
            return wire.decode_due(data)
