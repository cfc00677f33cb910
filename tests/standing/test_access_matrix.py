"""Standing suite "access matrix": every route x every kind of caller → the documented status.

The expected statuses are docs/server.md's section "Who gets which status": one table of
endpoint classes x callers, one of endpoints (``METHOD /template``, exactly as the router
names them) → class and success status. This suite parses both, so the doc and the test
cannot disagree, and checks them against the app's own routes, so a new route without a
row fails here rather than shipping with an unknown access rule.

Each cell is its own test, driven in-process through the ASGI app (no sockets, no
threads: :class:`Asgi`), with credentials minted for that cell alone, so the cells do not
depend on each other's order (``revoke-self`` revokes only its own cell's token). Expiry
uses the vault's clock, moved forward by the suite (:class:`ShiftedClock`), never a sleep.

:data:`KNOWN_DEFECTS` marks the cells that fail today, derived from the tables: delete its
entry when the fix lands and every cell it covered must then pass.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from tests.integration.creds.conftest import PG_CREATION
from tests.standing_summary import record
from tests.upstream_servers import scram_cluster

from sealbox.factory import bootstrap_server, init_vault, open_vault
from sealbox.kms.master import UnlockMethod
from sealbox.rotation import registry
from sealbox.server.app import create_app
from sealbox.server.auth import RateLimiter
from sealbox.server.settings import ServerSettings
from sealbox.vault import utcnow

DOC = Path(__file__).resolve().parents[2] / "docs" / "server.md"
SECTION = "## Who gets which status"

CALLERS = (
    "no token",
    "expired",
    "revoked",
    "child of a revoked parent",
    "other project",
    "read-only",
    "admin",
)

#: caller -> (the caller it wrongly behaves like today, why). A cell of that caller fails
#: today exactly where the two callers' documented statuses differ; those cells are marked
#: ``xfail(strict=True)``, so the day the defect is fixed they fail until the entry goes.
KNOWN_DEFECTS: dict[str, tuple[str, str]] = {}

PASSWORD = "correct horse battery staple"
PROJECT, ENV, SECRET = "payments", "dev", "DB_URL"
KV_ENTRY = "kv/app"  # payments/dev/kv/app through the KV mount "secret"
ROTATED = "ROTATED"  # rotated once by the random rotator at set-up
PG_ADMIN = "PG_ADMIN_URL"  # the admin URL of the credentials role's database
ROLE = f"{PROJECT}/{ENV}/db"  # a credentials role (policies name it creds/payments/dev/db)


# -- the documented tables -----------------------------------------------------------------------
@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # the route template, e.g. /v1/secrets/{project}/{env}/{name}
    cls: str
    ok: int

    @property
    def key(self) -> tuple[str, str]:
        return self.method, self.path


def _table_rows(lines: list[str], first_header: str) -> list[list[str]]:
    """The body rows of the markdown table whose header's first cell is ``first_header``."""
    for i, line in enumerate(lines):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first_header:
            rows = []
            for row in itertools.takewhile(lambda s: s.startswith("|"), lines[i + 2 :]):
                rows.append([c.strip() for c in row.strip().strip("|").split("|")])
            return [cells, *rows]
    raise AssertionError(f"docs/server.md: no table headed {first_header!r} under {SECTION!r}")


def documented() -> tuple[dict[str, dict[str, str]], list[Endpoint]]:
    """(class -> caller -> status text, endpoints) from docs/server.md."""
    text = DOC.read_text(encoding="utf-8")
    assert SECTION in text, f"docs/server.md has no section {SECTION!r}"
    body = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    lines = body.splitlines()
    header, *class_rows = _table_rows(lines, "class")
    assert tuple(header[1:]) == CALLERS, f"the class table's columns are {header[1:]}"
    classes: dict[str, dict[str, str]] = {}
    for row in class_rows:
        assert len(row) == len(header), f"class row {row}"
        assert all(re.fullmatch(r"ok|[1-5]\d\d", c) for c in row[1:]), f"class row {row}"
        classes[row[0]] = dict(zip(CALLERS, row[1:], strict=True))
    _, *endpoint_rows = _table_rows(lines, "endpoint")
    endpoints = []
    for row in endpoint_rows:
        m = re.fullmatch(r"`([A-Z]+) (/\S*)`", row[0])
        assert m is not None, f"endpoint cell {row[0]!r}: write `METHOD /template`"
        assert row[1] in classes, f"endpoint {row[0]}: unknown class {row[1]!r}"
        endpoints.append(Endpoint(m[1], m[2], row[1], int(row[2])))
    keys = [e.key for e in endpoints]
    assert len(keys) == len(set(keys)), "an endpoint is listed twice"
    return classes, endpoints


CLASSES, ENDPOINTS = documented()


def expected(endpoint: Endpoint, who: str) -> int:
    text = CLASSES[endpoint.cls][who]
    return endpoint.ok if text == "ok" else int(text)


def known_defect(endpoint: Endpoint, who: str) -> str | None:
    """Why this cell fails today, or None."""
    if who not in KNOWN_DEFECTS:
        return None
    like, reason = KNOWN_DEFECTS[who]
    return reason if expected(endpoint, like) != expected(endpoint, who) else None


