"""Change notifications: ``GET /v1/events/{project}/{env}`` as server-sent events.

Every committed change of a secret (write, rollback, delete, undelete, purge) reaches the
:class:`ChangeHub` through the core's ``Vault.on_change`` observer. The hub hands it to
this process's subscribers at once, and publishes it on the vault's change feed
(:mod:`sealbox.changes`): ``NOTIFY``/``LISTEN`` on PostgreSQL, a polled ``sb_changes``
table on SQLite. A thread listens to the feed and fans out what other processes wrote,
so a client of any node, any worker, hears a write made through any other (or by the
CLI on the same database).

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
from sealbox.changes import ChangeEvent, ChangeFeed, decode_change, encode_change
from sealbox.errors import SealboxError
from sealbox.server.errors import public_message
from sealbox.server.http import caller, state, token_of
from sealbox.vault import Vault
from sealbox.wire import events as wire

log = logging.getLogger("sealbox.server.events")

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
    """Fans change events out to this process's streams: those made here (``publish``) and
    those other processes announced on the vault's change feed (:mod:`sealbox.changes`)."""

    def __init__(self, feed: ChangeFeed | None = None) -> None:
        self._feed = feed
        self._subs: set[Subscriber] = set()
        self._lock = threading.Lock()
        self._listener: threading.Thread | None = None
        self._closed = threading.Event()
        #: Set while the feed is being listened to (tests wait for it).
        self.listening = threading.Event()

    # -- publishing (the write path) ---------------------------------------------------------
    def publish(self, event: ChangeEvent) -> None:
        """A change made through this process: its streams hear it at once. (The core has
        already announced it to other processes on the vault's change feed.)"""
        self.deliver(
            encode_change(event.project, event.env, event.name, event.version, event.op, "")
        )

    # -- delivering ----------------------------------------------------------------------------
    def deliver(self, payload: str) -> None:
        """Hand one event (JSON text) to every matching subscriber of this process."""
        try:
            data = json.loads(payload)
            project, env = data["project"], data["env"]
            event = ChangeEvent(
                project, env, data["name"], data.get("version"), data.get("op", "write")
            )
            message = json.dumps(wire.encode_change(event))
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed change notification")
            return
        with self._lock:
            targets = [s for s in self._subs if s.project == project and s.env == env]
        for sub in targets:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the stream is gone
                sub.loop.call_soon_threadsafe(_offer, sub.queue, message)

    def _from_feed(self, payload: str) -> None:
        data = decode_change(payload)
        if data is None:
            log.warning("ignored a malformed change notification")
            return
        assert self._feed is not None
        if data.get("origin") != self._feed.origin:  # our own were delivered when made
            self.deliver(payload)

    def subscribe(self, project: str, env: str) -> Subscriber:
        sub = Subscriber(project, env, asyncio.get_running_loop())
        with self._lock:
            self._subs.add(sub)
        self._ensure_listener()
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            self._subs.discard(sub)

    # -- listening -------------------------------------------------------------------------------
    def start(self) -> None:
        """Listen now if the feed wants to (PostgreSQL); else on the first subscription."""
        if self._feed is not None and self._feed.persistent:
            self._ensure_listener()

    def _keep_going(self) -> bool:
        if self._closed.is_set():
            return False
        assert self._feed is not None
        if self._feed.persistent:
            return True
        with self._lock:
            return bool(self._subs)  # a polling listener stops when nobody listens

    def _ensure_listener(self) -> None:
        if self._feed is None or self._closed.is_set():
            return
        with self._lock:
            if self._listener is not None and self._listener.is_alive():
                return
        # Taken before the subscriber's snapshot: no change after it is missed.
        try:
            after = self._feed.position()
        except Exception as exc:
            log.warning("change feed unavailable: %s", type(exc).__name__)
            after = None
        with self._lock:
            if self._listener is not None and self._listener.is_alive():
                return
            self._listener = threading.Thread(
                target=self._listen, args=(after,), name="sealbox-events-listen", daemon=True
            )
            self._listener.start()

    def _listen(self, after: int | None) -> None:
        assert self._feed is not None
        backoff = 0.5
        while self._keep_going():
            try:
                self._feed.listen(self._from_feed, self._keep_going, self.listening, after)
                return
            except Exception as exc:
                if not self._keep_going():
                    return
                log.warning(
                    "change listener lost its database connection (%s); retrying in %.1f s",
                    type(exc).__name__,
                    backoff,
                )
                after = None
                self._closed.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    def close(self) -> None:
        self._closed.set()
        if self._feed is not None:
            self._feed.close()
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
            yield _sse("snapshot", wire.encode_snapshot(versions))
            while True:
                try:
                    message = await asyncio.wait_for(sub.queue.get(), timeout=HEARTBEAT)
                except TimeoutError:
                    try:
                        again = tokens.resolve(token)
                        if not again.principal.can(f"{project}/{env}/*", Capability.LIST):
                            withdrawn = wire.encode_stream_error(
                                "access_denied", "permission withdrawn"
                            )
                            yield _sse("error", withdrawn)
                            return
                    except SealboxError as exc:
                        yield _sse("error", wire.encode_stream_error(exc.code, public_message(exc)))
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


def install(app: Starlette) -> ChangeHub:
    """Add the events route (before the KV catch-alls) and hook the hub into the vault."""
    vault: Vault = state_vault(app)
    hub = ChangeHub(vault.change_feed())
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
