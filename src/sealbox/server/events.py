"""Change notifications: ``GET /v1/events/{project}/{env}`` as server-sent events.

Every committed change of a secret (write, rollback, delete, undelete, purge) reaches the
:class:`ChangeHub` through the core's ``Vault.on_change`` observer. On SQLite (one node)
the hub hands it straight to this process's subscribers. On PostgreSQL the hub sends it
as ``NOTIFY sealbox_changes`` and every node (this one included) ``LISTEN``s on a
dedicated connection in a thread and fans it out to its own subscribers, so a client of
any node hears a write made through any other.

A stream is authorised with ``list`` on ``project/env/*`` and starts with a ``snapshot``
event (``{"versions": {NAME: version}}``), then one ``change`` event
(``{"path", "version", "op"}``) per change; never a value. A comment line every
:data:`HEARTBEAT` seconds keeps proxies and the client's dead-link timer happy; at each,
the token and the permission are checked again, and a revoked or expired token ends the
stream with an ``error`` event.

Wiring (one line in ``create_app``, after ``app.state.sealbox`` is set): ``install(app)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from sealbox.auth.policy import Capability
from sealbox.errors import SealboxError
from sealbox.server.http import caller, state, token_of
from sealbox.vault import ChangeEvent, Vault

log = logging.getLogger("sealbox.server.events")

CHANNEL = "sealbox_changes"
HEARTBEAT = 15.0
#: Events a slow subscriber may fall behind by before its stream is ended (it reconnects
#: and catches up from the snapshot).
QUEUE_LIMIT = 1000
_CLOSED = object()


@dataclass(eq=False)
class Subscriber:
    project: str
    env: str
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Any] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))


class ChangeHub:
    """Fans change events out to this process's streams (through PostgreSQL when given)."""

    def __init__(self, dsn: str | None = None) -> None:
        self._dsn = dsn
        self._subs: set[Subscriber] = set()
        self._lock = threading.Lock()
        self._notify_conn: Any = None
        self._notify_lock = threading.Lock()
        self._listener: threading.Thread | None = None
        self._closed = threading.Event()
        #: Set while the LISTEN connection is up (tests wait for it).
        self.listening = threading.Event()

    @property
    def distributed(self) -> bool:
        return self._dsn is not None

    # -- publishing (the write path) ---------------------------------------------------------
    def publish(self, event: ChangeEvent) -> None:
        payload = json.dumps(
            {
                "project": event.project,
                "env": event.env,
                "name": event.name,
                "version": event.version,
                "op": event.op,
            }
        )
        if self._dsn is None:
            self.deliver(payload)
            return
        try:
            self._notify(payload)
        except Exception as exc:
            # NOTE: the write is committed; other nodes miss this one event (their clients
            # catch up on their next reconnection snapshot). This node's own streams still
            # hear it.
            log.warning("change notification not sent to other nodes: %s", type(exc).__name__)
            self.deliver(payload)

    def _notify(self, payload: str) -> None:
        import psycopg

        with self._notify_lock:
            for attempt in (1, 2):
                if self._notify_conn is None or self._notify_conn.closed:
                    assert self._dsn is not None
                    self._notify_conn = psycopg.connect(
                        self._dsn, autocommit=True, connect_timeout=5
                    )
                try:
                    self._notify_conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
                    return
                except psycopg.OperationalError:
                    with contextlib.suppress(Exception):
                        self._notify_conn.close()
                    self._notify_conn = None
                    if attempt == 2:
                        raise

    # -- delivering ----------------------------------------------------------------------------
    def deliver(self, payload: str) -> None:
        """Hand one event (JSON text) to every matching subscriber of this process."""
        try:
            data = json.loads(payload)
            project, env = data["project"], data["env"]
            message = json.dumps(
                {
                    "path": f"{project}/{env}/{data['name']}",
                    "version": data.get("version"),
                    "op": data.get("op", "write"),
                }
            )
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed change notification")
            return
        with self._lock:
            targets = [s for s in self._subs if s.project == project and s.env == env]
        for sub in targets:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the stream is gone
                sub.loop.call_soon_threadsafe(_offer, sub.queue, message)

    def subscribe(self, project: str, env: str) -> Subscriber:
        sub = Subscriber(project, env, asyncio.get_running_loop())
        with self._lock:
            self._subs.add(sub)
        if self._dsn is not None:
            self._ensure_listener()
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            self._subs.discard(sub)

    # -- listening (PostgreSQL) ------------------------------------------------------------------
    def start(self) -> None:
        """Start listening now (else on the first subscription); no-op on SQLite."""
        if self._dsn is not None:
            self._ensure_listener()

    def _ensure_listener(self) -> None:
        with self._lock:
            if self._listener is not None and self._listener.is_alive():
                return
            self._listener = threading.Thread(
                target=self._listen, name="sealbox-events-listen", daemon=True
            )
            self._listener.start()

    def _listen(self) -> None:
        import psycopg

        backoff = 0.5
        while not self._closed.is_set():
            try:
                assert self._dsn is not None
                with psycopg.connect(self._dsn, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    backoff = 0.5
                    while not self._closed.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self.deliver(note.payload)
            except Exception as exc:
                self.listening.clear()
                if self._closed.is_set():
                    return
                log.warning(
                    "change listener lost its database connection (%s); retrying in %.1f s",
                    type(exc).__name__,
                    backoff,
                )
                self._closed.wait(backoff)
                backoff = min(backoff * 2, 30.0)
        self.listening.clear()

    def close(self) -> None:
        self._closed.set()
        with self._notify_lock:
            if self._notify_conn is not None:
                with contextlib.suppress(Exception):
                    self._notify_conn.close()
                self._notify_conn = None
        with self._lock:
            subs, self._subs = list(self._subs), set()
        for sub in subs:
            with contextlib.suppress(RuntimeError):
                sub.loop.call_soon_threadsafe(_offer, sub.queue, _CLOSED)


def _offer(queue: asyncio.Queue[Any], message: Any) -> None:
    try:
        queue.put_nowait(message)
    except asyncio.QueueFull:
        # The subscriber fell too far behind: end its stream; it reconnects and catches up.
        with contextlib.suppress(asyncio.QueueEmpty):
            while True:
                queue.get_nowait()
        queue.put_nowait(_CLOSED)


def hub_of(app: Starlette) -> ChangeHub:
    hub: ChangeHub = app.state.sealbox_events
    return hub


def _sse(event: str, data: Any) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"event: {event}\ndata: {text}\n\n".encode()


async def events(request: Request) -> Response:
    who = caller(request)
    project, env = request.path_params["project"], request.path_params["env"]
    hub = hub_of(request.app)
    # Subscribe before the snapshot: a change in between is then sent, never lost.
    sub = hub.subscribe(project, env)
    try:
        versions = who.vault.versions(project, env)  # authorises list on project/env/*
    except BaseException:
        hub.unsubscribe(sub)
        raise
    token = token_of(request)
    tokens = state(request).tokens

    async def stream() -> Any:
        try:
            yield _sse("snapshot", {"versions": versions})
            while True:
                try:
                    message = await asyncio.wait_for(sub.queue.get(), timeout=HEARTBEAT)
                except TimeoutError:
                    try:
                        again = tokens.resolve(token)
                        if not again.principal.can(f"{project}/{env}/*", Capability.LIST):
                            yield _sse(
                                "error",
                                {"code": "access_denied", "message": "permission withdrawn"},
                            )
                            return
                    except SealboxError as exc:
                        yield _sse("error", {"code": exc.code, "message": exc.message})
                        return
                    yield b": ping\n\n"
                    continue
                if message is _CLOSED:
                    return
                yield _sse("change", message)
        finally:
            hub.unsubscribe(sub)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


ROUTES = [Route("/v1/events/{project}/{env}", events, methods=["GET"])]


def _dsn_of(vault: Vault) -> str | None:
    # NOTE: the PostgreSQL storage keeps its DSN privately; the events need their own
    # connections (LISTEN, NOTIFY) to the same database.
    from sealbox.storage.postgres import PostgresStorage

    storage = getattr(vault, "_storage", None)
    if isinstance(storage, PostgresStorage):
        dsn: str = storage._dsn
        return dsn
    return None


def install(app: Starlette) -> ChangeHub:
    """Add the events route (before the KV catch-alls) and hook the hub into the vault."""
    vault: Vault = state_vault(app)
    hub = ChangeHub(_dsn_of(vault))
    previous = vault.on_change

    def observe(event: ChangeEvent) -> None:
        if previous is not None:
            previous(event)
        hub.publish(event)

    vault.on_change = observe
    app.state.sealbox_events = hub
    app.router.routes[0:0] = ROUTES
    hub.start()
    return hub


def state_vault(app: Starlette) -> Vault:
    vault: Vault = app.state.sealbox.vault
    return vault
