"""Run the server: open the vault through the factory (or start sealed: server/sealed.py), serve.

The address is bound before anything starts (server/listen.py; a busy address is exit
status 10) and listening before anything says so: one process listens once its app is
built, a supervisor before it starts the workers (connections wait in the backlog).
With ``workers > 1`` uvicorn's supervisor starts worker processes on that socket that
each build their app through :func:`app_from_environment` (settings travel in
``SEALBOX_SERVER_SETTINGS``); each opens its own vault and storage connection, as
separate servers on one database would, and stops when the supervisor dies, however it
dies.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from sealbox.server.settings import ServerSettings

SETTINGS_VAR = "SEALBOX_SERVER_SETTINGS"
#: "auto" is httptools (llhttp) with the LIST verb rewritten (server/fastpath/protocol.py).
HTTP_IMPL = "auto"


def http_protocol(name: str) -> Any:
    """uvicorn's ``http`` setting for a server ``http`` name."""
    if name == "auto":
        from sealbox.server.fastpath.protocol import SealboxHttpProtocol

        return SealboxHttpProtocol
    return name


def open_server_vault(settings: ServerSettings, *, supervisor: bool = False) -> Any:
    """The configured vault with its keys loaded, or a Sealed/NotInitialised error.

    The supervising process records the load for the whole server (its workers load the
    same keys from the same settings right after): events from every worker at once would
    contend for the database with the first requests.
    """
    from sealbox.errors import InvalidInput, KeyProviderError, Sealed
    from sealbox.factory import open_vault
    from sealbox.server.sealed import LOG, start_message

    vault = open_vault(source="api", prompt=None, audit_node=settings.node)
    try:
        try:
            if supervisor:
                workers = (
                    f", {settings.processes} worker processes" if settings.processes > 1 else ""
                )
                vault.keys.load(f"server start on {settings.address}{workers}")
            else:
                vault.open_keys()
        except (Sealed, KeyProviderError) as exc:
            ops = vault.unseal
            if not ops.can_start_sealed():
                raise
            if settings.workers > 1 and not ops.retryable():
                raise InvalidInput(
                    f"{exc.message}: a server of {settings.processes} worker processes cannot"
                    " be unsealed with shares (each worker would need them); run one process,"
                    " or add an unattended key provider (auto-unseal)",
                ) from None
            ops.hold_sealed()
            if supervisor:
                LOG.warning("%s", start_message(vault, exc))
    except BaseException:
        vault.close()
        raise
    return vault


def helper_vault(settings: ServerSettings) -> Callable[[], Any]:
    """Opens the vault a background auto-unseal attempt uses (its own connection)."""

    def reopen() -> Any:
        from sealbox.factory import open_vault

        return open_vault(source="api", prompt=None, audit_node=f"{settings.node}:unseal")

    return reopen


def start_scheduler(settings: ServerSettings, keys_from: Any = None, keep: bool = False) -> Any:
    """Run the scheduler in a thread of this process (the supervisor: never in a worker,
    so a server runs one scheduler whatever its worker count); returns what stops it.

    It has its own vault, so its own storage connection, and its own audit chain
    (``<node>:scheduler``): its events never wait on the request path's chain head."""
    import threading

    from sealbox.factory import open_vault
    from sealbox.scheduler import Scheduler, default_jobs

    vault = open_vault(source="scheduler", prompt=None, audit_node=f"{settings.node}:scheduler")
    try:
        if keys_from is not None:
            vault.unseal.share_keys_from(keys_from.unseal)
        else:
            vault.open_keys()
        node = Scheduler(vault.locks, default_jobs(vault))
    except BaseException:
        vault.close()
        raise
    stop = threading.Event()
    thread = threading.Thread(target=node.run, args=(stop,), name="sealbox-scheduler", daemon=True)
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join(timeout=30)
        vault.close()

    return (halt, vault) if keep else halt


def start_scheduler_when_unsealed(settings: ServerSettings, vault: Any) -> Callable[[], None]:
    """A server started sealed: its scheduler starts once the vault is unsealed, holding
    the serving vault's KEKs (it cannot open them itself: the shares were given once)."""
    import threading

    stop = threading.Event()
    halts: list[Callable[[], None]] = []

    def wait() -> None:
        scheduler_vault = None
        while not stop.wait(1.0):
            if vault.sealed:
                continue
            if not halts:
                halt, scheduler_vault = start_scheduler(settings, keys_from=vault, keep=True)
                halts.append(halt)
            elif scheduler_vault is not None and scheduler_vault.sealed:
                # Unsealed again after a seal (which dropped the scheduler's copy too).
                scheduler_vault.unseal.share_keys_from(vault.unseal)

    thread = threading.Thread(target=wait, name="sealbox-scheduler-wait", daemon=True)
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join(timeout=5)
        for h in halts:
            h()

    return halt


def _settings_to_env(settings: ServerSettings) -> str:
    data = asdict(settings)
    for key in ("tls_cert", "tls_key"):
        data[key] = str(data[key]) if data[key] else None
    data["kv_mounts"] = list(settings.kv_mounts)
    data["trusted_proxies"] = list(settings.trusted_proxies)
    return json.dumps(data)


