"""Vault KV v2 compatible routes, so unmodified ``hvac``, ``bao kv``, ``bao agent`` and
External Secrets Operator work against sealbox.

``/v1/<mount>/data|metadata|delete|undelete|destroy/<project>[/<folder>…]``: every mount
maps to the same sealbox projects (the mount name is not part of the address). The
document at a KV path is the folder's secrets (:mod:`sealbox.documents`, the one data
model): these routes only translate Vault's requests and answers; every rule (versions,
check-and-set, settings, custom metadata) is the core's. See docs/server.md.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sealbox.documents import (
    DocumentRead,
    DocVersion,
    folder_of,
)
from sealbox.errors import InvalidInput, NotFound
from sealbox.server import vault_shapes
from sealbox.server.auth import Caller
from sealbox.server.errors import UnsupportedMediaType
from sealbox.server.http import (
    caller,
    json_body,
    json_int,
    json_response,
    no_content,
    opt_int,
    query_flag,
    query_int,
    state,
)
from sealbox.server.routes_auth import VAULT_TOKEN_PATHS

MERGE_PATCH = "application/merge-patch+json"
#: First segments under /v1 that belong to sealbox itself, never to a KV mount.
RESERVED_MOUNTS = frozenset(
    {
        "auth",
        "sys",
        "projects",
        "secrets",
        "resolve",
        "identities",
        "tokens",
        "policies",
        "events",
        "audit",
        "rotation",
        "incident",
        "openapi.json",
    }
)


def is_compat_path(path: str) -> bool:
    """Whether errors on this path take Vault's ``{"errors": […]}`` shape."""
    if not path.startswith("/v1/"):
        return False
    first = path[4:].split("/", 1)[0]
    return (
        path.startswith(("/v1/sys/internal/", "/v1/sys/mounts/"))
        or path.startswith(VAULT_AUTH_PREFIXES)
        or path in VAULT_SYS_PATHS
        or first not in RESERVED_MOUNTS
    )


#: Vault's login methods' paths (routes_vault_auth.py, and their logins), in Vault's shapes.
VAULT_AUTH_PREFIXES = ("/v1/auth/approle/", "/v1/auth/userpass/")
#: Vault's own sys routes sealbox serves in Vault's shapes (errors as ``{"errors": […]}``).
VAULT_SYS_PATHS = frozenset(
    {
        "/v1/sys/seal-status",
        "/v1/sys/unseal",
        "/v1/sys/seal",
        "/v1/sys/leader",
        "/v1/sys/mounts",
        "/v1/sys/auth",
        "/v1/sys/capabilities-self",
        *VAULT_TOKEN_PATHS,
    }
)


