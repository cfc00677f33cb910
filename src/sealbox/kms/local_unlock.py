"""The local provider's unlock methods: a passphrase, a key file, the OS keyring, a session;
and the master key and first KEK of a new vault.

Registered as ``local`` in the ``sealbox.key_providers`` entry points group.
"""

from __future__ import annotations

import json
from pathlib import Path

from sealbox.errors import InvalidInput, KeyProviderError
from sealbox.kms import master
from sealbox.kms.interface import KeyProvider, Rekeyed
from sealbox.kms.local import LocalKeyProvider, new_kek_record
from sealbox.kms.master import UnlockMethod
from sealbox.kms.registry import ProviderContext
from sealbox.storage.rows import KekRecord


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


class NewLocalKeys:
    """A new vault's master key (from a passphrase, or random for a key file or the OS
    keyring) and its first KEK: what ``sealbox init`` creates. Prints without them."""

    def __init__(
        self, method: UnlockMethod, *, passphrase: str | None, key_file: Path | None
    ) -> None:
        from sealbox.crypto import aead, kdf

        self.method, self.key_file = method, key_file
        #: The vault settings the local provider keeps (not secret).
        self.settings: dict[str, str] = {"unlock_method": method.value}
        match method:
            case UnlockMethod.PASSPHRASE:
                if not passphrase:
                    raise InvalidInput(
                        "a passphrase is required (SEALBOX_PASSPHRASE or the prompt)"
                    )
                params = kdf.Argon2Params.fresh()
                self._master = kdf.derive_from_passphrase(passphrase, params)
                self.settings["kdf"] = json.dumps(params.to_dict())
            case UnlockMethod.KEYFILE if key_file is None:
                raise InvalidInput("a key file vault needs the key file's path")
            case UnlockMethod.KEYFILE | UnlockMethod.KEYRING:
                self._master = aead.new_key()
            case _:  # pragma: no cover
                raise InvalidInput(f"unknown unlock method {method}")

    def kek(self, vault_id: str, created_at: str) -> tuple[KekRecord, KeyProvider]:
        """A new random KEK: its stored form, and the provider holding it."""
        record, kek = new_kek_record(vault_id, self._master, created_at)
        return record, LocalKeyProvider({record.kek_id: kek}, record.kek_id)

    def keep_master(self, vault_id: str) -> None:
        """Write the key file 0600 (refusing to overwrite one) or the keyring entry; a
        passphrase vault keeps nothing (the passphrase is the key)."""
        if self.method is UnlockMethod.KEYFILE:
            assert self.key_file is not None
            master.write_key_file(self.key_file, self._master)
        elif self.method is UnlockMethod.KEYRING:
            master.keyring_store(vault_id, self._master)

    def __repr__(self) -> str:
        return f"NewLocalKeys(method={self.method.value!r}, master='***')"
