"""The one factory that builds a :class:`~sealbox.vault.Vault` from validated configuration.

Adapters call :func:`open_vault` (and the vault lifecycle functions here: init, unlock,
lock, passphrase change); they never import storage, key providers or crypto.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from sealbox.api import VaultAPI
from sealbox.audit.recorder import Actor, AuditRecorder
from sealbox.config import VaultConfig, default_home, load_config, save_config
from sealbox.errors import (
    AlreadyExists,
    InvalidInput,
    KeyProviderError,
    NotInitialised,
)
from sealbox.kms import master
from sealbox.kms.interface import KeyProvider
from sealbox.kms.master import PassphrasePrompt, UnlockMethod
from sealbox.storage.interface import Storage
from sealbox.vault import Clock, Vault, utcnow

if TYPE_CHECKING:
    from sealbox.auth.service import IdentityInfo
    from sealbox.auth.tokens import NewToken

DEFAULT_SESSION_TTL = timedelta(hours=8)
MAX_SESSION_TTL = timedelta(days=30)


def _identity() -> str:
    try:
        import getpass

        return f"local:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"local:uid-{os.getuid()}"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def audit_recorder(
    cfg: VaultConfig,
    storage: Storage,
    env: Mapping[str, str],
    *,
    fail_open: bool | None = None,
    node: str | None = None,
) -> AuditRecorder:
    """The recorder for ``cfg``'s ``[audit]`` settings; SEALBOX_AUDIT_SINKS,
    SEALBOX_AUDIT_NODE and SEALBOX_AUDIT_FAIL_OPEN override them."""
    from sealbox.audit.sinks import build_sinks

    settings = cfg.audit
    specs = settings.sinks
    if env.get("SEALBOX_AUDIT_SINKS"):
        specs = tuple(s for s in env["SEALBOX_AUDIT_SINKS"].split(",") if s.strip())
    if fail_open is None:
        fail_open = settings.fail_open or _truthy(env.get("SEALBOX_AUDIT_FAIL_OPEN"))
    sinks = build_sinks(specs, storage, file_max_bytes=settings.file_max_bytes)
    return AuditRecorder(
        storage,
        sinks=sinks,
        node=node or env.get("SEALBOX_AUDIT_NODE") or settings.node,
        fail_open=fail_open,
    )


def open_storage(url: str, *, create: bool = False) -> Storage:
    """A storage backend from a URL: ``sqlite:///path``, a plain path, or ``postgresql://…``."""
    if url.startswith(("postgresql://", "postgres://")):
        from sealbox.storage.postgres import PostgresStorage

        return PostgresStorage(url)
    if url.startswith("sqlite://"):
        url = url[len("sqlite://") :]
    if "://" in url:
        raise InvalidInput(
            f"unsupported storage {url.split('://')[0]!r}: use a SQLite path or postgresql://…"
        )
    from sealbox.storage.sqlite import SqliteStorage

    return SqliteStorage(Path(url).expanduser(), create=create)


def resolve_home(home: Path | None, env: Mapping[str, str]) -> Path:
    return Path(home) if home is not None else default_home(env)


def _require_config(home: Path) -> VaultConfig:
    cfg = load_config(home)
    if cfg is None:
        raise NotInitialised(
            f"no sealbox vault in {home}",
            hint="initialise a vault there first (or point SEALBOX_HOME at one)",
            hint_key="init_vault_or_home",
        )
    return cfg


class InitResult(NamedTuple):
    vault_id: str
    home: Path
    storage: str
    method: UnlockMethod
    key_file: Path | None


