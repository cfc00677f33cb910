"""The one factory that builds a :class:`~sealbox.vault.Vault` from validated configuration.

Adapters call :func:`open_vault` (and the vault lifecycle functions here: init, unlock,
lock, passphrase change); they never import storage, key providers or crypto.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from sealbox.api import LeaseAdminAPI, LeasesAPI, VaultAPI
from sealbox.audit.recorder import AuditRecorder
from sealbox.caller import Actor
from sealbox.config import VaultConfig, default_home, load_config, save_config
from sealbox.errors import (
    AlreadyExists,
    InvalidInput,
    NotInitialised,
    SealboxError,
)
from sealbox.kms import master
from sealbox.kms.interface import KeyRing, Unlocker
from sealbox.kms.master import PassphrasePrompt, UnlockMethod
from sealbox.kms.opening import RingOpener
from sealbox.kms.registry import DEFAULT_TIMEOUT, ProviderContext
from sealbox.vault import Clock, Vault, utcnow

if TYPE_CHECKING:
    from sealbox.auth.service import IdentityInfo
    from sealbox.auth.tokens import NewToken
    from sealbox.client.client import Client
    from sealbox.storage.interface import Storage
    from sealbox.unseal import SealStatus

DEFAULT_SESSION_TTL = timedelta(hours=8)
#: The name ``sealbox init`` gives the vault's first key provider.
LOCAL_PROVIDER = "local"


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
    method: UnlockMethod | str,
    passphrase: str | None = None,
    key_file: Path | None = None,
    env: Mapping[str, str] = os.environ,
    clock: Clock = utcnow,
) -> InitResult:
    """Create a vault: storage schema, a KEK under a new master key, the config file.

    ``method`` names the local provider's unlock method (``passphrase``, ``keyfile``,
    ``keyring``), so front ends need not import the provider to choose one.
    """
    try:
        method = UnlockMethod(method)
    except ValueError:
        names = ", ".join(m.value for m in UnlockMethod)
        raise InvalidInput(f"unknown unlock method {str(method)[:40]!r}: use {names}") from None

    _refuse_remote(
        env,
        "`sealbox init`",
        "unset SEALBOX_ADDR to create a local vault; a server is bootstrapped with "
        "`sealbox server init`",
    )
    if method is UnlockMethod.PASSPHRASE and not passphrase:
        raise InvalidInput("a passphrase is required (SEALBOX_PASSPHRASE or the prompt)")
    home = resolve_home(home, env)
    if load_config(home) is not None:
        raise AlreadyExists(f"a vault is already configured in {home}")
    storage_url = _storage_url(home, storage)
    if method is UnlockMethod.KEYFILE:
        key_file = Path(key_file or home / "master.key").expanduser().absolute()
    options = {"method": method.value}
    if passphrase:
        options["passphrase"] = passphrase
    vault_id, _ = _create_vault(
        home, storage_url, key_file, env, clock, [(LOCAL_PROVIDER, "local", options)],
        f"unlock by {method.value}",
    )  # fmt: skip
    return InitResult(vault_id, home, storage_url, method, key_file)


def _storage_url(home: Path, storage: str | None) -> str:
    storage_url = storage or str(home / "vault.db")
    if "://" not in storage_url or storage_url.startswith("sqlite://"):
        # The config is read from any directory: store an absolute path.
        plain = storage_url.removeprefix("sqlite://")
        storage_url = str(Path(plain).expanduser().absolute())
    return storage_url


def _create_vault(
    home: Path,
    storage_url: str,
    key_file: Path | None,
    env: Mapping[str, str],
    clock: Clock,
    providers: list[tuple[str, str, Mapping[str, str]]],
    how: str,
) -> tuple[str, tuple[str, ...]]:
    """A new vault whose first KEK is wrapped by each of ``providers`` (name, kind,
    options), in that order of preference; returns its id and the shares to show once."""
    import uuid

    from sealbox.audit.keys import new_key_settings
    from sealbox.kms.local import KekRing, kek_context, new_kek
    from sealbox.kms.local_unlock import dump_config
    from sealbox.kms.registry import provider_kind
    from sealbox.storage.rows import KekRecord, KekWrapping, KeyProviderRow

    vault_id = str(uuid.uuid4())
    store = open_storage(storage_url, create=True)
    shares: tuple[str, ...] = ()
    try:
        if store.is_initialised():
            raise AlreadyExists(f"a vault already exists in {store.description}")
        cfg = VaultConfig(home, storage_url, key_file)
        # Built first: a misconfigured audit sink fails before anything is written.
        recorder = audit_recorder(cfg, store, env)
        ctx = ProviderContext(store, vault_id, key_file, env, None, clock, kms_timeout(env))
        made = [(name, kind, provider_kind(kind).create(name, options, ctx))
                for name, kind, options in providers]  # fmt: skip
        now = clock().isoformat()
        kek_id, kek = new_kek()
        ring = KekRing({kek_id: kek}, kek_id)
        context = kek_context(vault_id, kek_id)
        rows = [
            (KeyProviderRow(name, kind, dump_config(new.config), position, now),
             KekWrapping(kek_id, name, new.provider.wrap(kek, context),
                         new.provider.key_id(), now))
            for position, (name, kind, new) in enumerate(made)
        ]  # fmt: skip
        # The audit key and checkpoint key, wrapped by the new KEK like data keys.
        settings = new_key_settings(ring, vault_id)
        # Key material first: a crash after this leaves an unused key, never a vault
        # whose key is lost.
        for _, _, new in made:
            if new.keep is not None:
                new.keep()
            shares += new.shares
        (first_row, first_wrapping), *others = rows
        store.initialise(
            vault_id,
            settings,
            KekRecord(kek_id, now, True),
            now,
            provider=first_row,
            wrapping=first_wrapping,
        )
        for row, wrapping in others:
            store.add_key_provider(row, [wrapping])
        _record_init(recorder, store, ring, vault_id, clock, how)
        for _, _, new in made:
            new.provider.close()
    finally:
        store.close()
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    save_config(cfg)
    return vault_id, shares


class OperatorInit(NamedTuple):
    vault_id: str
    home: Path
    #: The unseal (or recovery) shares: shown once, never stored.
    shares: tuple[str, ...]
    threshold: int
    #: The provider that opens the vault unattended (auto-unseal), if any.
    auto_unseal: str | None
    #: True when the shares were added to an existing vault (a ``recovery`` provider).
    existing: bool


#: The names ``operator init`` gives its shamir provider on a new and an existing vault.
SHAMIR_PROVIDER, RECOVERY_PROVIDER = "shamir", "recovery"


def operator_init(
    *,
    shares: int,
    threshold: int,
    auto_unseal: str | None = None,
    kind: str | None = None,
    options: Mapping[str, str] | None = None,
    home: Path | None = None,
    storage: str | None = None,
    env: Mapping[str, str] = os.environ,
    prompt: PassphrasePrompt | None = None,
    clock: Clock = utcnow,
) -> OperatorInit:
    """Vault's ``operator init``: split a new key into ``threshold`` of ``shares`` unseal
    shares (SLIP-39 word lists, returned to be shown once).

    With no vault in ``home``: create one whose only provider is the shares (or, with
    ``auto_unseal``, the unattended provider ``auto_unseal`` of ``kind`` first and the
    shares as its recovery). On an existing vault: add the shares as a ``recovery``
    provider, wrapping every KEK (the vault is opened for that; audited as ``kms.add``).
    """
    _refuse_remote(env, "`sealbox operator init`")
    from sealbox.kms.shamir import check_counts

    check_counts(threshold, shares)
    if auto_unseal is not None and not kind:
        raise InvalidInput("an auto-unseal provider needs its kind (pkcs11, transit, aws-kms …)")
    counts = {"shares": str(shares), "threshold": str(threshold)}
    home = resolve_home(home, env)
    if load_config(home) is None:
        providers: list[tuple[str, str, Mapping[str, str]]] = []
        if auto_unseal is not None:
            assert kind is not None
            providers.append((auto_unseal, kind, dict(options or {})))
        name = RECOVERY_PROVIDER if auto_unseal else SHAMIR_PROVIDER
        providers.append((name, "shamir", counts))
        if kind == "local" and (options or {}).get("method") == "keyfile":
            # Kept in the provider's config (not the vault config's key file, which every
            # open insists on): losing it leaves the recovery shares.
            key_file = Path((options or {}).get("key_file") or home / "master.key").absolute()
            providers[0] = (auto_unseal or "", "local",
                            {**(options or {}), "key_file": str(key_file)})  # fmt: skip
        how = f"unseal by {threshold} of {shares} shares"
        if auto_unseal:
            how = f"auto-unseal by {auto_unseal} ({kind}); recovery {threshold} of {shares} shares"
        vault_id, made = _create_vault(
            home, _storage_url(home, storage), None, env, clock, providers, how
        )
        return OperatorInit(vault_id, home, made, threshold, auto_unseal, False)
    if auto_unseal is not None:
        raise InvalidInput(
            "this vault exists already: add an auto-unseal provider to it as a key provider"
            " instead",
            hint_key="kms_add",
        )
    vault = open_vault(home=home, env=env, prompt=prompt, clock=clock)
    try:
        made = vault.unseal.add_recovery(RECOVERY_PROVIDER, threshold, shares)
        return OperatorInit(vault.vault_id, home, made, threshold, None, True)
    finally:
        vault.close()


def operator_unseal(
    shares: Iterator[str],
    *,
    ttl: timedelta = DEFAULT_SESSION_TTL,
    home: Path | None = None,
    env: Mapping[str, str] = os.environ,
    clock: Clock = utcnow,
    progress: Callable[[SealStatus], None] = lambda status: None,
) -> tuple[str, str]:
    """Embedded ``operator unseal``: take shares from ``shares`` until the threshold,
    telling ``progress`` after each, then start an unlock session from them; returns
    (SEALBOX_SESSION value, expiry). A refused share raises (InvalidInput naming it)."""
    _refuse_remote(env, "`sealbox operator unseal` on the local vault")
    vault = open_vault(home=home, env=env, clock=clock)
    try:
        unseal = vault.unseal
        status = unseal.status()
        if not status.threshold:
            raise InvalidInput("this vault has no unseal shares (no shamir key provider)")
        for share in shares:
            status = unseal.submit(share, session_ttl=ttl)
            progress(status)
            if status.session is not None:
                return status.session
        raise InvalidInput(
            f"too few shares: {status.progress} of the {status.threshold} needed were given"
        )
    finally:
        vault.close()


def seal_status(
    *, home: Path | None = None, env: Mapping[str, str] = os.environ, clock: Clock = utcnow
) -> SealStatus:
    """The embedded vault's seal: sealed unless this shell holds an unlock session."""
    vault = open_vault(home=home, env=env, clock=clock)
    try:
        status = vault.unseal.status()
        if env.get("SEALBOX_SESSION"):
            with contextlib.suppress(SealboxError):
                vault.open_keys()
                status = vault.unseal.status()
        return status
    finally:
        vault.close()


