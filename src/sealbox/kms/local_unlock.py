"""The local provider's unlock methods: a passphrase, a key file, the OS keyring, a session.

Registered as ``local`` in the ``sealbox.key_providers`` entry points group.
"""

from __future__ import annotations

import json

from sealbox.errors import InvalidInput, KeyProviderError
from sealbox.kms import master
from sealbox.kms.interface import KeyProvider, Rekeyed
from sealbox.kms.local import LocalKeyProvider
from sealbox.kms.master import UnlockMethod
from sealbox.kms.registry import ProviderContext


class LocalUnlocker:
    """Obtains the master key once, the cheapest way available. Implements
    :class:`~sealbox.kms.interface.Unlocker`."""

    name = "local"

    def __init__(self, ctx: ProviderContext) -> None:
        self.ctx = ctx

    def method(self) -> UnlockMethod:
        value = self.ctx.storage.get_setting("unlock_method") or ""
        try:
            return UnlockMethod(value)
        except ValueError:
            raise KeyProviderError(f"the vault names an unknown unlock method {value!r}") from None

    def master_key(self, *, allow_session: bool = True) -> bytes:
        ctx = self.ctx
        session = ctx.env.get("SEALBOX_SESSION") if allow_session else None
        if session:
            token = master.SessionToken.parse(session)
            row = ctx.storage.get_session(token.session_id)
            return master.open_session(ctx.vault_id, token, row, ctx.clock())
        return self.master_key_direct()

    def master_key_direct(self, passphrase: str | None = None) -> bytes:
        from sealbox.crypto import kdf

        ctx = self.ctx
        method = self.method()
        match method:
            case UnlockMethod.KEYFILE:
                if ctx.key_file is None:
                    raise KeyProviderError("the vault uses a key file but none is configured")
                return master.read_key_file(ctx.key_file)
            case UnlockMethod.KEYRING:
                return master.keyring_load(ctx.vault_id)
            case UnlockMethod.PASSPHRASE:
                raw = ctx.storage.get_setting("kdf")
                if raw is None:
                    raise KeyProviderError("the vault has no key derivation parameters")
                params = kdf.Argon2Params.from_dict(json.loads(raw))
                if passphrase is None:
                    passphrase = master.passphrase_from(ctx.env, ctx.prompt, "Vault passphrase")
                return kdf.derive_from_passphrase(passphrase, params)
        raise KeyProviderError(f"unsupported unlock method {method}")  # pragma: no cover

    def _open(self, master_key: bytes) -> LocalKeyProvider:
        return LocalKeyProvider.open(self.ctx.storage.list_keks(), self.ctx.vault_id, master_key)

    def key_provider(self) -> KeyProvider:
        return self._open(self.master_key())

    def unlock_key(self) -> tuple[bytes, KeyProvider]:
        master_key = self.master_key_direct()
        # Opening the KEKs proves the key before a session is handed out for it.
        return master_key, self._open(master_key)

    def change_passphrase(self, old: str, new: str) -> tuple[KeyProvider, Rekeyed]:
        from sealbox.crypto import kdf
        from sealbox.kms.local import rewrap_kek_records

        if self.method() is not UnlockMethod.PASSPHRASE:
            raise InvalidInput("this vault is not protected by a passphrase")
        old_key = self.master_key_direct(passphrase=old)
        provider = self._open(old_key)
        params = kdf.Argon2Params.fresh()
        new_key = kdf.derive_from_passphrase(new, params)
        keks = rewrap_kek_records(self.ctx.storage.list_keks(), self.ctx.vault_id, old_key, new_key)
        return provider, Rekeyed(keks, {"kdf": json.dumps(params.to_dict())})
