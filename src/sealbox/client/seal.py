"""A server's seal over HTTP (Vault's ``sys/seal-status``, ``sys/unseal``, ``sys/seal``):
what ``sealbox operator`` uses in remote mode. Unseal needs no token (the share is the
credential); seal needs an admin token."""

from __future__ import annotations

from typing import Any

from sealbox.client.transport import Transport


def _transport(addr: str, cacert: str | None, timeout: float) -> Transport:
    return Transport(addr, cacert=cacert, timeout=timeout)


def seal_status(addr: str, *, cacert: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
    """The server's ``/v1/sys/seal-status`` answer (Vault's fields)."""
    transport = _transport(addr, cacert, timeout)
    try:
        data: dict[str, Any] = transport.call("GET", "/v1/sys/seal-status", token=None)
    finally:
        transport.close()
    return data


def submit_unseal(
    addr: str,
    share: str | None = None,
    *,
    reset: bool = False,
    cacert: str | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Send one unseal share (or ``reset``); returns the seal status after it."""
    body: dict[str, Any] = {"reset": True} if reset else {"key": share}
    transport = _transport(addr, cacert, timeout)
    try:
        data: dict[str, Any] = transport.call("PUT", "/v1/sys/unseal", token=None, body=body)
    finally:
        transport.close()
    return data


def seal(addr: str, token: str, *, cacert: str | None = None, timeout: float = 10.0) -> None:
    """Seal the server: its keys leave its memory (admin token)."""
    transport = _transport(addr, cacert, timeout)
    try:
        transport.call("PUT", "/v1/sys/seal", token=token)
    finally:
        transport.close()
