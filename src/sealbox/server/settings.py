"""Server settings: defaults, then a TOML file, then ``SEALBOX_*`` environment variables,
then command-line options. Validated once, frozen, passed to :func:`create_app`.

Config file keys (all optional)::

    address = "127.0.0.1:8200"
    tls_cert = "/etc/sealbox/tls.crt"
    tls_key = "/etc/sealbox/tls.key"
    workers = 0                   # worker processes; 0 = one per CPU, at most 4
    body_limit = 1048576          # bytes; larger request bodies get 413
    log_level = "info"            # debug | info | warning | error
    token_cache_ttl = 1.0         # seconds a token resolution is reused (0 disables)
    metrics_scope_labels = false  # add project/env labels to secret routes' metrics
    kv_mounts = ["*"]             # KV v2 mount names served; "*" = any non-reserved name
    login_rate = 5                # failed logins per minute per address (docs/server.md)
    login_burst = 10              # failed logins an address may make at once
    http = "auto"                 # auto (httptools + LIST) | httptools | h11
    trusted_proxies = []          # reverse proxies whose X-Forwarded-For is believed
    audit_node = ""               # audit chain name; "" = server:<hostname>:<port>
    audit_spool = true            # SQLite: spool audit events, store them in batches
    header_timeout = 10.0         # seconds for a request's head to arrive (then 408)
    body_timeout = 30.0           # seconds for its body to arrive after the head
    keepalive_timeout = 5         # seconds an idle keep-alive connection stays open
    scheduler = false             # run due rotations in this server (sealbox scheduler)
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from sealbox.errors import InvalidInput

LOG_LEVELS = ("debug", "info", "warning", "error")
HTTP_IMPLS = ("auto", "httptools", "h11")
MiB = 1024 * 1024
#: More processes than this on one SQLite file queue on its single write lock (every read
#: appends an audit event); scale further with more servers on PostgreSQL.
AUTO_WORKERS_MAX = 4


@dataclass(frozen=True)
class ServerSettings:
    """Everything the server needs besides the vault itself."""

    address: str = "127.0.0.1:8200"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: Worker processes; 0 picks one per CPU, at most :data:`AUTO_WORKERS_MAX`.
    workers: int = 0
    body_limit: int = MiB
    log_level: str = "info"
    token_cache_ttl: float = 1.0
    metrics_scope_labels: bool = False
    kv_mounts: tuple[str, ...] = ("*",)
    login_rate: float = 5.0
    login_burst: int = 10
    http: str = "auto"
    #: Addresses (or CIDRs) of reverse proxies whose X-Forwarded-For/-Proto headers are
    #: believed; none by default, so the peer address is the client's.
    trusted_proxies: tuple[str, ...] = ()
    #: The audit chain this server appends to ("" = server:<hostname>:<port>): one chain
    #: per node, so nodes on one database never queue on one chain head (docs/audit.md).
    audit_node: str = ""
    #: SQLite: append each audit event to a spool file before the response and store them
    #: in the database in batches (audit/spool.py); false: one group-commit transaction
    #: before the responses, as on PostgreSQL.
    audit_spool: bool = True
    #: Seconds a client has to send a request's head (from the connection's opening or
    #: the request's first byte) and then its body; past them the connection is closed,
    #: so slow clients cannot hold connections (server/protocol.py).
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    #: Seconds an idle keep-alive connection stays open after a response.
    keepalive_timeout: int = 5
    #: Run the scheduler (due rotations, stalled ones resumed) in this server's supervising
    #: process. Safe on every node of one PostgreSQL vault: one runs each job at a time.
    scheduler: bool = False

    @property
    def node(self) -> str:
        if self.audit_node:
            return self.audit_node
        import socket

        return f"server:{socket.gethostname()}:{self.port}"

    @property
    def processes(self) -> int:
        """How many worker processes serve: ``workers``, or one per CPU (at most 4)."""
        if self.workers:
            return self.workers
        return max(1, min(os.cpu_count() or 1, AUTO_WORKERS_MAX))

    @property
    def host(self) -> str:
        return split_address(self.address)[0]

    @property
    def port(self) -> int:
        return split_address(self.address)[1]

    def validated(self) -> ServerSettings:
        split_address(self.address)
        if (self.tls_cert is None) != (self.tls_key is None):
            raise InvalidInput("TLS needs both a certificate and a key (--tls-cert, --tls-key)")
        if not 0 <= self.workers <= 64:
            raise InvalidInput("workers must be between 1 and 64 (0: one per CPU)")
        if not 1024 <= self.body_limit <= 64 * MiB:
            raise InvalidInput("body_limit must be between 1 KiB and 64 MiB")
        if self.log_level not in LOG_LEVELS:
            raise InvalidInput(f"log_level must be one of {', '.join(LOG_LEVELS)}")
        if not 0 <= self.token_cache_ttl <= 60:
            raise InvalidInput("token_cache_ttl must be between 0 and 60 seconds")
        if self.login_rate <= 0 or self.login_burst < 1:
            raise InvalidInput("login_rate and login_burst must be positive")
        if self.http not in HTTP_IMPLS:
            raise InvalidInput(f"http must be one of {', '.join(HTTP_IMPLS)}")
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise InvalidInput(
                    f"trusted_proxies: {proxy[:64]!r} is not an IP address or network"
                ) from None
        for name in ("header_timeout", "body_timeout"):
            if not 0.1 <= getattr(self, name) <= 3600:
                raise InvalidInput(f"{name} must be between 0.1 and 3600 seconds")
        if not 1 <= self.keepalive_timeout <= 3600:
            raise InvalidInput("keepalive_timeout must be between 1 and 3600 seconds")
        if not self.kv_mounts:
            raise InvalidInput('kv_mounts names no mount; use ["*"] for any')
        return self


def split_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8200`` for IPv6)."""
    host, sep, port = address.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InvalidInput(f"invalid address {address[:100]!r}: use HOST:PORT, e.g. 127.0.0.1:8200")
    return host, int(port)