def init_vault(
    *,
    home: Path | None = None,
    storage: str | None = None,
    method: UnlockMethod,
    passphrase: str | None = None,
    key_file: Path | None = None,
    env: Mapping[str, str] = os.environ,
    clock: Clock = utcnow,
) -> InitResult:
    """Create a vault: storage schema, a KEK under a new master key, the config file."""
    from sealbox.audit.keys import new_key_settings
    from sealbox.crypto import aead, kdf
    from sealbox.kms.local import LocalKeyProvider, new_kek_record

    _refuse_remote(
        env,
        "`sealbox init`",
        "unset SEALBOX_ADDR to create a local vault; a server is bootstrapped with "
        "`sealbox server init`",
    )
    home = resolve_home(home, env)
    if load_config(home) is not None:
        raise AlreadyExists(f"a vault is already configured in {home}")
    storage_url = storage or str(home / "vault.db")
    if "://" not in storage_url or storage_url.startswith("sqlite://"):
        # The config is read from any directory: store an absolute path.
        plain = storage_url.removeprefix("sqlite://")
        storage_url = str(Path(plain).expanduser().absolute())
    settings: dict[str, str] = {"unlock_method": method.value}
    match method:
        case UnlockMethod.PASSPHRASE:
            if not passphrase:
                raise InvalidInput("a passphrase is required (SEALBOX_PASSPHRASE or the prompt)")
            params = kdf.Argon2Params.fresh()
            master_key = kdf.derive_from_passphrase(passphrase, params)
            settings["kdf"] = json.dumps(params.to_dict())
        case UnlockMethod.KEYFILE:
            key_file = Path(key_file or home / "master.key").expanduser().absolute()
            master_key = aead.new_key()
        case UnlockMethod.KEYRING:
            master_key = aead.new_key()
        case _:  # pragma: no cover
            raise InvalidInput(f"unknown unlock method {method}")
    import uuid

    vault_id = str(uuid.uuid4())
    store = open_storage(storage_url, create=True)
    try:
        if store.is_initialised():
            raise AlreadyExists(f"a vault already exists in {store.description}")
        kek_record, kek = new_kek_record(vault_id, master_key, clock().isoformat())
        # The audit key and checkpoint key, wrapped by the new KEK like data keys.
        settings.update(
            new_key_settings(
                LocalKeyProvider({kek_record.kek_id: kek}, kek_record.kek_id), vault_id
            )
        )
        # Key material first: a crash after this leaves an unused key, never a vault
        # whose key is lost.
        if method is UnlockMethod.KEYFILE:
            assert key_file is not None
            master.write_key_file(key_file, master_key)
        elif method is UnlockMethod.KEYRING:
            master.keyring_store(vault_id, master_key)
        store.initialise(vault_id, settings, kek_record, clock().isoformat())
    finally:
        store.close()
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    save_config(VaultConfig(home, storage_url, key_file))
    return InitResult(vault_id, home, storage_url, method, key_file)


class _Unlocker:
    """Obtains the master key once, the cheapest way available."""

    def __init__(
        self,
        cfg: VaultConfig,
        storage: Storage,
        vault_id: str,
        env: Mapping[str, str],
        prompt: PassphrasePrompt | None,
        clock: Clock,
    ) -> None:
        self.cfg, self.storage, self.vault_id = cfg, storage, vault_id
        self.env, self.prompt, self.clock = env, prompt, clock

    def method(self) -> UnlockMethod:
        value = self.storage.get_setting("unlock_method") or ""
        try:
            return UnlockMethod(value)
        except ValueError:
            raise KeyProviderError(f"the vault names an unknown unlock method {value!r}") from None

    def master_key(self, *, allow_session: bool = True) -> bytes:
        session = self.env.get("SEALBOX_SESSION") if allow_session else None
        if session:
            token = master.SessionToken.parse(session)
            row = self.storage.get_session(token.session_id)
            return master.open_session(self.vault_id, token, row, self.clock())
        return self.master_key_direct()

    def master_key_direct(self, passphrase: str | None = None) -> bytes:
        from sealbox.crypto import kdf

        method = self.method()
        match method:
            case UnlockMethod.KEYFILE:
                if self.cfg.key_file is None:
                    raise KeyProviderError("the vault uses a key file but none is configured")
                return master.read_key_file(self.cfg.key_file)
            case UnlockMethod.KEYRING:
                return master.keyring_load(self.vault_id)
            case UnlockMethod.PASSPHRASE:
                raw = self.storage.get_setting("kdf")
                if raw is None:
                    raise KeyProviderError("the vault has no key derivation parameters")
                params = kdf.Argon2Params.from_dict(json.loads(raw))
                if passphrase is None:
                    passphrase = master.passphrase_from(self.env, self.prompt, "Vault passphrase")
                return kdf.derive_from_passphrase(passphrase, params)
        raise KeyProviderError(f"unsupported unlock method {method}")  # pragma: no cover

    def key_provider(self) -> KeyProvider:
        from sealbox.kms.local import LocalKeyProvider

        master_key = self.master_key()
        return LocalKeyProvider.open(self.storage.list_keks(), self.vault_id, master_key)


