"""The local provider family: a master key from a passphrase, a key file or the OS
keyring (and an unlock session holding one), which wraps the vault's KEKs.

Registered as ``local`` (:mod:`sealbox.kms.registry`). Its stored config is
``{"method": "passphrase" | "keyfile" | "keyring", "kdf": {Argon2id parameters} | null,
"key_file": path (optional: the vault config's key file otherwise)}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sealbox.errors import InvalidInput, KeyProviderError
from sealbox.kms import master
from sealbox.kms.interface import KeyProvider, NewProvider
from sealbox.kms.local import MasterKeyProvider
from sealbox.kms.master import UnlockMethod
from sealbox.kms.registry import ProviderContext

KIND = "local"


def method_of(config: Mapping[str, Any]) -> UnlockMethod:
    value = str(config.get("method") or "")
    try:
        return UnlockMethod(value)
    except ValueError:
        raise KeyProviderError(
            f"the vault's local key provider names an unknown unlock method {value[:40]!r}"
        ) from None


def key_file_of(config: Mapping[str, Any], ctx: ProviderContext) -> Path:
    raw = config.get("key_file")
    path = Path(str(raw)) if raw else ctx.key_file
    if path is None:
        raise KeyProviderError("the vault uses a key file but none is configured")
    return path


class LocalKind:
    """The ``local`` family. Implements :class:`~sealbox.kms.interface.ProviderKind`."""

    kind = KIND

    def interactive(self, config: Mapping[str, Any]) -> bool:
        return method_of(config) is UnlockMethod.PASSPHRASE

    def master_key(
        self, config: Mapping[str, Any], ctx: ProviderContext, passphrase: str | None = None
    ) -> bytes:
        """The master key from the provider's own credential (never a session)."""
        from sealbox.crypto import kdf

        method = method_of(config)
        match method:
            case UnlockMethod.KEYFILE:
                return master.read_key_file(key_file_of(config, ctx))
            case UnlockMethod.KEYRING:
                return master.keyring_load(ctx.vault_id)
            case UnlockMethod.PASSPHRASE:
                raw = config.get("kdf")
                if not isinstance(raw, dict):
                    raise KeyProviderError("the vault has no key derivation parameters")
                params = kdf.Argon2Params.from_dict(raw)
                if passphrase is None:
                    passphrase = master.passphrase_from(ctx.env, ctx.prompt, "Vault passphrase")
                return kdf.derive_from_passphrase(passphrase, params)
        raise KeyProviderError(f"unsupported unlock method {method}")  # pragma: no cover

    def open(self, name: str, config: Mapping[str, Any], ctx: ProviderContext) -> KeyProvider:
        return MasterKeyProvider(name, self.master_key(config, ctx), method_of(config).value)

    def from_master(self, name: str, config: Mapping[str, Any], key: bytes) -> MasterKeyProvider:
        """The provider from a master key obtained elsewhere (an unlock session)."""
        return MasterKeyProvider(name, key, method_of(config).value)

    def from_unlock_key(
        self, name: str, config: Mapping[str, Any], key: bytes
    ) -> MasterKeyProvider:
        """The provider from what an unlock session keeps of it (its master key)."""
        return self.from_master(name, config, key)

    def create(self, name: str, options: Mapping[str, str], ctx: ProviderContext) -> NewProvider:
        """A new master key: from a passphrase (``SEALBOX_PASSPHRASE`` or the prompt, or
        the option ``passphrase``), or random and kept in a key file (option
        ``key_file``, else the vault config's) or the OS keyring."""
        from sealbox.crypto import aead, kdf

        unknown = set(options) - {"method", "key_file", "passphrase"}
        if unknown:
            raise InvalidInput(f"unknown option(s) for a local key provider: {sorted(unknown)}")
        try:
            method = UnlockMethod(options.get("method", "passphrase"))
        except ValueError:
            names = ", ".join(m.value for m in UnlockMethod)
            raise InvalidInput(f"unknown unlock method: use {names}") from None
        config: dict[str, Any] = {"method": method.value, "kdf": None}
        keep = None
        match method:
            case UnlockMethod.PASSPHRASE:
                passphrase = options.get("passphrase") or master.passphrase_from(
                    ctx.env, ctx.prompt, "New passphrase"
                )
                if not passphrase:
                    raise InvalidInput(
                        "a passphrase is required (SEALBOX_PASSPHRASE or the prompt)"
                    )
                params = kdf.Argon2Params.fresh()
                key = kdf.derive_from_passphrase(passphrase, params)
                config["kdf"] = params.to_dict()
            case UnlockMethod.KEYFILE:
                path = Path(options["key_file"]) if options.get("key_file") else ctx.key_file
                if path is None:
                    raise InvalidInput("a key file provider needs the key file's path (key_file=…)")
                path = path.expanduser().absolute()
                if path.exists():
                    raise InvalidInput(f"key file {path} already exists; refusing to overwrite it")
                if options.get("key_file"):
                    config["key_file"] = str(path)
                key = aead.new_key()

                def keep() -> None:
                    master.write_key_file(path, key)

            case UnlockMethod.KEYRING:
                key = aead.new_key()

                def keep() -> None:
                    master.keyring_store(ctx.vault_id, key)

            case _:  # pragma: no cover
                raise InvalidInput(f"unknown unlock method {method}")
        return NewProvider(config, MasterKeyProvider(name, key, method.value), keep)

    def rekey(
        self, name: str, config: Mapping[str, Any], new_passphrase: str
    ) -> tuple[dict[str, Any], MasterKeyProvider]:
        """A passphrase change: fresh KDF parameters and the master key they give."""
        from sealbox.crypto import kdf

        if method_of(config) is not UnlockMethod.PASSPHRASE:
            raise InvalidInput("this vault is not protected by a passphrase")
        params = kdf.Argon2Params.fresh()
        key = kdf.derive_from_passphrase(new_passphrase, params)
        return {**config, "kdf": params.to_dict()}, MasterKeyProvider(
            name, key, UnlockMethod.PASSPHRASE.value
        )


def dump_config(config: Mapping[str, Any]) -> str:
    return json.dumps(dict(config), sort_keys=True)
