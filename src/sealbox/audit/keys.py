"""The vault's audit keys, stored wrapped by the key provider like data keys.

- ``audit_key``: 32 random bytes; HKDF sub-keys give the value-HMAC key and the chain key.
- ``audit_signing_key``: an Ed25519 private key for checkpoints; its public half is
  ``audit_verify_key`` (hex, in the clear) so checkpoints verify without unlocking.

Both are created by ``sealbox init``; a vault from before the audit trail gets them the
first time it is unlocked. A key that is missing once events were keyed with it, or that
does not open, is an integrity error: a new key would silently orphan the trail.
"""

from __future__ import annotations

import base64
import os
from typing import TYPE_CHECKING

from sealbox.audit.events import AuditKeys
from sealbox.crypto import macs
from sealbox.errors import IntegrityError, KeyProviderError
from sealbox.kms.interface import KeyRing

if TYPE_CHECKING:
    from sealbox.storage.interface import AuditStore

AUDIT_KEY = "audit_key"
SIGNING_KEY = "audit_signing_key"
VERIFY_KEY = "audit_verify_key"


def audit_key_context(vault_id: str) -> bytes:
    return b"sealbox/audit-key\x00" + vault_id.encode()


def signing_key_context(vault_id: str, public: bytes) -> bytes:
    return b"sealbox/audit-signing-key\x00" + vault_id.encode() + b"\x00" + public


def key_id(public: bytes) -> str:
    """A short fingerprint of a checkpoint verification key."""
    return macs.sha256(public).hex()[:16]


def new_key_settings(provider: KeyRing, vault_id: str) -> dict[str, str]:
    """Fresh audit keys as vault settings (wrapped, base64)."""
    audit_key = os.urandom(macs.KEY_BYTES)
    private, public = macs.new_signing_key()
    return {
        AUDIT_KEY: base64.b64encode(provider.wrap(audit_key, audit_key_context(vault_id))).decode(),
        SIGNING_KEY: base64.b64encode(
            provider.wrap(private, signing_key_context(vault_id, public))
        ).decode(),
        VERIFY_KEY: public.hex(),
    }


def _ensure(storage: AuditStore, provider: KeyRing, vault_id: str) -> None:
    if storage.get_setting(AUDIT_KEY) is not None:
        return
    if storage.has_keyed_audit():
        raise IntegrityError(
            "the vault's audit key is missing, but audit events were keyed with it",
            hint="restore the sb_settings row 'audit_key' from a backup; without it the "
            "trail cannot be verified and no operation is audited",
        )
    # NOTE: first writer wins; a concurrent process's keys are used instead of ours.
    for key, value in new_key_settings(provider, vault_id).items():
        storage.ensure_setting(key, value)


def _unwrap(storage: AuditStore, provider: KeyRing, setting: str, context: bytes) -> bytes:
    raw = storage.get_setting(setting)
    if raw is None:
        raise IntegrityError(f"the vault's {setting.replace('_', ' ')} is missing")
    try:
        return provider.unwrap(base64.b64decode(raw, validate=True), context)
    except (IntegrityError, KeyProviderError, ValueError):
        raise IntegrityError(
            f"the vault's {setting.replace('_', ' ')} does not open: it was altered or "
            "belongs to another vault",
            hint="restore the vault's settings from a backup",
        ) from None


def load_audit_keys(storage: AuditStore, provider: KeyRing, vault_id: str) -> AuditKeys:
    _ensure(storage, provider, vault_id)
    key = _unwrap(storage, provider, AUDIT_KEY, audit_key_context(vault_id))
    return AuditKeys.from_audit_key(key)


def verify_key(storage: AuditStore) -> bytes | None:
    raw = storage.get_setting(VERIFY_KEY)
    try:
        return bytes.fromhex(raw) if raw else None
    except ValueError:
        raise IntegrityError("the vault's audit verify key is not valid hex") from None


def load_signing_key(storage: AuditStore, provider: KeyRing, vault_id: str) -> bytes:
    """The checkpoint private key; checks that the stored public half belongs to it."""
    _ensure(storage, provider, vault_id)
    public = verify_key(storage)
    if public is None:
        raise IntegrityError("the vault's audit verify key is missing")
    private = _unwrap(storage, provider, SIGNING_KEY, signing_key_context(vault_id, public))
    if not macs.equal(macs.public_of(private), public):  # pragma: no cover - bound by context
        raise IntegrityError("the vault's audit verify key does not match its signing key")
    return private