def _open(
    home: Path | None, env: Mapping[str, str], prompt: PassphrasePrompt | None, clock: Clock
) -> tuple[Storage, str, _Unlocker]:
    home = resolve_home(home, env)
    cfg = _require_config(home)
    if cfg.key_file is not None:
        # Refuse to run on a key file others can read, even for commands that need no key.
        master.read_key_file(cfg.key_file)
    storage = open_storage(cfg.storage)
    storage.migrate()
    vault_id = storage.get_setting("vault_id")
    if vault_id is None:
        storage.close()
        raise NotInitialised(f"{storage.description} holds no vault id")
    return storage, vault_id, _Unlocker(cfg, storage, vault_id, env, prompt, clock)


#: Sources of the command line: with SEALBOX_ADDR set they mean the server, not a local vault.
CLI_SOURCES = frozenset({"cli", "doctor", "scan"})


def _refuse_remote(env: Mapping[str, str], what: str, hint: str | None = None) -> None:
    """Embedded-only operations say so in remote mode rather than act on a local vault."""
    addr = env.get("SEALBOX_ADDR")
    if addr:
        raise InvalidInput(
            f"{what} works on an embedded vault only, and this shell is in remote mode "
            f"(SEALBOX_ADDR={addr[:100]})",
            hint=hint or "unset SEALBOX_ADDR to use the local vault (on the server's host)",
        )


def connect(
    *,
    home: Path | None = None,
    env: Mapping[str, str] = os.environ,
    prompt: PassphrasePrompt | None = None,
    source: str = "cli",
    clock: Clock = utcnow,
    prefer_offline: bool = False,
) -> VaultAPI:
    """The vault the environment selects: a server's (``sealbox.Client``) when
    ``SEALBOX_ADDR`` is set, else the embedded one (:func:`open_vault`).

    Remote mode takes its token from ``SEALBOX_TOKEN`` or else the one ``sealbox login``
    saved for that address, and honours ``SEALBOX_CACERT`` (TLS trust) and
    ``SEALBOX_OFFLINE_MAX_AGE`` (e.g. ``1h``: keep an encrypted offline copy of reads and
    serve it, up to that old, when the server cannot be reached).
    """
    addr = env.get("SEALBOX_ADDR")
    if not addr:
        return open_vault(home=home, env=env, prompt=prompt, source=source, clock=clock)
    from sealbox.client.cache import cache_dir
    from sealbox.client.client import DEFAULT_OFFLINE_MAX_AGE, Client
    from sealbox.client.credentials import load_token
    from sealbox.errors import AuthenticationFailed
    from sealbox.vault import parse_duration

    home = resolve_home(home, env)
    token = env.get("SEALBOX_TOKEN") or load_token(home, addr)
    if not token:
        raise AuthenticationFailed(
            f"remote mode (SEALBOX_ADDR={addr[:100]}) but no token",
            hint=f"run `sealbox login --addr {addr[:100]}`, or set SEALBOX_TOKEN",
        )
    raw_age = env.get("SEALBOX_OFFLINE_MAX_AGE")
    max_age = parse_duration(raw_age) if raw_age else DEFAULT_OFFLINE_MAX_AGE
    return Client(
        addr,
        token,
        offline=bool(raw_age) or prefer_offline,
        offline_max_age=max_age,
        prefer_offline=prefer_offline,
        cache_dir=cache_dir(home),
        cacert=env.get("SEALBOX_CACERT") or None,
    )


def open_vault(
    *,
    home: Path | None = None,
    env: Mapping[str, str] = os.environ,
    prompt: PassphrasePrompt | None = None,
    source: str = "cli",
    clock: Clock = utcnow,
    audit_fail_open: bool | None = None,
    audit_node: str | None = None,
) -> Vault:
    """The vault configured in ``home`` (``SEALBOX_HOME`` or the user data dir).

    Always the embedded vault; command-line sources refuse in remote mode (use
    :func:`connect` for "whichever the environment selects"). ``audit_fail_open=True`` is
    the unsafe development setting (the server's and the CLI's ``--audit-fail-open``);
    None takes it from config or SEALBOX_AUDIT_FAIL_OPEN.
    """
    if source in CLI_SOURCES:
        _refuse_remote(
            env,
            f"this check ({source}) of the local vault",
            "it runs on an embedded vault: on the server's host, unset SEALBOX_ADDR",
        )
    storage, vault_id, unlocker = _open(home, env, prompt, clock)
    try:
        recorder = audit_recorder(
            unlocker.cfg, storage, env, fail_open=audit_fail_open, node=audit_node
        )
    except BaseException:
        storage.close()
        raise
    return Vault(
        storage=storage,
        vault_id=vault_id,
        keys=unlocker.key_provider,
        actor=Actor(_identity(), source, hostname=os.uname().nodename, pid=os.getpid()),
        clock=clock,
        audit=recorder,
    )