# -- an in-process ASGI client that also copes with event streams ------------------------------
class Asgi:
    """Calls the app directly on one event loop (kept for the module, so the audit drains
    the app schedules run between requests). A streaming response (server-sent events)
    is answered by its status: the client then disconnects, as a real one would."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()

    def close(self) -> None:
        self.loop.run_until_complete(asyncio.sleep(0.05))  # let scheduled drains finish
        self.loop.close()

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        raw = b"" if body is None else json.dumps(body).encode()
        return self.loop.run_until_complete(
            asyncio.wait_for(self._call(method, path, raw, token, content_type), 10)
        )

    async def _call(
        self, method: str, target: str, raw: bytes, token: str | None, content_type: str
    ) -> tuple[int, Any]:
        path, _, query = target.partition("?")
        headers = [(b"host", b"testserver"), (b"content-length", str(len(raw)).encode())]
        if raw:
            headers.append((b"content-type", content_type.encode()))
        if token is not None:
            headers.append((b"authorization", f"Bearer {token}".encode()))
        scope = {
            "type": "http",
            # 2.3: a streaming response listens for the client's disconnect.
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": unquote(path),
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 40000),
            "server": ("testserver", 80),
        }
        done = asyncio.Event()
        answer: dict[str, Any] = {"body": b""}
        requested = False

        async def receive() -> dict[str, Any]:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": raw, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                kinds = [v for k, v in message.get("headers", ()) if k == b"content-type"]
                if kinds and kinds[0].startswith(b"text/event-stream"):
                    done.set()  # the status is all this client wants from a stream
            elif message["type"] == "http.response.body":
                answer["body"] += message.get("body", b"")
                if not message.get("more_body"):
                    done.set()

        await self.app(scope, receive, send)
        data = answer["body"]
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = data
        return answer["status"], parsed


# -- the server and its callers ------------------------------------------------------------------
class ShiftedClock:
    """The vault's clock: real time plus an offset this suite only ever moves forward."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@dataclass