def vault_time(value: datetime | None) -> str:
    """RFC 3339 in UTC as Vault writes times (Go's RFC3339Nano: the fraction of a second
    without trailing zeros; sealbox's clock has microseconds); ``""`` for none."""
    if value is None:
        return ""
    utc = value.astimezone(UTC)
    fraction = f".{utc.microsecond:06d}".rstrip("0") if utc.microsecond else ""
    return utc.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def go_duration(seconds: int) -> str:
    """Seconds as Go prints a duration (``0s``, ``90s`` -> ``1m30s``, ``1h0m0s``)."""
    h, rest = divmod(int(seconds), 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h{m}m{s}s"
    return f"{m}m{s}s" if m else f"{s}s"


_GO_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?\Z")


def parse_go_duration(value: Any, field: str) -> int:
    """A duration as Vault takes one: seconds (a number or digits), or ``1h30m``, ``45s``."""
    if isinstance(value, bool):
        raise InvalidInput(f"field {field!r} must be a duration")
    number = json_int(value)
    if number is not None:
        seconds = number
    elif isinstance(value, str) and value.strip().isdigit():
        seconds = int(value.strip())
    elif isinstance(value, str):
        m = _GO_DURATION.match(value.strip())
        if m is None or not value.strip():
            raise InvalidInput(f"field {field!r} must be a duration such as 30m, 1h or 3600")
        h, mi, s = (int(g) if g else 0 for g in m.groups())
        seconds = h * 3600 + mi * 60 + s
    else:
        raise InvalidInput(f"field {field!r} must be a duration")
    if seconds < 0 or seconds > 100 * 365 * 86400:
        raise InvalidInput(f"field {field!r} is out of range")
    return seconds


def envelope(data: Any, warnings: list[str] | None = None) -> dict[str, Any]:
    """Vault's answer (OpenBao sends no ``mount_type``; hvac and bao read none)."""
    return vault_shapes.envelope(data, warnings=warnings)


def check_mount(mounts: tuple[str, ...], mount: str) -> str:
    if not mount or mount in RESERVED_MOUNTS or ("*" not in mounts and mount not in mounts):
        raise NotFound(f"no KV mount {mount[:64]!r} on this server")
    return mount


def _mount(request: Request) -> str:
    return check_mount(state(request).settings.kv_mounts, request.path_params["mount"])


def _folder(request: Request) -> tuple[str, str]:
    _mount(request)
    return folder_of(request.path_params["path"])


def _version_meta(state: DocVersion, custom: dict[str, str] | None) -> dict[str, Any]:
    return {
        "created_time": vault_time(state.created_at),
        "custom_metadata": custom or None,
        "deletion_time": vault_time(state.deletion_time),
        "destroyed": state.destroyed,
        "version": state.version,
    }


def _json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


# -- data ----------------------------------------------------------------------------------------
async def read_data(request: Request) -> Response:
    """KV v2 read (also served by :mod:`sealbox.server.fastpath.hotpath`, through
    :func:`read_kv`)."""
    who = caller(request)
    _mount(request)
    status, body = read_kv(who, request.path_params["path"], query_int(request, "version"))
    return Response(body, status_code=status, media_type="application/json")


def read_kv(who: Caller, path: str, version: int | None) -> tuple[int, bytes]:
    """Status and JSON body of a KV v2 read (``version`` 0 or None = current). A deleted
    or destroyed version is a 404 that still carries its metadata, as in Vault."""
    project, env = folder_of(path)
    read = who.vault.documents.read(project, env, version or None)
    if read.data is None:
        return 404, _json(envelope({"data": None, "metadata": _version_meta(read.version, None)}))
    return 200, read_body(read)


_READ_HEAD = '{"request_id":"'
_READ_DATA = '","lease_id":"","renewable":false,"lease_duration":0,"data":{"data":'
_READ_META = ',"metadata":'
_READ_TAIL = '},"wrap_info":null,"warnings":'
_READ_END = ',"auth":null}'


def read_body(read: DocumentRead) -> bytes:
    """``envelope({"data": …, "metadata": …})`` as JSON, with only the parts that vary
    encoded (the hottest KV response: a third of the cost of encoding the whole dict)."""
    return (
        _READ_HEAD
        + os.urandom(16).hex()
        + _READ_DATA
        + json.dumps(read.data, separators=(",", ":"), ensure_ascii=False)
        + _READ_META
        + json.dumps(
            _version_meta(read.version, read.custom_metadata),
            separators=(",", ":"),
            ensure_ascii=False,
        )
        + _READ_TAIL
        + (json.dumps(list(read.warnings)) if read.warnings else "null")
        + _READ_END
    ).encode()


async def _data_request(request: Request) -> tuple[Caller, str, str, Any, int | None]:
    """The caller, the folder, ``data`` and ``options.cas`` of a KV write."""
    who = caller(request)
    project, env = _folder(request)
    # A document's values: the body may be larger than body_limit, as for a native write.
    body = await json_body(request, required=("data",), optional=("options",), carries_value=True)
    data = body["data"]
    if not isinstance(data, dict):
        raise InvalidInput("field 'data' must be a JSON object of fields")
    return who, project, env, data, _cas(body)


async def write_data(request: Request) -> Response:
    who, project, env, data, cas = await _data_request(request)
    state_ = who.vault.documents.write(project, env, data, cas=cas)
    custom = who.vault.documents.metadata(project, env).custom_metadata
    return json_response(envelope(_version_meta(state_, custom)))


def _require_merge_patch(request: Request) -> None:
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != MERGE_PATCH:
        raise UnsupportedMediaType(f"PATCH takes a JSON merge patch (Content-Type: {MERGE_PATCH})")


async def patch_data(request: Request) -> Response:
    """``bao kv patch``: merge fields into the current version, as a new version (it
    reads the current fields, so it needs read and write)."""
    _require_merge_patch(request)
    who, project, env, patch, cas = await _data_request(request)
    state_ = who.vault.documents.patch(project, env, patch, cas=cas)
    custom = who.vault.documents.metadata(project, env).custom_metadata
    return json_response(envelope(_version_meta(state_, custom)))


def _cas(body: dict[str, Any]) -> int | None:
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise InvalidInput("field 'options' must be a JSON object")
    unknown = sorted(set(options) - {"cas"})
    if unknown:
        raise InvalidInput(f"unknown option(s): {', '.join(k[:64] for k in unknown)}")
    return opt_int(options, "cas")


async def delete_latest(request: Request) -> Response:
    who = caller(request)
    project, env = _folder(request)
    who.vault.documents.delete_versions(project, env)
    return no_content()


# -- delete / undelete / destroy -----------------------------------------------------------------
async def _versions(request: Request) -> list[int]:
    body = await json_body(request, required=("versions",))
    raw = body["versions"]
    versions: list[int] = []
    # Vault takes numbers or numeric strings (the bao CLI sends strings).
    for item in raw if isinstance(raw, list) else [None]:
        v = int(item) if isinstance(item, str) and item.isdigit() else json_int(item)
        if v is None or v < 1:
            raise InvalidInput("field 'versions' must be a non-empty list of version numbers")
        versions.append(v)
    if not versions:
        raise InvalidInput("field 'versions' must be a non-empty list of version numbers")
    return versions


async def delete_versions(request: Request) -> Response:
    who = caller(request)
    project, env = _folder(request)
    who.vault.documents.delete_versions(project, env, await _versions(request))
    return no_content()


async def undelete_versions(request: Request) -> Response:
    who = caller(request)
    project, env = _folder(request)
    who.vault.documents.undelete_versions(project, env, await _versions(request))
    return no_content()


async def destroy_versions(request: Request) -> Response:
    who = caller(request)
    project, env = _folder(request)
    who.vault.documents.destroy_versions(project, env, await _versions(request))
    return no_content()


# -- metadata ------------------------------------------------------------------------------------
async def metadata(request: Request) -> Response:
    if query_flag(request, "list"):
        return await list_keys(request)
    who = caller(request)
    project, env = _folder(request)
    meta = who.vault.documents.metadata(project, env)
    return json_response(
        envelope(
            {
                "cas_required": meta.settings.cas_required,
                "created_time": vault_time(meta.created_at),
                "current_version": meta.current_version,
                "current_metadata_version": meta.settings.metadata_version,
                "custom_metadata": meta.custom_metadata or None,
                "delete_version_after": go_duration(meta.settings.delete_version_after),
                "max_versions": meta.settings.max_versions,
                "metadata_cas_required": False,
                "oldest_version": meta.oldest_version,
                "updated_time": vault_time(meta.updated_at),
                "versions": {
                    str(v.version): {
                        "created_time": vault_time(v.created_at),
                        "deletion_time": vault_time(v.deletion_time),
                        "destroyed": v.destroyed,
                    }
                    for v in meta.versions
                },
            }
        )
    )


_SETTINGS = ("max_versions", "cas_required", "delete_version_after", "metadata_cas_required")


def _settings(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if body.get("metadata_cas_required") not in (None, False, "false"):
        # Check-and-set on metadata writes (OpenBao's): sealbox has it on data only.
        raise InvalidInput("metadata_cas_required is not supported: sealbox has no metadata CAS")
    if body.get("max_versions") is not None:
        raw = body["max_versions"]
        # The bao CLI sends numbers as strings (bao write secret/config max_versions=3).
        number = int(raw) if isinstance(raw, str) and raw.isdigit() else json_int(raw)
        if number is None or number < 0:
            raise InvalidInput("field 'max_versions' must be a number of versions (0: all)")
        out["max_versions"] = number
    if body.get("cas_required") is not None:
        flag = body["cas_required"]
        if isinstance(flag, str) and flag.lower() in ("true", "false"):
            flag = flag.lower() == "true"
        if not isinstance(flag, bool):
            raise InvalidInput("field 'cas_required' must be true or false")
        out["cas_required"] = flag
    if body.get("delete_version_after") is not None:
        out["delete_version_after"] = parse_go_duration(
            body["delete_version_after"], "delete_version_after"
        )
    return out


async def write_metadata(request: Request) -> Response:
    """``bao kv metadata put|patch``: settings and ``custom_metadata`` (any string keys:
    sealbox's inventory fields keep their meaning, others are labels). The document need
    not hold data yet (External Secrets Operator writes its metadata first)."""
    merge = request.method == "PATCH"
    if merge:
        _require_merge_patch(request)
    who = caller(request)
    project, env = _folder(request)
    body = await json_body(request, optional=("custom_metadata", *_SETTINGS))
    custom = body.get("custom_metadata")
    strings = isinstance(custom, dict) and all(
        isinstance(v, str) or (merge and v is None) for v in custom.values()
    )
    if custom is not None and not strings:
        raise InvalidInput("field 'custom_metadata' must be a JSON object of strings")
    who.vault.documents.write_metadata(
        project, env, custom_metadata=custom, merge=merge, **_settings(body)
    )
    return no_content()


async def list_keys(request: Request) -> Response:
    who = caller(request)
    _mount(request)
    keys = who.vault.documents.list_keys(request.path_params.get("path", ""))
    if not keys:
        return Response(json.dumps({"errors": []}), status_code=404, media_type="application/json")
    return json_response(envelope({"keys": keys}))


async def delete_metadata(request: Request) -> Response:
    who = caller(request)
    project, env = _folder(request)
    who.vault.documents.delete_document(project, env)
    return no_content()


# -- the mount's configuration -------------------------------------------------------------------
async def read_config(request: Request) -> Response:
    who = caller(request)
    _mount(request)
    config = who.vault.documents.config()
    return json_response(
        envelope(
            {
                "cas_required": config.cas_required,
                "delete_version_after": go_duration(config.delete_version_after),
                "max_versions": config.max_versions,
                "metadata_cas_required": False,
            }
        )
    )


async def write_config(request: Request) -> Response:
    """``bao kv`` mount settings (every mount: they all map to the same projects)."""
    who = caller(request)
    _mount(request)
    body = await json_body(request, optional=_SETTINGS)
    docs = who.vault.documents
    docs.set_config(docs.config()._replace(**_settings(body)))
    return no_content()


# -- mounts (every `bao kv` command asks first) --------------------------------------------------
async def ui_mounts(request: Request) -> Response:
    caller(request)
    mount = request.path_params["path"].strip("/").split("/", 1)[0]
    settings = state(request).settings
    if (
        not mount
        or mount in RESERVED_MOUNTS
        or ("*" not in settings.kv_mounts and mount not in settings.kv_mounts)
    ):
        raise NotFound(f"no KV mount {mount[:64]!r} on this server")
    return json_response(envelope({"path": f"{mount}/", **vault_shapes.kv_mount(mount)}))


DATA = "/v1/{mount}/data/{path:path}"
META = "/v1/{mount}/metadata/{path:path}"

ROUTES = [
    Route("/v1/sys/internal/ui/mounts/{path:path}", ui_mounts, methods=["GET"]),
    Route(DATA, read_data, methods=["GET"]),
    Route(DATA, write_data, methods=["POST", "PUT"]),
    Route(DATA, patch_data, methods=["PATCH"]),
    Route(DATA, delete_latest, methods=["DELETE"]),
    Route(META, metadata, methods=["GET"]),
    Route(META, write_metadata, methods=["POST", "PUT", "PATCH"]),
    Route(META, list_keys, methods=["LIST"]),
    Route(META, delete_metadata, methods=["DELETE"]),
    Route("/v1/{mount}/metadata", list_keys, methods=["LIST", "GET"]),
    Route("/v1/{mount}/delete/{path:path}", delete_versions, methods=["POST", "PUT"]),
    Route("/v1/{mount}/undelete/{path:path}", undelete_versions, methods=["POST", "PUT"]),
    Route("/v1/{mount}/destroy/{path:path}", destroy_versions, methods=["POST", "PUT"]),
    Route("/v1/{mount}/config", read_config, methods=["GET"]),
    Route("/v1/{mount}/config", write_config, methods=["POST", "PUT"]),
]