def _coerce(name: str, raw: Any, source: str) -> Any:
    kinds = {f.name: f.type for f in fields(ServerSettings)}
    kind = str(kinds[name])
    try:
        if kind == "int":
            if isinstance(raw, bool):
                raise ValueError
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind == "Path | None":
            return Path(str(raw)).expanduser() if raw not in (None, "") else None
        if kind == "tuple[str, ...]":
            items = raw if isinstance(raw, list) else str(raw).split(",")
            return tuple(str(i).strip() for i in items if str(i).strip())
        if not isinstance(raw, str):
            raise ValueError
        return raw
    except (TypeError, ValueError):
        raise InvalidInput(f"{source}: invalid value for {name}") from None


def load_settings(
    *,
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ServerSettings:
    """Defaults < config file < ``SEALBOX_<KEY>`` variables < explicit overrides."""
    settings = ServerSettings()
    names = [f.name for f in fields(ServerSettings)]
    changes: dict[str, Any] = {}
    if config_file is not None:
        try:
            data = tomllib.loads(Path(config_file).read_text())
        except OSError as exc:
            raise InvalidInput(f"cannot read {config_file}: {exc.strerror}") from None
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise InvalidInput(f"{config_file} is not valid TOML: {exc}") from None
        table = data.get("server", data)
        if not isinstance(table, dict):
            raise InvalidInput(f"{config_file}: [server] must be a table")
        unknown = sorted(set(table) - set(names))
        if unknown:
            raise InvalidInput(f"{config_file}: unknown setting(s) {', '.join(unknown)}")
        for key, value in table.items():
            changes[key] = _coerce(key, value, str(config_file))
    for key in names:
        var = f"SEALBOX_{key.upper()}"
        if env is not None and env.get(var):
            changes[key] = _coerce(key, env[var], var)
    for key, value in (overrides or {}).items():
        if value is not None:
            changes[key] = _coerce(key, value, f"--{key.replace('_', '-')}")
    return replace(settings, **changes).validated()