def _record_init(
    recorder: AuditRecorder,
    store: Storage,
    provider: KeyRing,
    vault_id: str,
    clock: Clock,
    how: str,
) -> None:
    """The chain's first event: who created the vault, where, protected how (DESIGN.md
    invariant 2: every change of keys is audited, the first one too)."""
    try:
        recorder.use_keys(provider, vault_id)
        recorder.record(
            at=clock().isoformat(),
            actor=Actor(_identity(), "cli", hostname=os.uname().nodename, pid=os.getpid()),
            operation="init",
            path="sys/vault",
            reason=f"{store.description}; {how}",
        )
    finally:
        recorder.close()


def _open(
    home: Path | None, env: Mapping[str, str], prompt: PassphrasePrompt | None, clock: Clock
) -> tuple[Storage, str, VaultConfig, Unlocker]:
    home = resolve_home(home, env)
    cfg = _require_config(home)
    if cfg.key_file is not None and cfg.key_file.exists():
        # Refuse to run on a key file others can read, even for commands that need no key.
        # (A missing one is the key provider's error when a key is needed: the vault may
        # have moved to another provider and the file been deleted.)
        master.read_key_file(cfg.key_file)
    storage = open_storage(cfg.storage)
    storage.migrate()
    vault_id = storage.get_setting("vault_id")
    if vault_id is None:
        storage.close()
        raise NotInitialised(f"{storage.description} holds no vault id")
    ctx = ProviderContext(storage, vault_id, cfg.key_file, env, prompt, clock, kms_timeout(env))
    return storage, vault_id, cfg, RingOpener(ctx)


