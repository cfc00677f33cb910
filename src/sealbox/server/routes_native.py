"""``/v1/projects``, ``/v1/secrets`` and ``/v1/resolve``: the native secrets API.

Every handler resolves the caller (401 otherwise) and calls the caller's
:class:`~sealbox.vault.Vault` view, which authorises and audits. Values leave a
:class:`~sealbox.model.SecretValue` only when the response body is written, by the codecs
of :mod:`sealbox.wire.secrets` (the SDK reads the answers with the same module).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sealbox.errors import InvalidInput
from sealbox.model import (
    DEFAULT_ENVIRONMENTS,
    META_FIELDS,
    VALUE_BASE64,
    SecretMeta,
    SecretRef,
    value_from_json,
)
from sealbox.server.auth import Caller
from sealbox.server.http import (
    caller,
    json_body,
    json_response,
    no_content,
    opt_int,
    opt_str_list,
    query_flag,
    query_int,
    want_str,
)
from sealbox.wire import secrets as wire

PURPOSES = ("run", "export", "reveal")


def _ref(request: Request) -> SecretRef:
    p = request.path_params
    return SecretRef(p["project"], p["env"], p["name"])


# -- projects and environments -------------------------------------------------------------------
async def list_projects(request: Request) -> Response:
    return json_response(wire.encode_projects(caller(request).vault.list_projects()))


async def create_project(request: Request) -> Response:
    who = caller(request)
    body = await json_body(request, required=("name",), optional=("environments",))
    envs = opt_str_list(body, "environments")
    who.vault.create_project(
        want_str(body, "name"),
        environments=tuple(envs) if envs is not None else DEFAULT_ENVIRONMENTS,
    )
    return json_response({"name": body["name"]}, status=201)


async def list_envs(request: Request) -> Response:
    envs = caller(request).vault.list_envs(request.path_params["project"])
    return json_response(wire.encode_envs(envs))


async def create_env(request: Request) -> Response:
    who = caller(request)
    body = await json_body(request, required=("name",))
    project, name = request.path_params["project"], want_str(body, "name")
    who.vault.create_env(project, name)
    return json_response({"project": project, "name": name}, status=201)


# -- secrets -------------------------------------------------------------------------------------
async def list_secrets(request: Request) -> Response:
    who = caller(request)
    p = request.path_params
    infos = who.vault.list_secrets(
        p["project"], p["env"], include_deleted=query_flag(request, "deleted")
    )
    return json_response(wire.encode_listing(infos))


async def get_secret(request: Request) -> Response:
    """Read a value (also served by :mod:`sealbox.server.fastpath.hotpath`, through
    :func:`read_secret`)."""
    who = caller(request)
    ref = _ref(request)
    version, reveal = query_int(request, "version"), query_flag(request, "reveal")
    return json_response(read_secret(who, ref, version, reveal, request.query_params.get("stage")))


def read_secret(
    who: Caller, ref: SecretRef, version: int | None, reveal: bool, stage: str | None = None
) -> dict[str, Any]:
    """The body of a native read: one authorised, audited read; the value revealed in it
    (``stage``: pending, or previous during its grace window)."""
    if stage:
        return wire.encode_read(who.vault.get(ref, version=version, reveal=reveal, stage=stage))
    return wire.encode_read(who.vault.get(ref, version=version, reveal=reveal))


async def put_secret(request: Request) -> Response:
    who = caller(request)
    ref = _ref(request)
    body = await json_body(
        request, optional=("value", VALUE_BASE64, "if_version"), carries_value=True
    )
    value = value_from_json(body)
    version = who.vault.set(ref, value, if_version=opt_int(body, "if_version"))
    return json_response(wire.encode_version(ref, version))


async def delete_secret(request: Request) -> Response:
    who = caller(request)
    who.vault.delete(_ref(request))
    return no_content()


async def undelete_secret(request: Request) -> Response:
    who = caller(request)
    await json_body(request)
    who.vault.undelete(_ref(request))
    return no_content()


async def purge_secret(request: Request) -> Response:
    who = caller(request)
    await json_body(request)
    return json_response(wire.encode_destroyed(who.vault.purge(_ref(request))))


async def history(request: Request) -> Response:
    versions = caller(request).vault.history(_ref(request))
    return json_response(wire.encode_history(versions))


async def rollback(request: Request) -> Response:
    who = caller(request)
    ref = _ref(request)
    body = await json_body(request, required=("version",), optional=("if_version",))
    target = opt_int(body, "version")
    if target is None:
        raise InvalidInput("field 'version' must be a version number")
    version = who.vault.rollback(ref, target, if_version=opt_int(body, "if_version"))
    return json_response(wire.encode_version(ref, version))


async def get_meta(request: Request) -> Response:
    ref = _ref(request)
    info = caller(request).vault.info(ref)
    return json_response(wire.encode_meta(ref, info.meta))


def meta_changes(body: dict[str, Any]) -> dict[str, Any]:
    """JSON metadata fields (as ``SecretMeta.to_dict`` writes them) to ``update_meta`` values."""
    unknown = sorted(set(body) - META_FIELDS)
    if unknown:
        raise InvalidInput(f"unknown metadata field(s): {', '.join(k[:64] for k in unknown)}")
    changes: dict[str, Any] = {}
    for key, value in body.items():
        if value is None:
            changes[key] = () if key in ("depends_on", "tags") else None
        elif key in ("depends_on", "tags"):
            items = opt_str_list(body, key)
            changes[key] = tuple(items or ())
        elif key == "rotate_every_days":
            days = opt_int(body, key)
            if days is not None and days < 1:
                raise InvalidInput("field 'rotate_every_days' must be at least 1")
            changes[key] = days
        elif key == "expires":
            changes[key] = _parse_date(want_str(body, key))
        else:
            changes[key] = want_str(body, key)
    return changes


def _parse_date(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"invalid date {text[:40]!r} for 'expires': use YYYY-MM-DD or ISO 8601"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def patch_meta(request: Request) -> Response:
    who = caller(request)
    ref = _ref(request)
    body = await json_body(request, any_fields=True)
    meta: SecretMeta = who.vault.update_meta(ref, **meta_changes(body))
    return json_response(wire.encode_meta(ref, meta))


# -- resolve (``sealbox run`` in remote mode) ----------------------------------------------------
async def resolve(request: Request) -> Response:
    who = caller(request)
    p = request.path_params
    only_raw = request.query_params.get("only")
    only = None
    if only_raw is not None:
        only = [n.strip() for n in only_raw.split(",") if n.strip()]
        if not only:
            raise InvalidInput("'only' names no secret; leave it out to get every secret")
    purpose = request.query_params.get("purpose", "run")
    if purpose not in PURPOSES:
        raise InvalidInput(f"purpose must be one of {', '.join(PURPOSES)}")
    values = who.vault.resolve(p["project"], p["env"], only=only, purpose=purpose)
    return json_response(wire.encode_resolved(values))


ONE_SECRET = "/v1/secrets/{project}/{env}/{name}"  # noqa: S105 - a route template

ROUTES = [
    Route("/v1/projects", list_projects, methods=["GET"]),
    Route("/v1/projects", create_project, methods=["POST"]),
    Route("/v1/projects/{project}/envs", list_envs, methods=["GET"]),
    Route("/v1/projects/{project}/envs", create_env, methods=["POST"]),
    Route("/v1/secrets/{project}/{env}", list_secrets, methods=["GET"]),
    Route(ONE_SECRET, get_secret, methods=["GET"]),
    Route(ONE_SECRET, put_secret, methods=["PUT"]),
    Route(ONE_SECRET, delete_secret, methods=["DELETE"]),
    Route(ONE_SECRET + "/undelete", undelete_secret, methods=["POST"]),
    Route(ONE_SECRET + "/purge", purge_secret, methods=["POST"]),
    Route(ONE_SECRET + "/history", history, methods=["GET"]),
    Route(ONE_SECRET + "/rollback", rollback, methods=["POST"]),
    Route(ONE_SECRET + "/meta", get_meta, methods=["GET"]),
    Route(ONE_SECRET + "/meta", patch_meta, methods=["PATCH"]),
    Route("/v1/resolve/{project}/{env}", resolve, methods=["GET"]),
]
