"""Vault's ``sys`` endpoints that tools read: ``sys/mounts`` (and a mount's ``tune``),
``sys/auth``, ``sys/capabilities-self`` and the list form of ``sys/internal/ui/mounts``,
so ``bao secrets list``, ``bao auth list`` and hvac's ``sys`` readers work.

Any live token may read them: they describe this server (its KV mounts and login methods
are in the public OpenAPI document too) or the caller's own policies. Answers are Vault's
shapes, with the map at the top level and again under ``data``, as Vault sends them.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sealbox.auth.policy import Capability
from sealbox.auth.principal import Principal
from sealbox.documents import folder_of
from sealbox.errors import InvalidInput
from sealbox.server import vault_shapes
from sealbox.server.http import caller, json_body, json_response, state

#: sealbox's capabilities in Vault's words (``rotate`` has none: Vault cannot rotate).
VAULT_WORDS: dict[Capability, tuple[str, ...]] = {
    Capability.WRITE: ("create", "update", "patch"),
    Capability.READ: ("read",),
    Capability.DELETE: ("delete",),
    Capability.LIST: ("list",),
    Capability.ADMIN: ("sudo",),
}
KV_KINDS = frozenset({"data", "metadata", "delete", "undelete", "destroy"})
MAX_PATHS = 100


def _answer(data: dict[str, Any]) -> Response:
    return json_response({**data, **vault_shapes.envelope(data)})


def _secret_mounts(request: Request) -> dict[str, dict[str, Any]]:
    mounts = {
        f"{m}/": vault_shapes.kv_mount(m)
        for m in vault_shapes.kv_mount_names(state(request).settings.kv_mounts)
    }
    mounts["sys/"] = vault_shapes.builtin_mount("system", "system endpoints")
    return mounts


def _auth_mounts(request: Request) -> dict[str, dict[str, Any]]:
    mounts = {"token/": vault_shapes.builtin_mount("token", "token based credentials")}
    for name in state(request).login_methods:
        mounts[f"{name}/"] = vault_shapes.builtin_mount(name, f"sealbox's {name} login")
    return mounts


async def mounts(request: Request) -> Response:
    """``sys/mounts``: the KV mounts this server serves, and ``sys/``."""
    caller(request)
    return _answer(_secret_mounts(request))


async def mount_tune(request: Request) -> Response:
    """``sys/mounts/<mount>/tune``: a served mount's configuration."""
    caller(request)
    mount = request.path_params["mount"]
    entry = _secret_mounts(request).get(f"{mount}/")
    configured = state(request).settings.kv_mounts
    if entry is None and "*" in configured and mount not in ("auth", "sys"):
        entry = vault_shapes.kv_mount(mount)  # "*" serves any non-reserved name
    if entry is None:
        raise InvalidInput(f"cannot fetch sysview for path {mount[:64]!r}/")
    return _answer(vault_shapes.tune(entry))


async def auth_methods(request: Request) -> Response:
    """``sys/auth``: the login methods installed, and ``token/``."""
    caller(request)
    return _answer(_auth_mounts(request))


async def ui_mounts_list(request: Request) -> Response:
    """``sys/internal/ui/mounts`` without a path: every mount, by kind."""
    caller(request)
    return json_response(
        vault_shapes.envelope({"secret": _secret_mounts(request), "auth": _auth_mounts(request)})
    )


def policy_path(vault_path: str, kv: frozenset[str] | None) -> str:
    """The sealbox policy path a Vault path is checked on: a KV path
    ``<mount>/<kind>/<project>[/<folder>…]`` on the folder's secrets, ``project/env/*``
    (the mount alone: ``*/*/*``); anything else as it is (``sys/tokens``…)."""
    parts = vault_path.strip("/").split("/", 2)
    is_kv = len(parts) >= 2 and parts[1] in KV_KINDS and parts[0] not in ("sys", "auth")
    if not is_kv or (kv is not None and parts[0] not in kv):
        return vault_path.strip("/")
    rest = parts[2].strip("/") if len(parts) > 2 else ""
    if not rest:
        return "*/*/*"
    # The document at a KV path is a folder's secrets (documents.py): its path's secrets.
    project, env = folder_of(rest)
    return f"{project}/{env}/*"


def capabilities(principal: Principal, path: str, kv: frozenset[str] | None) -> list[str]:
    """Vault's capability words the caller holds on a Vault path (``root`` for a holder
    of the root policy, ``deny`` for none), from sealbox's policy engine."""
    if any(p.name == "root" for p in principal.policies):
        return ["root"]
    try:
        target = policy_path(path, kv)
    except InvalidInput:
        return ["deny"]
    words = sorted({w for cap, ws in VAULT_WORDS.items() if principal.can(target, cap) for w in ws})
    return words or ["deny"]


async def capabilities_self(request: Request) -> Response:
    """``sys/capabilities-self`` (``paths`` or ``path``): each path's capabilities (and,
    asked for one path, under ``capabilities`` too), as Vault answers."""
    who = caller(request)
    data = await json_body(request, optional=("path", "paths"))
    paths = data.get("paths", data.get("path"))
    if isinstance(paths, str):
        paths = [paths]
    if (
        not isinstance(paths, list)
        or not paths
        or len(paths) > MAX_PATHS
        or not all(isinstance(p, str) and 0 < len(p) <= 1024 for p in paths)
    ):
        raise InvalidInput(f"give 'paths': a list of 1 to {MAX_PATHS} paths")
    configured = state(request).settings.kv_mounts
    kv = None if "*" in configured else frozenset(configured)
    answer: dict[str, Any] = {p: capabilities(who.principal, p, kv) for p in paths}
    if len(paths) == 1:
        answer["capabilities"] = answer[paths[0]]  # as Vault: for one path only
    return _answer(answer)


ROUTES = [
    Route("/v1/sys/mounts", mounts, methods=["GET"]),
    Route("/v1/sys/mounts/{mount}/tune", mount_tune, methods=["GET"]),
    Route("/v1/sys/auth", auth_methods, methods=["GET"]),
    Route("/v1/sys/capabilities-self", capabilities_self, methods=["POST", "PUT"]),
    Route("/v1/sys/internal/ui/mounts", ui_mounts_list, methods=["GET"]),
]