def kms_timeout(env: Mapping[str, str]) -> float:
    """Seconds a call to a remote key provider may take (SEALBOX_KMS_TIMEOUT, default 5)."""
    raw = env.get("SEALBOX_KMS_TIMEOUT")
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 300:
        raise InvalidInput("SEALBOX_KMS_TIMEOUT is seconds between 0 and 300")
    return value


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
    from sealbox.model import parse_duration

    home = resolve_home(home, env)
    token = env.get("SEALBOX_TOKEN") or load_token(home, addr)
    if not token:
        raise AuthenticationFailed(
            f"remote mode (SEALBOX_ADDR={addr[:100]}) but no token",
            hint="log in to the server first, or set SEALBOX_TOKEN",
            hint_key="login_addr",
            hint_args={"addr": addr[:100]},
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
            f"`sealbox {source}` on the local vault" if source != "cli" else "this command",
            "it runs on an embedded vault: on the server's host, unset SEALBOX_ADDR",
        )
    storage, vault_id, cfg, unlocker = _open(home, env, prompt, clock)
    try:
        recorder = audit_recorder(cfg, storage, env, fail_open=audit_fail_open, node=audit_node)
    except BaseException:
        storage.close()
        raise
    return Vault(
        storage=storage,
        vault_id=vault_id,
        keys=unlocker.key_ring,
        actor=Actor(_identity(), source, hostname=os.uname().nodename, pid=os.getpid()),
        clock=clock,
        audit=recorder,
        unlocker=unlocker,
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

    storage, _, _, _ = _open(home, env, None, clock)
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
    """Start an unlock session; returns (SEALBOX_SESSION value, expiry ISO time).

    Audited as ``unlock`` (a wrong passphrase: ``denied``); see :mod:`sealbox.keys`.
    """
    _refuse_remote(
        env, "`sealbox unlock`", "a server holds its own keys; log in with `sealbox login`"
    )
    vault = open_vault(home=home, env=env, prompt=prompt, clock=clock)
    try:
        return vault.keys.unlock(ttl)
    finally:
        vault.close()


def lock(
    *, home: Path | None = None, env: Mapping[str, str] = os.environ, clock: Clock = utcnow
) -> int:
    """End every unlock session of the vault; returns how many there were (audited as
    ``lock``)."""
    _refuse_remote(env, "`sealbox lock`", "to end a remote session, run `sealbox logout`")
    vault = open_vault(home=home, env=env, clock=clock)
    try:
        return vault.keys.lock()
    finally:
        vault.close()


def change_passphrase(
    *,
    old: str,
    new: str,
    home: Path | None = None,
    env: Mapping[str, str] = os.environ,
    clock: Clock = utcnow,
) -> None:
    """Re-wrap the KEKs under a master key from a new passphrase; values are untouched
    (audited as ``passphrase.change``; a wrong old passphrase: ``denied``)."""
    _refuse_remote(env, "`sealbox passphrase change`")
    vault = open_vault(home=home, env=env, clock=clock)
    try:
        vault.keys.change_passphrase(old, new)
    finally:
        vault.close()


def _conforms(vault: Vault) -> VaultAPI:
    """Static check (mypy): the embedded Vault satisfies the shared Protocol."""
    return vault


def _leases_conform(vault: Vault) -> LeaseAdminAPI:
    """Static check (mypy): the embedded lease service satisfies its Protocol."""
    return vault.leases


def _remote_leases_conform(client: Client) -> LeasesAPI:
    """Static check (mypy): the SDK's lease methods satisfy the application's Protocol."""
    return client.leases
