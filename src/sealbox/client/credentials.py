"""Tokens saved by ``sealbox login``: in the OS keyring, or else a 0600 file.

``SEALBOX_HOME/credentials.json`` (0600, written atomically) lists the servers logged in
to: for each, where its token is (``keyring`` or ``file``), the identity, the token's
accessor and its expiry; with the ``file`` store the token itself is there too. Choose
the store with ``SEALBOX_TOKEN_STORE=keyring|file`` (default ``auto``: the keyring when
one works, else the file). The file is read without importing ``keyring`` unless the
token is in the keyring, which keeps ``sealbox run`` fast.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sealbox.errors import InvalidInput

FILE_NAME = "credentials.json"
KEYRING_SERVICE = "sealbox-token"
STORES = ("auto", "keyring", "file")


@dataclass(frozen=True)
class SavedLogin:
    """A server logged in to (never the token itself)."""

    addr: str
    store: str
    identity: str
    accessor: str
    expires_at: str


def _path(home: Path) -> Path:
    return home / FILE_NAME


def _load(home: Path) -> dict[str, Any]:
    path = _path(home)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise InvalidInput(
            f"cannot read {path}: {getattr(exc, 'strerror', None) or type(exc).__name__}",
            hint="delete it and log in again",
            hint_key="login_again",
        ) from None
    servers = data.get("servers") if isinstance(data, dict) else None
    return servers if isinstance(servers, dict) else {}


def _save(home: Path, servers: dict[str, Any]) -> None:
    from sealbox.files import atomic_write

    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = json.dumps({"version": 1, "servers": servers}, indent=2) + "\n"
    atomic_write(_path(home), text.encode(), mode=0o600)


def normalise(addr: str) -> str:
    from sealbox.client.transport import Address

    return Address.parse(addr).display


def _keyring_set(addr: str, token: str) -> bool:
    try:
        import keyring

        keyring.set_password(KEYRING_SERVICE, addr, token)
    except Exception:
        return False
    return True


def _keyring_get(addr: str) -> str | None:
    try:
        import keyring

        value = keyring.get_password(KEYRING_SERVICE, addr)
    except Exception:
        return None
    return value if isinstance(value, str) else None


def _keyring_delete(addr: str) -> None:
    try:
        import keyring

        keyring.delete_password(KEYRING_SERVICE, addr)
    except Exception:  # noqa: S110 - nothing stored there, or no keyring: nothing to delete
        pass


def save_login(
    home: Path,
    addr: str,
    token: str,
    *,
    identity: str,
    accessor: str,
    expires_at: str,
    env: Mapping[str, str] = os.environ,
) -> SavedLogin:
    """Remember a token for ``addr``; returns where it went."""
    addr = normalise(addr)
    choice = (env.get("SEALBOX_TOKEN_STORE") or "auto").strip().lower()
    if choice not in STORES:
        raise InvalidInput(f"SEALBOX_TOKEN_STORE must be one of {', '.join(STORES)}")
    servers = _load(home)
    old = servers.get(addr)
    entry: dict[str, Any] = {"identity": identity, "accessor": accessor, "expires_at": expires_at}
    if choice != "file" and _keyring_set(addr, token):
        entry["store"] = "keyring"
    elif choice == "keyring":
        raise InvalidInput(
            "the OS keyring refused to store the token",
            hint="no keyring backend here? set SEALBOX_TOKEN_STORE=file",
        )
    else:
        entry["store"] = "file"
        entry["token"] = token
    servers[addr] = entry
    _save(home, servers)
    if isinstance(old, dict) and old.get("store") == "keyring" and entry["store"] == "file":
        _keyring_delete(addr)
    return SavedLogin(addr, entry["store"], identity, accessor, expires_at)


def load_token(home: Path, addr: str) -> str | None:
    """The saved token for ``addr``, or None."""
    addr = normalise(addr)
    entry = _load(home).get(addr)
    if not isinstance(entry, dict):
        return None
    if entry.get("store") == "keyring":
        return _keyring_get(addr)
    token = entry.get("token")
    return token if isinstance(token, str) and token else None


def saved_logins(home: Path) -> list[SavedLogin]:
    return [
        SavedLogin(
            addr,
            str(e.get("store", "")),
            str(e.get("identity", "")),
            str(e.get("accessor", "")),
            str(e.get("expires_at", "")),
        )
        for addr, e in sorted(_load(home).items())
        if isinstance(e, dict)
    ]


def forget_login(home: Path, addr: str) -> bool:
    """Remove the saved token for ``addr``; True when there was one."""
    addr = normalise(addr)
    servers = _load(home)
    entry = servers.pop(addr, None)
    if entry is None:
        return False
    if isinstance(entry, dict) and entry.get("store") == "keyring":
        _keyring_delete(addr)
    _save(home, servers)
    return True