def _settings_from_env() -> ServerSettings:
    data = json.loads(os.environ[SETTINGS_VAR])
    for key in ("tls_cert", "tls_key"):
        data[key] = Path(data[key]) if data[key] else None
    data["kv_mounts"] = tuple(data["kv_mounts"])
    data["trusted_proxies"] = tuple(data["trusted_proxies"])
    return ServerSettings(**data).validated()


def configure_protocol(settings: ServerSettings) -> None:
    """This process's request-head bounds and client deadlines (server/fastpath/protocol.py)."""
    from sealbox.server.fastpath.protocol import Limits, SealboxHttpProtocol

    SealboxHttpProtocol.limits = Limits(
        header_timeout=settings.header_timeout, body_timeout=settings.body_timeout
    )


def app_from_environment() -> Starlette:
    """uvicorn factory for worker processes."""
    from sealbox.server import logs
    from sealbox.server.app import create_app
    from sealbox.server.listen import die_with_parent

    die_with_parent()
    settings = _settings_from_env()
    logs.configure(settings.log_level)
    configure_protocol(settings)
    from sealbox.server.seal_flag import FLAG_VAR, SealFlag

    flag = SealFlag(os.environ[FLAG_VAR]) if os.environ.get(FLAG_VAR) else None
    return create_app(
        open_server_vault(settings), settings, reopen=helper_vault(settings), seal_flag=flag
    )


def proxy_options(settings: ServerSettings) -> dict[str, Any]:
    """Whom uvicorn believes about the client's address (X-Forwarded-For/-Proto).

    Nobody by default: the peer is the client. (uvicorn's own default trusts 127.0.0.1,
    so any local process could write a made-up address into audit events and spread
    its login attempts over made-up addresses.) ``trusted_proxies`` names the reverse
    proxies whose headers count.
    """
    if not settings.trusted_proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": list(settings.trusted_proxies)}


def uvicorn_options(settings: ServerSettings) -> dict[str, Any]:
    return {
        "host": settings.host,
        "port": settings.port,
        "http": http_protocol(settings.http),
        "ws": "none",  # no WebSocket route: an upgrade request is an ordinary request
        "access_log": False,
        "server_header": False,
        "log_config": None,
        "log_level": settings.log_level,
        "ssl_certfile": str(settings.tls_cert) if settings.tls_cert else None,
        "ssl_keyfile": str(settings.tls_key) if settings.tls_key else None,
        "timeout_graceful_shutdown": 5,  # open event streams must not hold a shutdown
        "timeout_keep_alive": settings.keepalive_timeout,
        **proxy_options(settings),
    }


def serve(settings: ServerSettings, announce: Callable[[str], None] = lambda line: None) -> None:
    """Serve until stopped; ``announce`` is told once the address is listening."""
    from sealbox.server import logs
    from sealbox.server.listen import bind

    logs.configure(settings.log_level)
    configure_protocol(settings)
    # Fail fast, in the parent, with one clear line.
    vault = open_server_vault(settings, supervisor=True)
    if vault.sealed and settings.processes > 1:
        # Unseal shares reach one process: a server that starts sealed runs one until it
        # is restarted, whether shares or a KMS coming back unseal it (an explicit
        # --workers N > 1 on a shares-only vault was refused above).
        from dataclasses import replace

        from sealbox.server.sealed import LOG

        LOG.warning(
            "sealbox starts sealed: it runs ONE worker process (not %d) until it is restarted"
            " unsealed, so that unseal shares reach the process that collects them",
            settings.processes,
        )
        settings = replace(settings, workers=1)
    try:
        sock = bind(settings.host, settings.port)  # a busy address fails before anything runs
    except BaseException:
        vault.close()
        raise
    scheme = "https" if settings.tls_cert else "http"
    listening = f"sealbox server listening on {scheme}://{settings.address}"
    try:
        halt_scheduler = start_scheduler(settings) if settings.scheduler else None
    except BaseException:
        vault.close()
        sock.close()
        raise
    try:
        _serve_on(sock, vault, settings, announce, listening)
    finally:
        if halt_scheduler is not None:
            halt_scheduler()


def _serve_on(
    sock: Any, vault: Any, settings: ServerSettings, announce: Callable[[str], None], listening: str
) -> None:
    """Serve on the bound ``sock``: in this process, or in worker processes it supervises."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from sealbox.server.app import create_app
    from sealbox.server.listen import PARENT_VAR, start_listening

    with sock:
        if settings.processes == 1:
            try:
                app = create_app(vault, settings, reopen=helper_vault(settings))
                start_listening(sock)  # a client that connects now is served
                announce(listening)
                uvicorn.Server(uvicorn.Config(app, **uvicorn_options(settings))).run([sock])
            finally:
                vault.close()
            return
        vault.close()
        from sealbox.server.seal_flag import FLAG_VAR, SealFlag

        flag = SealFlag.create()
        os.environ[FLAG_VAR] = flag.path
        os.environ[SETTINGS_VAR] = _settings_to_env(settings)
        os.environ[PARENT_VAR] = str(os.getpid())
        config = uvicorn.Config(
            "sealbox.server.run:app_from_environment",
            factory=True,
            workers=settings.processes,
            **uvicorn_options(settings),
        )
        # Connections wait in the backlog until the first worker accepts them.
        start_listening(sock)
        announce(listening)
        try:
            Multiprocess(config, sockets=[sock]).run()
        finally:
            flag.remove()