def bootstrap_server(
    *,
    admin: str,
    password: str,
    home: Path | None = None,
    env: Mapping[str, str] = os.environ,
    clock: Clock = utcnow,
) -> tuple[IdentityInfo, NewToken]:
    """Create the first admin identity (``root`` policy) and its token; refused once any exists.

    Needs no master key: identities and tokens hold no encrypted values.
    """
    from sealbox.auth.service import bootstrap_admin

    storage, _, _ = _open(home, env, None, clock)
    try:
        return bootstrap_admin(storage, admin, password, clock, Actor(_identity(), "cli"))
    finally:
        storage.close()


def recover_admin(
    *,
    name: str,
    password: str,
    home: Path | None = None,
    env: Mapping[str, str] = os.environ,
    prompt: PassphrasePrompt | None = None,
    clock: Clock = utcnow,
) -> IdentityInfo:
    """Give person ``name`` the ``root`` policy and a new password, creating it if need be.

    The way back from a lost admin (issue 10): embedded only, and it unlocks the vault
    (master key) before changing anything; audited as ``identity.recover``.
    """
    _refuse_remote(env, "`sealbox identity recover-admin`")
    vault = open_vault(home=home, env=env, prompt=prompt, clock=clock)
    try:
        return vault.recover_admin(name, password)
    finally:
        vault.close()


def unlock(
    *,
    ttl: timedelta = DEFAULT_SESSION_TTL,
    home: Path | None = None,
    env: Mapping[str, str] = os.environ,
    prompt: PassphrasePrompt | None = None,
    clock: Clock = utcnow,
) -> tuple[str, str]:
    """Start an unlock session; returns (SEALBOX_SESSION value, expiry ISO time)."""
    from sealbox.kms.local import LocalKeyProvider

    _refuse_remote(
        env, "`sealbox unlock`", "a server holds its own keys; log in with `sealbox login`"
    )
    if ttl <= timedelta(0) or ttl > MAX_SESSION_TTL:
        raise InvalidInput("a session lasts between 1 second and 30 days")
    storage, vault_id, unlocker = _open(home, env, prompt, clock)
    try:
        master_key = unlocker.master_key_direct()
        # Prove the key before handing out a session for it.
        provider = LocalKeyProvider.open(storage.list_keks(), vault_id, master_key)
        recorder = audit_recorder(unlocker.cfg, storage, env)
        recorder.use_keys(provider, vault_id)
        now = clock()
        storage.delete_sessions(expired_before=now.isoformat())
        token, row = master.new_session(vault_id, master_key, now, ttl)
        storage.put_session(row)
        recorder.record(
            at=now.isoformat(),
            actor=Actor(_identity(), "cli", hostname=os.uname().nodename, pid=os.getpid()),
            operation="unlock",
            path="*",
        )
        return token.encode(), row.expires_at
    finally:
        storage.close()


def lock(
    *, home: Path | None = None, env: Mapping[str, str] = os.environ, clock: Clock = utcnow
) -> int:
    """End every unlock session of the vault; returns how many there were."""
    _refuse_remote(env, "`sealbox lock`", "to end a remote session, run `sealbox logout`")
    storage, _, _ = _open(home, env, None, clock)
    try:
        return storage.delete_sessions()
    finally:
        storage.close()


def change_passphrase(
    *,
    old: str,
    new: str,
    home: Path | None = None,
    env: Mapping[str, str] = os.environ,
    clock: Clock = utcnow,
) -> None:
    """Re-wrap the KEKs under a master key from a new passphrase; values are untouched."""
    from sealbox.crypto import kdf
    from sealbox.kms.local import rewrap_kek_records

    _refuse_remote(env, "`sealbox passphrase change`")
    if not new:
        raise InvalidInput("the new passphrase is empty")
    storage, vault_id, unlocker = _open(home, env, None, clock)
    try:
        if unlocker.method() is not UnlockMethod.PASSPHRASE:
            raise InvalidInput("this vault is not protected by a passphrase")
        old_key = unlocker.master_key_direct(passphrase=old)
        params = kdf.Argon2Params.fresh()
        new_key = kdf.derive_from_passphrase(new, params)
        records = rewrap_kek_records(storage.list_keks(), vault_id, old_key, new_key)
        storage.replace_master(records, {"kdf": json.dumps(params.to_dict())})
    finally:
        storage.close()


def _conforms(vault: Vault) -> VaultAPI:
    """Static check (mypy): the embedded Vault satisfies the shared Protocol."""
    return vault