class World:
    call: Asgi
    clock: ShiftedClock
    setup_token: str  # the bootstrap admin's token: only ever used to prepare cells
    app: Starlette
    base: Path  # the suite's own directory (the file rotator's files)
    stack: ExitStack  # what the set-up started (the PostgreSQL cluster), stopped at the end
    role_id: str = ""
    secret_id: str = ""
    rotation_id: str = ""  # ROTATED's finished rotation
    role_ready: bool = False
    serial: Iterator[int] = field(default_factory=itertools.count)

    def admin(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        status, data = self.call(method, path, body, token=self.setup_token, **kw)
        assert status < 300, f"set-up {method} {path}: {status} {data}"
        return data

    def mint(self, identity: str, **extra: Any) -> tuple[str, str]:
        data = self.admin("POST", "/v1/tokens", {"identity": identity, **extra})
        return data["token"], data["accessor"]

    def fresh(self, prefix: str) -> str:
        return f"{prefix}{next(self.serial)}"

    def secret(self, name: str, *, deleted: bool = False) -> str:
        path = f"/v1/secrets/{PROJECT}/{ENV}/{name}"
        self.admin("PUT", path, {"value": "v"})
        if deleted:
            self.admin("DELETE", path)
        return name

    def kv(self, rest: str) -> str:
        self.admin("POST", f"/v1/secret/data/{PROJECT}/{ENV}/{rest}", {"data": {"k": "v"}})
        return f"{PROJECT}/{ENV}/{rest}"

    def machine(self, name: str) -> str:
        self.admin("POST", "/v1/identities", {"name": name, "kind": "machine"})
        return name

    def rotatable(self, name: str) -> str:
        """A secret rotated by the random rotator (configured, not yet rotated)."""
        self.secret(name)
        self.admin("PUT", f"{ROT}/{name}", {"method": "random"})
        return name

    def stuck(self) -> tuple[str, str]:
        """(secret, rotation id) of a new rotation that failed at its test step and waits
        to be resumed or cancelled: the test rotator's upstream file refuses it."""
        name = self.secret(self.fresh("STUCK_"))
        upstream, control = self.base / f"{name}.json", self.base / f"{name}.control.json"
        upstream.write_text(json.dumps({"password": "v"}))
        control.write_text(json.dumps({"refuse_test": "1"}))
        options = {"upstream": str(upstream), "control": str(control)}
        self.admin("PUT", f"{ROT}/{name}", {"method": "file", "options": options})
        run = self.admin("POST", f"{ROT}/{name}/rotate", {})
        assert run["state"] == "failed", run
        return name, str(run["id"])

    def role(self) -> str:
        """ROLE, on a throw-away scram PostgreSQL cluster started the first time a cell
        needs it (one per module), its admin URL the secret PG_ADMIN."""
        if not self.role_ready:
            cluster = self.stack.enter_context(scram_cluster())
            self.admin("PUT", f"{ONE}/{PG_ADMIN}", {"value": cluster.url()})
            self.admin("PUT", f"/v1/database/roles/{ROLE}", ROLE_BODY)
            self.role_ready = True
        return ROLE

    def lease(self) -> str:
        """A new lease on ROLE, issued to the set-up admin (another identity than every
        caller's but the admin's, so only ``admin`` on the role may renew or revoke it)."""
        return str(self.admin("GET", f"/v1/database/creds/{self.role()}")["lease_id"])


def credential(world: World, who: str) -> str | None:
    """A token of this kind, minted for one cell."""
    if who == "no token":
        return None
    if who == "expired":
        token, _ = world.mint("admin", ttl="1s")
        world.clock.advance(2)
        return token
    if who == "revoked":
        token, accessor = world.mint("admin")
        world.admin("DELETE", f"/v1/tokens/{accessor}")
        return token
    if who == "child of a revoked parent":
        parent, _ = world.mint("admin")
        status, data = world.call("POST", "/v1/tokens", {}, token=parent)
        assert status == 200, data
        child = data["token"]
        # The child is in use (and so in the token cache) when its parent goes.
        assert world.call("GET", "/v1/auth/token/self", token=child)[0] == 200
        assert world.call("POST", "/v1/auth/token/revoke-self", token=parent)[0] == 204
        return str(child)
    if who == "other project":
        return world.mint("outsider")[0]
    if who == "read-only":
        return world.mint("reader")[0]
    if who == "admin":
        return world.mint("admin")[0]
    raise AssertionError(f"unknown caller {who!r}")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("access-matrix")
    home, env = base / "home", {"SEALBOX_HOME": str(base / "home")}
    init_vault(home=home, method=UnlockMethod.KEYFILE, key_file=base / "master.key", env=env)
    _, token = bootstrap_server(admin="admin", password=PASSWORD, home=home, env=env)
    clock = ShiftedClock()
    vault = open_vault(home=home, env=env, source="api", clock=clock)
    # Logins are rate limited per address; every login cell comes from one.
    app = create_app(vault, ServerSettings(login_rate=6000, login_burst=1000))
    # … and so is every attempt (more than its 30 at once: userpass's cells log in too).
    app.state.sealbox.login_limits = RateLimiter(6000, 1000, attempt_rate=6000, attempt_burst=1000)
    call = Asgi(app)
    stack = ExitStack()
    w = World(call, clock, token.value, app, base, stack)
    w.admin("POST", "/v1/projects", {"name": PROJECT})
    w.admin("POST", "/v1/projects", {"name": "other"})
    # Data in it: KV lists only paths with documents, as Vault does.
    w.admin("PUT", "/v1/secrets/other/dev/OTHER", {"value": "v"})
    # A project's credentials roles are policy paths of their own (creds/<project>/…).
    w.admin("PUT", "/v1/policies/reader", {"rules": [
        {"path": f"{PROJECT}/**", "capabilities": ["read", "list"]},
        {"path": f"creds/{PROJECT}/**", "capabilities": ["read", "list"]}]})  # fmt: skip
    w.admin("PUT", "/v1/policies/outsider", {"rules": [
        {"path": "other/**", "capabilities": ["admin"]},
        {"path": "creds/other/**", "capabilities": ["admin"]}]})  # fmt: skip
    w.admin("POST", "/v1/identities",
            {"name": "reader", "kind": "person", "password": PASSWORD, "policies": ["reader"]})  # fmt: skip
    w.admin("POST", "/v1/identities", {"name": "outsider", "kind": "machine",
                                       "policies": ["outsider"]})  # fmt: skip
    robot = w.admin("POST", "/v1/identities", {"name": "robot", "kind": "machine"})
    w.role_id = robot["role_id"]
    w.secret_id = w.admin("POST", "/v1/identities/robot/secret-ids", {})["secret_id"]
    w.secret(SECRET)
    w.secret(SECRET)  # two versions, for rollback
    w.kv(KV_ENTRY)
    try:
        # The test rotator (tests/file_rotator.py) makes a rotation fail on demand.
        stack.enter_context(pytest.MonkeyPatch.context()).setitem(
            registry.BUILTIN, "file", "tests.file_rotator:FileRotator"
        )
        w.rotation_id = w.admin("POST", f"{ROT}/{w.rotatable(ROTATED)}/rotate", {})["id"]
        yield w
    finally:
        call.close()
        vault.close()
        stack.close()


# -- how to call each endpoint -------------------------------------------------------------------
@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: Any = None
    content_type: str = "application/json"


ONE = f"/v1/secrets/{PROJECT}/{ENV}"
KV = f"{PROJECT}/{ENV}"
MERGE = "application/merge-patch+json"
VA_ROLE = "/v1/auth/approle/role"
VA_BODY = {"token_policies": "reader", "secret_id_num_uses": "1", "token_ttl": "1h"}
POLICY_BODY = {"rules": [{"path": "scratch/**", "capabilities": ["read"]}]}
ROT = f"/v1/rotation/secrets/{PROJECT}/{ENV}"
ROLE_BODY = {
    "db_name": f"{PROJECT}/{ENV}/{PG_ADMIN}",
    "backend": "postgres",
    "creation_statements": PG_CREATION,
}

#: (method, route template) -> a request that succeeds for a caller allowed to make it.
#: Each gets a fresh target where the request changes or removes it.
RECIPES: dict[tuple[str, str], Callable[[World], Call]] = {
    ("GET", "/v1/sys/health"): lambda w: Call("GET", "/v1/sys/health"),
    ("GET", "/v1/sys/ready"): lambda w: Call("GET", "/v1/sys/ready"),
    ("GET", "/v1/sys/seal-status"): lambda w: Call("GET", "/v1/sys/seal-status"),
    ("GET", "/v1/sys/leader"): lambda w: Call("GET", "/v1/sys/leader"),
    **{
        (method, "/v1/sys/unseal"): (
            lambda w, method=method: Call(method, "/v1/sys/unseal", {"reset": True})
        )
        for method in ("PUT", "POST")
    },
    # Sealing the world's server: test_cell opens it again (its key file) right after.
    **{
        (method, "/v1/sys/seal"): (lambda w, method=method: Call(method, "/v1/sys/seal"))
        for method in ("PUT", "POST")
    },
    ("GET", "/v1/openapi.json"): lambda w: Call("GET", "/v1/openapi.json"),
    ("GET", "/metrics"): lambda w: Call("GET", "/metrics"),
    ("POST", "/v1/auth/login"): lambda w: Call(
        "POST", "/v1/auth/login", {"name": "reader", "password": PASSWORD}
    ),
    ("POST", "/v1/auth/{method}/login"): lambda w: Call(
        "POST", "/v1/auth/password/login", {"name": "reader", "password": PASSWORD}
    ),
    ("PUT", "/v1/auth/{method}/login"): lambda w: Call(
        "PUT", "/v1/auth/approle/login", {"role_id": w.role_id, "secret_id": w.secret_id}
    ),
    # userpass takes the name in the path (Vault's auth/userpass/login/<username>).
    **{
        (method, "/v1/auth/{method}/login/{name}"): (
            lambda w, method=method: Call(
                method, "/v1/auth/userpass/login/reader", {"password": PASSWORD}
            )
        )
        for method in ("POST", "PUT")
    },
    # -- Vault's AppRole and userpass administration (issue 15): the robot and reader --
    **{
        (method, path): (lambda w, method=method, path=path: Call(method, path))
        for method in ("GET", "LIST")
        for path in (VA_ROLE, "/v1/auth/userpass/users")
    },
    **{
        (method, f"{VA_ROLE}/{{name}}"): (
            lambda w, method=method: Call(method, f"{VA_ROLE}/{w.fresh('ar')}", VA_BODY)
        )
        for method in ("POST", "PUT")
    },
    ("GET", f"{VA_ROLE}/{{name}}"): lambda w: Call("GET", f"{VA_ROLE}/robot"),
    ("DELETE", f"{VA_ROLE}/{{name}}"): lambda w: Call(
        "DELETE", f"{VA_ROLE}/{w.machine(w.fresh('gone'))}"
    ),
    ("GET", f"{VA_ROLE}/{{name}}/role-id"): lambda w: Call("GET", f"{VA_ROLE}/robot/role-id"),
    **{
        (method, f"{VA_ROLE}/{{name}}/role-id"): (
            lambda w, method=method: Call(
                method, f"{VA_ROLE}/{w.machine(w.fresh('rid'))}/role-id", {"role_id": w.fresh("r")}
            )
        )
        for method in ("POST", "PUT")
    },
    **{
        (method, f"{VA_ROLE}/{{name}}/secret-id"): (
            lambda w, method=method: Call(method, f"{VA_ROLE}/robot/secret-id")
        )
        for method in ("POST", "PUT", "GET", "LIST")
    },
    **{
        (method, f"{VA_ROLE}/{{name}}/{what}/{verb}"): (
            lambda w, method=method, what=what, verb=verb: Call(
                method, f"{VA_ROLE}/robot/{what}/{verb}", _secret_id_body(w, what)
            )
        )
        for method in ("POST", "PUT")
        for what in ("secret-id", "secret-id-accessor")
        for verb in ("lookup", "destroy")
    },
    **{
        (method, "/v1/auth/userpass/users/{name}"): (
            lambda w, method=method: Call(
                method, f"/v1/auth/userpass/users/{w.fresh('up')}", {"password": PASSWORD}
            )
        )
        for method in ("POST", "PUT")
    },
    ("GET", "/v1/auth/userpass/users/{name}"): lambda w: Call(
        "GET", "/v1/auth/userpass/users/reader"
    ),
    ("DELETE", "/v1/auth/userpass/users/{name}"): lambda w: Call(
        "DELETE", f"/v1/auth/userpass/users/{_person(w)}"
    ),
    **{
        (method, "/v1/auth/userpass/users/{name}/password"): (
            lambda w, method=method: Call(
                method, f"/v1/auth/userpass/users/{_person(w)}/password", {"password": PASSWORD}
            )
        )
        for method in ("POST", "PUT")
    },
    ("GET", "/v1/auth/token/self"): lambda w: Call("GET", "/v1/auth/token/self"),
    **{
        (method, "/v1/auth/token/lookup-self"): (
            lambda w, method=method: Call(method, "/v1/auth/token/lookup-self")
        )
        for method in ("GET", "POST", "PUT")
    },
    # Another token of the admin identity: not the caller's own, so sys/tokens decides.
    **{
        (method, "/v1/auth/token/lookup"): (
            lambda w, method=method: Call(
                method, "/v1/auth/token/lookup", {"token": w.mint("admin")[0]}
            )
        )
        for method in ("GET", "POST", "PUT")
    },
    **{
        (method, f"/v1/auth/token/{verb}-accessor"): (
            lambda w, method=method, verb=verb: Call(
                method, f"/v1/auth/token/{verb}-accessor", {"accessor": w.mint("admin")[1]}
            )
        )
        for method in ("POST", "PUT")
        for verb in ("lookup", "revoke")
    },
    **{
        (method, "/v1/auth/token/revoke"): (
            lambda w, method=method: Call(
                method, "/v1/auth/token/revoke", {"token": w.mint("admin")[0]}
            )
        )
        for method in ("POST", "PUT")
    },
    **{
        (method, f"/v1/auth/token/{name}"): (
            lambda w, method=method, name=name: Call(method, f"/v1/auth/token/{name}", {})
        )
        for method in ("POST", "PUT")
        for name in ("renew", "renew-self", "revoke-self", "create", "create-orphan")
    },
    ("GET", "/v1/sys/mounts"): lambda w: Call("GET", "/v1/sys/mounts"),
    ("GET", "/v1/sys/mounts/{mount}/tune"): lambda w: Call("GET", "/v1/sys/mounts/secret/tune"),
    ("GET", "/v1/sys/auth"): lambda w: Call("GET", "/v1/sys/auth"),
    **{
        (method, "/v1/sys/capabilities-self"): (
            lambda w, method=method: Call(
                method, "/v1/sys/capabilities-self", {"paths": [f"secret/data/{KV}/x"]}
            )
        )
        for method in ("POST", "PUT")
    },
    ("GET", "/v1/sys/internal/ui/mounts"): lambda w: Call("GET", "/v1/sys/internal/ui/mounts"),
    ("GET", "/v1/projects"): lambda w: Call("GET", "/v1/projects"),
    ("POST", "/v1/projects"): lambda w: Call("POST", "/v1/projects", {"name": w.fresh("new")}),
    ("GET", "/v1/projects/{project}/envs"): lambda w: Call("GET", f"/v1/projects/{PROJECT}/envs"),
    ("POST", "/v1/projects/{project}/envs"): lambda w: Call(
        "POST", f"/v1/projects/{PROJECT}/envs", {"name": w.fresh("env")}
    ),
    ("GET", "/v1/secrets/{project}/{env}"): lambda w: Call("GET", ONE),
    ("GET", "/v1/secrets/{project}/{env}/{name}"): lambda w: Call("GET", f"{ONE}/{SECRET}"),
    ("PUT", "/v1/secrets/{project}/{env}/{name}"): lambda w: Call(
        "PUT", f"{ONE}/{w.fresh('PUT_')}", {"value": "new"}
    ),
    ("DELETE", "/v1/secrets/{project}/{env}/{name}"): lambda w: Call(
        "DELETE", f"{ONE}/{w.secret(w.fresh('DEL_'))}"
    ),
    ("POST", "/v1/secrets/{project}/{env}/{name}/undelete"): lambda w: Call(
        "POST", f"{ONE}/{w.secret(w.fresh('UNDEL_'), deleted=True)}/undelete"
    ),
    ("POST", "/v1/secrets/{project}/{env}/{name}/purge"): lambda w: Call(
        "POST", f"{ONE}/{w.secret(w.fresh('PURGE_'))}/purge"
    ),
    ("GET", "/v1/secrets/{project}/{env}/{name}/history"): lambda w: Call(
        "GET", f"{ONE}/{SECRET}/history"
    ),
    ("POST", "/v1/secrets/{project}/{env}/{name}/rollback"): lambda w: Call(
        "POST", f"{ONE}/{SECRET}/rollback", {"version": 1}
    ),
    ("GET", "/v1/secrets/{project}/{env}/{name}/meta"): lambda w: Call(
        "GET", f"{ONE}/{SECRET}/meta"
    ),
    ("PATCH", "/v1/secrets/{project}/{env}/{name}/meta"): lambda w: Call(
        "PATCH", f"{ONE}/{SECRET}/meta", {"owner": "team-a"}
    ),
    ("GET", "/v1/resolve/{project}/{env}"): lambda w: Call("GET", f"/v1/resolve/{PROJECT}/{ENV}"),
    ("GET", "/v1/events/{project}/{env}"): lambda w: Call("GET", f"/v1/events/{PROJECT}/{ENV}"),
    ("GET", "/v1/identities"): lambda w: Call("GET", "/v1/identities"),
    ("POST", "/v1/identities"): lambda w: Call(
        "POST", "/v1/identities", {"name": w.fresh("m"), "kind": "machine"}
    ),
    ("GET", "/v1/identities/{name}"): lambda w: Call("GET", "/v1/identities/reader"),
    ("DELETE", "/v1/identities/{name}"): lambda w: Call(
        "DELETE", f"/v1/identities/{w.machine(w.fresh('gone'))}"
    ),
    ("PUT", "/v1/identities/{name}/policies"): lambda w: Call(
        "PUT", f"/v1/identities/{w.machine(w.fresh('pol'))}/policies", {"policies": ["reader"]}
    ),
    ("POST", "/v1/identities/{name}/secret-ids"): lambda w: Call(
        "POST", "/v1/identities/robot/secret-ids", {}
    ),
    ("POST", "/v1/identities/{name}/revoke-tokens"): lambda w: Call(
        "POST", f"/v1/identities/{w.machine(w.fresh('rev'))}/revoke-tokens"
    ),
    # For another identity than any caller's own (for oneself it is open to every token).
    ("POST", "/v1/tokens"): lambda w: Call("POST", "/v1/tokens", {"identity": "robot"}),
    ("GET", "/v1/tokens"): lambda w: Call("GET", "/v1/tokens"),
    ("DELETE", "/v1/tokens/{accessor}"): lambda w: Call(
        "DELETE", f"/v1/tokens/{w.mint('reader')[1]}"
    ),
    ("GET", "/v1/policies"): lambda w: Call("GET", "/v1/policies"),
    ("POST", "/v1/policies/explain"): lambda w: Call(
        "POST",
        "/v1/policies/explain",
        {"identity": "reader", "path": f"{KV}/{SECRET}", "capability": "read"},
    ),
    ("PUT", "/v1/policies/{name}"): lambda w: Call(
        "PUT", f"/v1/policies/{w.fresh('p')}", POLICY_BODY
    ),
    ("GET", "/v1/policies/{name}"): lambda w: Call("GET", "/v1/policies/reader"),
    ("DELETE", "/v1/policies/{name}"): lambda w: Call("DELETE", f"/v1/policies/{_policy(w)}"),
    ("POST", "/v1/audit/log"): lambda w: Call("POST", "/v1/audit/log", {"limit": 5}),
    ("POST", "/v1/audit/who-read"): lambda w: Call(
        "POST", "/v1/audit/who-read", {"path": f"{KV}/{SECRET}"}
    ),
    ("POST", "/v1/audit/hash"): lambda w: Call("POST", "/v1/audit/hash", {"value": "v"}),
    ("POST", "/v1/audit/verify"): lambda w: Call("POST", "/v1/audit/verify"),
    ("POST", "/v1/audit/checkpoint"): lambda w: Call("POST", "/v1/audit/checkpoint"),
    ("GET", "/v1/sys/internal/ui/mounts/{path:path}"): lambda w: Call(
        "GET", "/v1/sys/internal/ui/mounts/secret"
    ),
    ("GET", "/v1/{mount}/data/{path:path}"): lambda w: Call(
        "GET", f"/v1/secret/data/{KV}/{KV_ENTRY}"
    ),
    ("POST", "/v1/{mount}/data/{path:path}"): lambda w: Call(
        "POST", f"/v1/secret/data/{KV}/{w.fresh('post')}", {"data": {"k": "v"}}
    ),
    ("PUT", "/v1/{mount}/data/{path:path}"): lambda w: Call(
        "PUT", f"/v1/secret/data/{KV}/{w.fresh('put')}", {"data": {"k": "v"}}
    ),
    ("PATCH", "/v1/{mount}/data/{path:path}"): lambda w: Call(
        "PATCH", f"/v1/secret/data/{w.kv(w.fresh('patch'))}", {"data": {"k": "w"}}, MERGE
    ),
    ("DELETE", "/v1/{mount}/data/{path:path}"): lambda w: Call(
        "DELETE", f"/v1/secret/data/{w.kv(w.fresh('del'))}"
    ),
    ("GET", "/v1/{mount}/metadata/{path:path}"): lambda w: Call(
        "GET", f"/v1/secret/metadata/{KV}/{KV_ENTRY}"
    ),
    ("LIST", "/v1/{mount}/metadata/{path:path}"): lambda w: Call(
        "LIST", f"/v1/secret/metadata/{KV}/"
    ),
    **{
        (method, "/v1/{mount}/metadata/{path:path}"): (
            lambda w, method=method: Call(
                method,
                f"/v1/secret/metadata/{w.kv(w.fresh('meta'))}",
                {"custom_metadata": {"owner": "team-a"}},
                MERGE if method == "PATCH" else "application/json",
            )
        )
        for method in ("POST", "PUT", "PATCH")
    },
    ("DELETE", "/v1/{mount}/metadata/{path:path}"): lambda w: Call(
        "DELETE", f"/v1/secret/metadata/{w.kv(w.fresh('purge'))}"
    ),
    ("GET", "/v1/{mount}/metadata"): lambda w: Call("GET", "/v1/secret/metadata"),
    ("GET", "/v1/{mount}/config"): lambda w: Call("GET", "/v1/secret/config"),
    **{
        (method, "/v1/{mount}/config"): (
            lambda w, m=method: Call(m, "/v1/secret/config", {"max_versions": 0})
        )
        for method in ("POST", "PUT")
    },
    ("LIST", "/v1/{mount}/metadata"): lambda w: Call("LIST", "/v1/secret/metadata"),
    **{
        (method, f"/v1/{{mount}}/{verb}/{{path:path}}"): (
            lambda w, method=method, verb=verb: Call(
                method,
                f"/v1/secret/{verb}/{_kv_for(w, verb)}",
                {"versions": [1]},
            )
        )
        for method in ("POST", "PUT")
        for verb in ("delete", "undelete", "destroy")
    },
    # -- rotation (issue 12) --
    ("GET", "/v1/rotation/status"): lambda w: Call("GET", "/v1/rotation/status"),
    ("GET", "/v1/rotation/due"): lambda w: Call("GET", "/v1/rotation/due"),
    ("POST", "/v1/rotation/due"): lambda w: Call("POST", "/v1/rotation/due", {}),
    ("GET", "/v1/rotation/secrets/{project}/{env}/{name}"): lambda w: Call(
        "GET", f"{ROT}/{ROTATED}"
    ),
    ("PUT", "/v1/rotation/secrets/{project}/{env}/{name}"): lambda w: Call(
        "PUT", f"{ROT}/{w.secret(w.fresh('CFG_'))}", {"method": "random"}
    ),
    ("POST", "/v1/rotation/secrets/{project}/{env}/{name}/rotate"): lambda w: Call(
        "POST", f"{ROT}/{w.rotatable(w.fresh('ROT_'))}/rotate", {}
    ),
    **{
        ("POST", f"/v1/rotation/secrets/{{project}}/{{env}}/{{name}}/{verb}"): (
            lambda w, verb=verb: Call("POST", f"{ROT}/{w.stuck()[0]}/{verb}", {})
        )
        for verb in ("resume", "cancel")
    },
    ("GET", "/v1/rotation/secrets/{project}/{env}/{name}/history"): lambda w: Call(
        "GET", f"{ROT}/{ROTATED}/history"
    ),
    # Version 1 of a secret with two: no longer current, so it may be revoked.
    ("POST", "/v1/rotation/secrets/{project}/{env}/{name}/revoke"): lambda w: Call(
        "POST", f"{ROT}/{_two_versions(w)}/revoke", {"version": 1}
    ),
    ("GET", "/v1/rotation/runs/{rotation_id}"): lambda w: Call(
        "GET", f"/v1/rotation/runs/{w.rotation_id}"
    ),
    **{
        ("POST", f"/v1/rotation/runs/{{rotation_id}}/{verb}"): (
            lambda w, verb=verb: Call("POST", f"/v1/rotation/runs/{w.stuck()[1]}/{verb}", {})
        )
        for verb in ("resume", "cancel")
    },
    # -- dynamic database credentials (issue 12), on a scram PostgreSQL cluster --
    ("GET", "/v1/database/creds/{project}/{env}/{role}"): lambda w: Call(
        "GET", f"/v1/database/creds/{w.role()}"
    ),
    **{
        (method, "/v1/database/roles/{project}/{env}/{role}"): (
            lambda w, method=method: Call(method, f"/v1/database/roles/{_role_name(w)}", ROLE_BODY)
        )
        for method in ("POST", "PUT")
    },
    ("GET", "/v1/database/roles/{project}/{env}/{role}"): lambda w: Call(
        "GET", f"/v1/database/roles/{w.role()}"
    ),
    ("DELETE", "/v1/database/roles/{project}/{env}/{role}"): lambda w: Call(
        "DELETE", f"/v1/database/roles/{_defined_role(w)}"
    ),
    **{
        ("PUT", f"/v1/sys/leases/{verb}"): (
            lambda w, verb=verb: Call("PUT", f"/v1/sys/leases/{verb}", {"lease_id": w.lease()})
        )
        for verb in ("renew", "revoke", "lookup")
    },
    **{
        (method, "/v1/sys/leases/lookup/{project}/{env}/{role}"): (
            lambda w, method=method: Call(method, f"/v1/sys/leases/lookup/{w.role()}")
        )
        for method in ("GET", "LIST")
    },
    # With a live lease to revoke (each cell's own: it is issued just before the call).
    **{
        ("PUT", f"/v1/sys/leases/{verb}/{{project}}/{{env}}/{{role}}"): (
            lambda w, verb=verb: Call("PUT", f"/v1/sys/leases/{verb}/{_leased_role(w)}", {})
        )
        for verb in ("revoke-prefix", "revoke-force")
    },
    # -- incident response (issue 12): the assessment, which changes nothing --
    ("POST", "/v1/incident"): lambda w: Call(
        "POST",
        "/v1/incident",
        {"path": f"{PROJECT}/{ENV}/{SECRET}", "reason": "SEC-1: the URL was seen in a log"},
    ),
    # -- key providers (issue 13): the status, which changes nothing --
    ("GET", "/v1/sys/kms"): lambda w: Call("GET", "/v1/sys/kms"),
}


def _person(w: World) -> str:
    name = w.fresh("p")
    w.admin("POST", "/v1/auth/userpass/users/" + name, {"password": PASSWORD})
    return name


def _secret_id_body(w: World, what: str) -> dict[str, str]:
    """A fresh secret id of the robot, named as the route takes it (value or accessor)."""
    minted = w.admin("POST", f"{VA_ROLE}/robot/secret-id", {})["data"]
    if what == "secret-id":
        return {"secret_id": minted["secret_id"]}
    return {"secret_id_accessor": minted["secret_id_accessor"]}


def _policy(w: World) -> str:
    name = w.fresh("d")
    w.admin("PUT", f"/v1/policies/{name}", POLICY_BODY)
    return name


def _two_versions(w: World) -> str:
    name = w.secret(w.fresh("REV_"))
    return w.secret(name)


def _role_name(w: World) -> str:
    w.role()  # the admin URL secret the new role is defined over
    return f"{PROJECT}/{ENV}/{w.fresh('role')}"


def _defined_role(w: World) -> str:
    path = _role_name(w)
    w.admin("PUT", f"/v1/database/roles/{path}", ROLE_BODY)
    return path


def _leased_role(w: World) -> str:
    w.lease()
    return w.role()


def _kv_for(w: World, verb: str) -> str:
    path = w.kv(w.fresh(verb))
    if verb == "undelete":
        w.admin("DELETE", f"/v1/secret/data/{path}")
    return path


# -- the suite -----------------------------------------------------------------------------------
def served_endpoints(app: Starlette) -> set[tuple[str, str]]:
    """(method, template) of every route the app serves (HEAD is GET without a body)."""
    return {
        (method, route.path)
        for route in app.routes
        if isinstance(route, Route)
        for method in (route.methods or ()) - {"HEAD"}
    }


def test_every_route_has_a_documented_row_and_a_recipe(world: World) -> None:
    served = served_endpoints(world.app)
    documented_keys = {e.key for e in ENDPOINTS}
    assert served - documented_keys == set(), "routes without a row in docs/server.md"
    assert documented_keys - served == set(), "rows in docs/server.md for no route"
    assert set(RECIPES) == served, "routes this suite does not know how to call"
    assert set(CLASSES) == {e.cls for e in ENDPOINTS}, "a class no endpoint belongs to"


def _cells() -> Iterator[Any]:
    for endpoint in ENDPOINTS:
        for who in CALLERS:
            marks = []
            reason = known_defect(endpoint, who)
            if reason is not None:
                marks.append(pytest.mark.xfail(strict=True, reason=reason))
            yield pytest.param(
                endpoint, who, marks=marks, id=f"{endpoint.method} {endpoint.path} | {who}"
            )


@pytest.mark.parametrize(("endpoint", "who"), list(_cells()))
def test_cell(world: World, endpoint: Endpoint, who: str) -> None:
    want = expected(endpoint, who)
    token = credential(world, who)
    call = RECIPES[endpoint.key](world)
    status, body = world.call(
        call.method, call.path, call.body, token=token, content_type=call.content_type
    )
    if endpoint.path == "/v1/sys/seal":
        # The world's vault opens unattended (a key file): reopen it for the next cells.
        world.app.state.sealbox.vault.unseal.open_unattended()
    if known_defect(endpoint, who):
        record("access", "known-defect cells")
    assert status == want, f"{endpoint.method} {call.path} as {who}: {status} {body}"
    record("access", "cells")


def test_filtered_listings_show_only_what_the_caller_may_see(world: World) -> None:
    """The "filtered listing" rows answer 200 to every live token: with only its projects."""
    seen = {}
    for who in ("other project", "read-only"):
        token = credential(world, who)
        _, projects = world.call("GET", "/v1/projects", token=token)
        _, kv = world.call("LIST", "/v1/secret/metadata", token=token)
        seen[who] = (projects["projects"], kv["data"]["keys"])
    assert seen["other project"] == (["other"], ["other/"])
    assert seen["read-only"] == ([PROJECT], [f"{PROJECT}/"])
    record("access", "listing checks", 2)


def test_a_refusal_does_not_say_whether_the_secret_exists(world: World) -> None:
    token = credential(world, "other project")
    answers = []
    for name in (SECRET, "NO_SUCH_SECRET"):
        status, body = world.call("GET", f"{ONE}/{name}", token=token)
        answers.append((status, body["error"]["code"], body["error"]["message"].replace(name, "N")))
    assert answers[0] == answers[1]
    assert answers[0][0] == 403


def test_a_lease_holder_renews_and_revokes_its_own_lease(world: World) -> None:
    """The "lease holder" rows' other half: with ``read`` on the role, one's own lease may
    be renewed and revoked (the cells call on another identity's lease: 403)."""
    token = credential(world, "read-only")
    status, issued = world.call("GET", f"/v1/database/creds/{world.role()}", token=token)
    assert status == 200, issued
    lease = {"lease_id": issued["lease_id"]}
    assert world.call("PUT", "/v1/sys/leases/renew", lease, token=token)[0] == 200
    assert world.call("PUT", "/v1/sys/leases/revoke", lease, token=token)[0] == 204
    # revoke-force forgets a lease whatever its database says: admin on the role only.
    issued = world.call("GET", f"/v1/database/creds/{world.role()}", token=token)[1]
    forced = {"lease_id": issued["lease_id"], "force": True}
    assert world.call("PUT", "/v1/sys/leases/revoke", forced, token=token)[0] == 403
    record("access", "lease holder checks")


def test_a_refused_lease_probe_does_not_say_whether_the_lease_exists(world: World) -> None:
    token = credential(world, "other project")
    real = world.lease()
    missing = real[: -len(real.rsplit("/", 1)[1])] + "doesnotexist0000"
    answers = [
        world.call("PUT", "/v1/sys/leases/lookup", {"lease_id": lease_id}, token=token)[0]
        for lease_id in (real, missing)
    ]
    assert answers == [403, 403]
    record("access", "probe checks")


def test_a_refused_rotation_probe_does_not_say_whether_the_rotation_exists(
    world: World,
) -> None:
    """A rotation id (which a client may choose: POST …/rotate takes one) answers a refused
    caller 403 whether it exists or not, on every route that takes one; only a caller who
    may list every rotation hears 404 for an unknown id."""
    token = credential(world, "other project")
    for suffix, method in (("", "GET"), ("/resume", "POST"), ("/cancel", "POST")):
        answers = [
            world.call(method, f"/v1/rotation/runs/{rotation_id}{suffix}", token=token)[0]
            for rotation_id in (world.rotation_id, "rot_doesnotexist0000")
        ]
        assert answers == [403, 403], (method, suffix)
    admin = credential(world, "admin")
    assert world.call("GET", "/v1/rotation/runs/rot_doesnotexist0000", token=admin)[0] == 404
