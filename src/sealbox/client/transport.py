"""HTTP for the SDK on the standard library: one keep-alive connection per thread.

``http.client`` costs a few milliseconds to import where ``httpx`` costs 160 (DESIGN.md);
``sealbox run`` in remote mode pays only this. TLS uses the system trust store, or the CA
bundle named by ``SEALBOX_CACERT``. Every network failure becomes a
:class:`~sealbox.errors.BackendUnavailable` naming the server's address, never the token.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from sealbox.client.errors import BadReply, error_for, error_for_status
from sealbox.errors import BackendUnavailable, InvalidInput, SealboxError
from sealbox.wire.errors import decode_error

DEFAULT_TIMEOUT = 10.0
USER_AGENT = "sealbox-client/0.1"
#: Errors that mean a reused keep-alive connection was closed by the server while idle.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


@dataclass(frozen=True)
class Address:
    """A parsed server address (``http[s]://host[:port][/prefix]``)."""

    scheme: str
    host: str
    port: int
    prefix: str

    @property
    def display(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{host}{port}{self.prefix}"

    @classmethod
    def parse(cls, addr: str) -> Address:
        text = (addr or "").strip()
        if "://" not in text:
            raise InvalidInput(
                f"invalid server address {text[:100]!r}: use http(s)://HOST[:PORT]",
                hint="e.g. SEALBOX_ADDR=https://sealbox.internal:8200",
            )
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            raise InvalidInput(f"invalid server address {text[:100]!r}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput(f"invalid server address {text[:100]!r}: use http(s)://HOST[:PORT]")
        if parts.username or parts.password or parts.query or parts.fragment:
            # NOTE: credentials in the address would end up in messages and logs.
            raise InvalidInput("the server address must not carry credentials, a query or '#'")
        default = 443 if parts.scheme == "https" else 80
        return cls(parts.scheme, parts.hostname, port or default, parts.path.rstrip("/"))


def ssl_context(cacert: str | None) -> Any:
    """A verifying TLS context: the system store, or only ``cacert`` when given."""
    import ssl

    try:
        ctx = ssl.create_default_context(cafile=cacert) if cacert else ssl.create_default_context()
    except (OSError, ssl.SSLError) as exc:
        raise InvalidInput(
            f"cannot load the CA bundle {cacert}: {getattr(exc, 'strerror', None) or exc}",
            hint="SEALBOX_CACERT must name a PEM file of CA certificates",
        ) from None
    return ctx


def path_of(*segments: str) -> str:
    """A URL path from segments, each percent-encoded (no traversal through ``/`` or ``..``)."""
    return "/" + "/".join(quote(s, safe="") for s in segments)


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = field(repr=False)  # may hold revealed values or a new token
    headers: Mapping[str, str] = field(repr=False)


class Transport:
    """Sends requests to one server; thread-safe (a connection per thread)."""

    def __init__(
        self,
        addr: str,
        *,
        cacert: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.address = Address.parse(addr)
        self.where = self.address.display
        self.timeout = timeout
        if cacert is None:
            cacert = os.environ.get("SEALBOX_CACERT") or None
        self._cacert = cacert
        self._ssl: Any = None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[http.client.HTTPConnection] = []

    def __repr__(self) -> str:
        return f"Transport({self.where!r})"

    # -- connections ------------------------------------------------------------------------------
    def new_connection(self, timeout: float | None = None) -> http.client.HTTPConnection:
        a = self.address
        t = self.timeout if timeout is None else timeout
        if a.scheme == "https":
            if self._ssl is None:
                self._ssl = ssl_context(self._cacert)
            return http.client.HTTPSConnection(a.host, a.port, timeout=t, context=self._ssl)
        return http.client.HTTPConnection(a.host, a.port, timeout=t)

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn, True
        conn = self.new_connection()
        self._local.conn = conn
        with self._lock:
            self._all.append(conn)
        return conn, False

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()
            with self._lock:
                if conn in self._all:
                    self._all.remove(conn)

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    # -- requests ---------------------------------------------------------------------------------
    def headers(self, token: str | None, *, has_body: bool) -> dict[str, str]:
        h = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if has_body:
            h["Content-Type"] = "application/json"
        if token:
            h["Authorization"] = f"Bearer {token}"
        return h

    def url(self, path: str, query: Mapping[str, Any] | None = None) -> str:
        full = self.address.prefix + path
        if query:
            q = {k: v for k, v in query.items() if v is not None}
            if q:
                full += "?" + urlencode(q)
        return full

    def network_error(self, exc: BaseException) -> BackendUnavailable:
        """A clear message for a failure to talk to the server (never the token)."""
        import ssl

        where = self.where
        if isinstance(exc, ssl.SSLCertVerificationError):
            return BackendUnavailable(
                f"TLS certificate of {where} could not be verified: {exc.verify_message}",
                hint="set SEALBOX_CACERT to the CA bundle that signed the server's certificate",
            )
        if isinstance(exc, ssl.SSLError):
            return BackendUnavailable(
                f"TLS handshake with {where} failed ({exc.reason or type(exc).__name__})",
                hint="is the server speaking TLS? use http:// for a plain-HTTP server",
            )
        if isinstance(exc, ConnectionRefusedError):
            return BackendUnavailable(
                f"cannot reach the sealbox server at {where}: connection refused",
                hint="is the sealbox server running there? check SEALBOX_ADDR",
            )
        if isinstance(exc, TimeoutError | socket.timeout):
            return BackendUnavailable(
                f"the sealbox server at {where} did not answer within {self.timeout:g} s"
            )
        if isinstance(exc, socket.gaierror):
            return BackendUnavailable(f"cannot resolve the host of {where}: {exc.strerror or exc}")
        if isinstance(exc, http.client.HTTPException):
            return BadReply(
                f"the sealbox server at {where} sent a malformed HTTP answer ({type(exc).__name__})"
            )
        detail = getattr(exc, "strerror", None) or type(exc).__name__
        return BackendUnavailable(f"cannot reach the sealbox server at {where}: {detail}")

    def send(
        self,
        method: str,
        path: str,
        *,
        token: str | None,
        body: Any = None,
        query: Mapping[str, Any] | None = None,
    ) -> Reply:
        """One request; retries once when a reused keep-alive connection turned out closed."""
        payload = None if body is None else json.dumps(body).encode()
        url = self.url(path, query)
        headers = self.headers(token, has_body=payload is not None)
        for attempt in (1, 2):
            conn, reused = self._connection()
            try:
                conn.request(method, url, body=payload, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except _STALE as exc:
                self._drop()
                if reused and attempt == 1:
                    continue
                raise self.network_error(exc) from None
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                raise self.network_error(exc) from None
            if resp.will_close:
                self._drop()
            return Reply(resp.status, data, {k.lower(): v for k, v in resp.getheaders()})
        raise AssertionError("unreachable")  # pragma: no cover

    def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None,
        body: Any = None,
        query: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send and decode: the JSON answer (None for 204), or the error the server named."""
        reply = self.send(method, path, token=token, body=body, query=query)
        return self.decode(reply)

    def decode(self, reply: Reply) -> Any:
        if reply.status == 204:
            return None
        if 200 <= reply.status < 300:
            try:
                return json.loads(reply.body)
            except ValueError:
                raise BadReply(
                    f"the sealbox server at {self.where} sent a reply that is not JSON"
                ) from None
        raise self.error(reply)

    def error(self, reply: Reply) -> SealboxError:
        try:
            data: Any = json.loads(reply.body)
        except ValueError:  # not JSON
            return error_for_status(reply.status, self.where)
        try:
            code, message = decode_error(data)
        except ValueError:  # not a sealbox error body (a WireError)
            # A Vault-shaped route (the database engine's) answers {"errors": [message]}:
            # its status decides the class.
            found = data.get("errors") if isinstance(data, dict) else None
            if isinstance(found, list) and found and isinstance(found[0], str):
                return error_for("", found[0][:500], status=reply.status, where=self.where)
            return error_for_status(reply.status, self.where)
        return error_for(code, message[:500], status=reply.status, where=self.where)
