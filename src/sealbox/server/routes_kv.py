"""Vault KV v2 compatible routes, so unmodified ``hvac`` and ``bao kv`` work against sealbox.

``/v1/<mount>/data|metadata|delete|undelete|destroy/<project>/<env>/<rest…>``: every
mount maps to the same sealbox projects (the mount name is not part of the address).
A KV entry's field map is ONE sealbox secret named :func:`kv_names.encode` ``(rest)``
whose value is the JSON of the map (tag ``kv2`` in its metadata). See docs/server.md.

Differences from Vault, by design of sealbox's model: soft delete and undelete apply to
a secret as a whole (its current version); ``destroy`` must name every version (it
purges the secret), as ``metadata`` DELETE does. Answers and errors are Vault-shaped.
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sealbox.auth.policy import Capability
from sealbox.errors import (
    AccessDenied,
    AlreadyExists,
    Conflict,
    InvalidInput,
    NotFound,
)
from sealbox.model import META_FIELDS, SecretInfo, SecretRef, SecretValue
from sealbox.server import kv_names
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
from sealbox.server.routes_native import meta_changes

KV_TAG = "kv2"
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
        path.startswith("/v1/sys/internal/")
        or path.startswith(VAULT_AUTH_PREFIXES)
        or path in VAULT_SYS_PATHS
        or first not in RESERVED_MOUNTS
    )


#: Vault's login methods' paths (routes_vault_auth.py, and their logins), in Vault's shapes.
VAULT_AUTH_PREFIXES = ("/v1/auth/approle/", "/v1/auth/userpass/")
#: Vault's own sys routes sealbox serves in Vault's shapes (errors as ``{"errors": […]}``).
VAULT_SYS_PATHS = frozenset(
    {"/v1/sys/seal-status", "/v1/sys/unseal", "/v1/sys/seal", "/v1/sys/leader"}
)


def vault_time(value: datetime | None) -> str:
    """RFC 3339 in UTC with a ``Z``, as Vault writes times; ``""`` for none."""
    if value is None:
        return ""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def envelope(data: Any) -> dict[str, Any]:
    return {
        "request_id": os.urandom(16).hex(),
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": data,
        "wrap_info": None,
        "warnings": None,
        "auth": None,
        "mount_type": "kv",
    }


def check_mount(mounts: tuple[str, ...], mount: str) -> str:
    if not mount or mount in RESERVED_MOUNTS or ("*" not in mounts and mount not in mounts):
        raise NotFound(f"no KV mount {mount[:64]!r} on this server")
    return mount


def _mount(request: Request) -> str:
    return check_mount(state(request).settings.kv_mounts, request.path_params["mount"])


def kv_ref(path: str) -> SecretRef:
    parts = path.split("/", 2)
    if len(parts) < 3 or not parts[2]:
        raise InvalidInput(
            f"sealbox maps KV paths to <project>/<env>/<name…>; {path[:120]!r} names no secret"
        )
    return SecretRef(parts[0], parts[1], kv_names.encode(parts[2]))


def _secret_ref(request: Request) -> SecretRef:
    _mount(request)
    return kv_ref(request.path_params["path"])


def _fields(value: SecretValue) -> Any:
    """The field map a secret holds; a plain (non-JSON-object) value shows as ``value``."""
    text = value.reveal()
    if text.startswith("{"):
        with contextlib.suppress(ValueError):
            data = json.loads(text)
            if isinstance(data, dict):
                return data
    return {"value": text}


def _version_meta(created: datetime | None, version: int, deleted: datetime | None) -> Any:
    return {
        "created_time": vault_time(created),
        "custom_metadata": None,
        "deletion_time": vault_time(deleted),
        "destroyed": False,
        "version": version,
    }


# -- data ----------------------------------------------------------------------------------------
async def read_data(request: Request) -> Response:
    """KV v2 read (also served by :mod:`sealbox.server.fastpath.hotpath`, through
    :func:`read_kv`)."""
    who = caller(request)
    ref = _secret_ref(request)
    status, body = read_kv(who, ref, query_int(request, "version"))
    return Response(body, status_code=status, media_type="application/json")


def read_kv(who: Caller, ref: SecretRef, version: int | None) -> tuple[int, bytes]:
    """Status and JSON body of a KV v2 read (``version`` 0 or None = current)."""
    try:
        secret = who.vault.get(ref, version=version or None)
    except NotFound as exc:
        return 404, _json(_deleted_or_raise(who, ref, exc))
    return 200, read_body(_fields(secret.value), secret.created_at, secret.version)


def _json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


_READ_HEAD = '{"request_id":"'
_READ_DATA = '","lease_id":"","renewable":false,"lease_duration":0,"data":{"data":'
_READ_META = ',"metadata":{"created_time":'
_READ_VERSION = ',"custom_metadata":null,"deletion_time":"","destroyed":false,"version":'
_READ_TAIL = '}},"wrap_info":null,"warnings":null,"auth":null,"mount_type":"kv"}'


def read_body(fields: Any, created: datetime, version: int) -> bytes:
    """``envelope({"data": fields, "metadata": _version_meta(created, version, None)})`` as
    JSON, byte for byte, with only the parts that vary encoded (the hottest KV response:
    a third of the cost of encoding the whole dict)."""
    return (
        _READ_HEAD
        + os.urandom(16).hex()
        + _READ_DATA
        + json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
        + _READ_META
        + json.dumps(vault_time(created), ensure_ascii=False)
        + _READ_VERSION
        + str(int(version))
        + _READ_TAIL
    ).encode()


def _deleted_or_raise(who: Caller, ref: SecretRef, exc: NotFound) -> dict[str, Any]:
    """Vault answers a soft-deleted version with 404 and its metadata (hvac reads it)."""
    try:
        info = who.vault.info(ref)
    except (NotFound, AccessDenied):
        raise exc from None
    if info.deleted_at is None:
        raise exc
    created = {v.version: v.created_at for v in who.vault.history(ref)}
    return envelope(
        {
            "data": None,
            "metadata": _version_meta(
                created.get(info.current_version), info.current_version, info.deleted_at
            ),
        }
    )


def _ensure_scope(who: Caller, ref: SecretRef) -> bool:
    """Create a missing project/env if (and only if) the caller has admin on it."""
    principal = who.principal
    if not principal.can(f"{ref.project}/{ref.env}/*", Capability.ADMIN):
        return False
    try:
        who.vault.create_env(ref.project, ref.env)
    except AlreadyExists:
        return True
    except NotFound:
        if not principal.can(f"{ref.project}/*/*", Capability.ADMIN):
            return False
        with contextlib.suppress(AlreadyExists):
            who.vault.create_project(ref.project, environments=(ref.env,))
    return True


async def _data_request(request: Request) -> tuple[Caller, SecretRef, dict[str, Any], int | None]:
    """The caller, the secret, ``data`` (a field map) and ``options.cas`` of a KV write."""
    who = caller(request)
    ref = _secret_ref(request)
    body = await json_body(request, required=("data",), optional=("options",))
    data = body["data"]
    if not isinstance(data, dict):
        raise InvalidInput("field 'data' must be a JSON object of fields")
    return who, ref, data, _cas(body)


async def write_data(request: Request) -> Response:
    who, ref, data, cas = await _data_request(request)
    value = SecretValue(json.dumps(data, separators=(",", ":"), ensure_ascii=False))
    try:
        version = who.vault.set(ref, value, if_version=cas)
    except NotFound as exc:
        if not _ensure_scope(who, ref):
            raise NotFound(
                f"{exc.message} (sealbox creates it on a KV write only for a token with "
                f"admin on {ref.project}/{ref.env})"
            ) from None
        version = who.vault.set(ref, value, if_version=cas)
    if version == 1:
        meta = who.vault.info(ref).meta
        if KV_TAG not in meta.tags:
            who.vault.update_meta(ref, tags=(*meta.tags, KV_TAG))
    return json_response(envelope(_version_meta(datetime.now(UTC), version, None)))


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge key by key, ``null`` removes a key, any
    other value replaces."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def _require_merge_patch(request: Request) -> None:
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind != MERGE_PATCH:
        raise UnsupportedMediaType(f"PATCH takes a JSON merge patch (Content-Type: {MERGE_PATCH})")


async def patch_data(request: Request) -> Response:
    """``bao kv patch``: merge fields into the current version, as a new version.

    It reads the current fields (a ``read`` event) and writes the merged map (a ``write``
    event), so it needs read and write on the secret. Without ``options.cas`` the write
    still only lands on the version it read: a concurrent write makes it a 409 to retry.
    """
    _require_merge_patch(request)
    who, ref, patch, cas = await _data_request(request)
    current = who.vault.get(ref)
    if cas is not None and cas != current.version:
        raise Conflict(
            f"check-and-set parameter did not match the current version ({current.version})"
        )
    merged = merge_patch(_fields(current.value), patch)
    value = SecretValue(json.dumps(merged, separators=(",", ":"), ensure_ascii=False))
    version = who.vault.set(ref, value, if_version=current.version)
    return json_response(envelope(_version_meta(datetime.now(UTC), version, None)))


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
    who.vault.delete(_secret_ref(request))
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
    ref = _secret_ref(request)
    versions = await _versions(request)
    info = who.vault.info(ref)
    if info.current_version not in versions:
        raise InvalidInput(
            f"sealbox soft-deletes a secret as a whole: include its current version "
            f"{info.current_version} in 'versions'"
        )
    who.vault.delete(ref)
    return no_content()


async def undelete_versions(request: Request) -> Response:
    who = caller(request)
    ref = _secret_ref(request)
    await _versions(request)
    # Undeleting a live secret is a no-op in Vault too.
    with contextlib.suppress(Conflict):
        who.vault.undelete(ref)
    return no_content()


async def destroy_versions(request: Request) -> Response:
    who = caller(request)
    ref = _secret_ref(request)
    versions = set(await _versions(request))
    existing = {v.version for v in who.vault.history(ref)}
    if not existing <= versions:
        raise InvalidInput(
            "sealbox destroys a secret's versions all at once: list every version "
            f"(1..{max(existing, default=0)}) or delete the metadata"
        )
    who.vault.purge(ref)
    return no_content()


# -- metadata ------------------------------------------------------------------------------------
def _custom_metadata(info: SecretInfo) -> dict[str, str] | None:
    """sealbox's inventory fields, as Vault's string map (empty fields left out)."""
    out: dict[str, str] = {}
    for key, value in info.meta.to_dict().items():
        if value in (None, [], ""):
            continue
        out[key] = ",".join(value) if isinstance(value, list) else str(value)
    return out or None


async def metadata(request: Request) -> Response:
    if query_flag(request, "list"):
        return await list_keys(request)
    who = caller(request)
    ref = _secret_ref(request)
    info = who.vault.info(ref)
    history = who.vault.history(ref)
    versions = {
        str(v.version): {
            "created_time": vault_time(v.created_at),
            "deletion_time": vault_time(info.deleted_at)
            if v.version == info.current_version
            else "",
            "destroyed": False,
        }
        for v in history
    }
    return json_response(
        envelope(
            {
                "cas_required": False,
                "created_time": vault_time(info.created_at),
                "current_version": info.current_version,
                "custom_metadata": _custom_metadata(info),
                "delete_version_after": "0s",
                "max_versions": 0,
                "oldest_version": min((v.version for v in history), default=0),
                "updated_time": vault_time(info.updated_at),
                "versions": versions,
            }
        )
    )


#: KV metadata settings sealbox has no use for, and the one value of each it accepts.
_FIXED_SETTINGS: dict[str, tuple[tuple[Any, ...], str]] = {
    "max_versions": ((0,), "sealbox keeps every version"),
    "cas_required": ((False,), "sealbox takes options.cas per write, not per secret"),
    "delete_version_after": (("0s", "", 0), "sealbox versions do not expire"),
}


def _custom_changes(custom: Any, tags: tuple[str, ...]) -> dict[str, Any]:
    """Vault's ``custom_metadata`` string map, as changes to sealbox's inventory fields."""
    if not isinstance(custom, dict):
        raise InvalidInput("field 'custom_metadata' must be a JSON object of strings")
    fields: dict[str, Any] = {}
    for key, value in custom.items():
        if key not in META_FIELDS:
            raise InvalidInput(
                f"custom_metadata key {key[:64]!r} is not a sealbox inventory field "
                f"(one of: {', '.join(sorted(META_FIELDS))})"
            )
        if value is None or value == "":
            fields[key] = None  # cleared
        elif not isinstance(value, str):
            raise InvalidInput(f"custom_metadata value for {key[:64]!r} must be a string")
        elif key in ("tags", "depends_on"):
            fields[key] = [item.strip() for item in value.split(",") if item.strip()]
        elif key == "rotate_every_days":
            if not value.strip().isdigit():
                raise InvalidInput("custom_metadata 'rotate_every_days' must be a number of days")
            fields[key] = int(value)
        else:
            fields[key] = value
    changes = meta_changes(fields)
    if KV_TAG in tags and "tags" in changes and KV_TAG not in changes["tags"]:
        changes["tags"] = (*changes["tags"], KV_TAG)  # it marks the secret as a KV entry
    return changes


async def write_metadata(request: Request) -> Response:
    """``bao kv metadata put|patch``: ``custom_metadata`` keys set sealbox's inventory
    fields (owner, tags…); keys not named keep their values, ``""`` or ``null`` clears one.
    The version settings sealbox does not have are accepted at their neutral values only.
    """
    if request.method == "PATCH":
        _require_merge_patch(request)
    who = caller(request)
    ref = _secret_ref(request)
    body = await json_body(request, optional=("custom_metadata", *_FIXED_SETTINGS))
    for key, (neutral, why) in _FIXED_SETTINGS.items():
        value = body.get(key)
        if value is not None and value not in neutral:
            raise InvalidInput(f"{key} {str(value)[:32]!r} is not supported: {why}")
    custom = body.get("custom_metadata")
    if custom is not None:
        changes = _custom_changes(custom, who.vault.info(ref).meta.tags)
        if changes:
            who.vault.update_meta(ref, **changes)
    else:
        who.vault.info(ref)  # a 404 for a secret that does not exist, as for a write
    return no_content()


async def list_keys(request: Request) -> Response:
    who = caller(request)
    _mount(request)
    path = request.path_params.get("path", "").strip("/")
    parts = path.split("/", 2) if path else []
    if not parts:
        keys = [f"{p}/" for p in who.vault.list_projects()]
    elif len(parts) == 1:
        keys = [f"{e}/" for e in who.vault.list_envs(parts[0])]
    else:
        prefix = parts[2] + "/" if len(parts) == 3 else ""
        found: set[str] = set()
        for info in who.vault.list_secrets(parts[0], parts[1], include_deleted=True):
            rest = kv_names.decode(info.ref.name)
            if not rest.startswith(prefix):
                continue
            head, sep, _ = rest[len(prefix) :].partition("/")
            found.add(head + sep)
        keys = sorted(found)
    if not keys:
        return Response(json.dumps({"errors": []}), status_code=404, media_type="application/json")
    return json_response(envelope({"keys": keys}))


async def delete_metadata(request: Request) -> Response:
    who = caller(request)
    who.vault.purge(_secret_ref(request))
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
    return json_response(
        envelope(
            {
                "path": f"{mount}/",
                "type": "kv",
                "description": "sealbox secrets (KV v2 compatible)",
                "accessor": f"kv_sealbox_{mount[:32]}",
                "config": {"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": False},
                "local": False,
                "seal_wrap": False,
                "external_entropy_access": False,
                "options": {"version": "2"},
                "uuid": "",
            }
        )
    )


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
]
