"""Where the master key comes from: a passphrase, a key file, the OS keyring, or a session.

The master key only ever decrypts the local provider's KEKs. A passphrase goes through
Argon2id (slow on purpose); an unlock *session* lets everyday commands skip that: the
master key is stored encrypted under a key derived from a random session secret that
only the user's shell holds (``SEALBOX_SESSION``). Without that value the stored record
is useless, and ``sealbox lock`` deletes every record.
"""

from __future__ import annotations

import base64
import enum
import os
import stat
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from sealbox.crypto import aead, kdf
from sealbox.errors import (
    AuthenticationFailed,
    IntegrityError,
    InvalidInput,
    KeyProviderError,
    Sealed,
)
from sealbox.storage.rows import SessionRow

SESSION_PREFIX = "sbxsess_"
KEYRING_SERVICE = "sealbox"


class UnlockMethod(enum.StrEnum):
    PASSPHRASE = "passphrase"  # noqa: S105 - a method name, not a password
    KEYFILE = "keyfile"
    KEYRING = "keyring"


PassphrasePrompt = Callable[[str], str]


# -- key files -------------------------------------------------------------------------------
def write_key_file(path: Path, key: bytes) -> None:
    """Create a key file 0600, atomically (write, fsync, rename); refuse to overwrite."""
    path = Path(path)
    if path.exists():
        raise InvalidInput(f"key file {path} already exists; refusing to overwrite it")
    from sealbox.config import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(path, base64.b64encode(key) + b"\n", mode=0o600)


def read_key_file(path: Path) -> bytes:
    """Read a master key file, refusing one that others can read or write."""
    path = Path(path)
    try:
        st = path.stat()
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyProviderError(f"key file {path} does not exist") from None
    except OSError as exc:
        raise KeyProviderError(f"cannot read key file {path}: {exc.strerror}") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyProviderError(
            f"key file {path} is accessible by other users (mode {stat.S_IMODE(st.st_mode):o})",
            hint=f"chmod 600 {path}",
        )
    try:
        key = base64.b64decode(data.strip(), validate=True)
    except ValueError:
        key = b""
    if len(key) != aead.KEY_BYTES:
        raise KeyProviderError(f"key file {path} does not hold a sealbox master key")
    return key


# -- OS keyring ------------------------------------------------------------------------------
def _keyring() -> object:
    try:
        import keyring
        import keyring.errors
    except ImportError:  # pragma: no cover - keyring is a dependency
        raise KeyProviderError("the keyring package is not installed") from None
    return keyring


def keyring_store(vault_id: str, key: bytes) -> None:
    keyring = _keyring()
    try:
        keyring.set_password(KEYRING_SERVICE, vault_id, base64.b64encode(key).decode())  # type: ignore[attr-defined]
    except Exception as exc:
        raise KeyProviderError(
            f"the OS keyring refused to store the key ({type(exc).__name__})",
            hint="no keyring backend here? use a key file or a passphrase instead",
            hint_key="keyring_refused",
        ) from None


def keyring_load(vault_id: str) -> bytes:
    keyring = _keyring()
    try:
        stored = keyring.get_password(KEYRING_SERVICE, vault_id)  # type: ignore[attr-defined]
    except Exception as exc:
        raise KeyProviderError(f"the OS keyring is unavailable ({type(exc).__name__})") from None
    if not stored:
        raise KeyProviderError("the OS keyring holds no key for this vault")
    try:
        key = base64.b64decode(stored, validate=True)
    except ValueError:
        key = b""
    if len(key) != aead.KEY_BYTES:
        raise KeyProviderError("the OS keyring entry for this vault is not a sealbox key")
    return key


# -- sessions --------------------------------------------------------------------------------
class SessionToken(NamedTuple):
    """A parsed ``SEALBOX_SESSION`` value. Prints without its secret part."""

    session_id: str
    secret: bytes

    def encode(self) -> str:
        return (
            SESSION_PREFIX
            + self.session_id
            + "_"
            + base64.urlsafe_b64encode(self.secret).decode().rstrip("=")
        )

    @classmethod
    def parse(cls, value: str) -> SessionToken:
        bad = AuthenticationFailed(
            "SEALBOX_SESSION is not a valid session",
            hint="unlock the vault again",
            hint_key="unlock_again",
        )
        if not value.startswith(SESSION_PREFIX):
            raise bad
        try:
            session_id, encoded = value[len(SESSION_PREFIX) :].split("_", 1)
            secret = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except ValueError:
            raise bad from None
        if len(session_id) != 16 or len(secret) != 32:
            raise bad
        return cls(session_id, secret)

    def __repr__(self) -> str:
        return f"SessionToken(session_id={self.session_id!r}, secret='***')"


def _session_aad(vault_id: str, session_id: str, expires_at: str) -> bytes:
    # Binding the expiry means editing it in storage breaks the record instead of extending it.
    return b"\x00".join(
        (b"sealbox/session", vault_id.encode(), session_id.encode(), expires_at.encode())
    )


def new_session(
    vault_id: str, master_key: bytes, now: datetime, ttl: timedelta, *, provider: str = "local"
) -> tuple[SessionToken, SessionRow]:
    token = SessionToken(os.urandom(8).hex(), os.urandom(32))
    expires_at = (now + ttl).isoformat()
    key = kdf.derive_subkey(token.secret, b"sealbox/session/" + token.session_id.encode())
    wrapped = aead.encrypt(key, master_key, _session_aad(vault_id, token.session_id, expires_at))
    return token, SessionRow(token.session_id, wrapped, now.isoformat(), expires_at, provider)


def open_session(
    vault_id: str, token: SessionToken, row: SessionRow | None, now: datetime
) -> bytes:
    if row is None:
        raise Sealed(
            "the unlock session has ended", hint="unlock the vault again", hint_key="unlock_again"
        )
    if datetime.fromisoformat(row.expires_at) <= now:
        raise Sealed(
            "the unlock session has expired", hint="unlock the vault again", hint_key="unlock_again"
        )
    key = kdf.derive_subkey(token.secret, b"sealbox/session/" + token.session_id.encode())
    try:
        return aead.decrypt(
            key,
            row.wrapped_master,
            _session_aad(vault_id, token.session_id, row.expires_at),
            what="session",
        )
    except IntegrityError:
        raise AuthenticationFailed(
            "SEALBOX_SESSION does not match this vault's session",
            hint="unlock the vault again",
            hint_key="unlock_again",
        ) from None


def passphrase_from(env: Mapping[str, str], prompt: PassphrasePrompt | None, label: str) -> str:
    """SEALBOX_PASSPHRASE, else the prompt, else a Sealed error."""
    value = env.get("SEALBOX_PASSPHRASE")
    if value:
        return value
    if prompt is None:
        raise Sealed(
            "the vault is locked",
            hint="unlock the vault, or set SEALBOX_PASSPHRASE for non-interactive use",
            hint_key="unlock",
        )
    return prompt(label)
