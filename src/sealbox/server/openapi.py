"""The OpenAPI 3.1 document of the server (``GET /v1/openapi.json``), built from the routes.

Paths and methods come from the app's Starlette route table, so an operation can be neither
missing nor extra: :func:`document` walks the routes and looks each (template, method) up
in :data:`OPERATIONS`, where its summary and schemas are declared; a route without an entry,
or an entry without a route, is an error (``tests/integration/test_server_openapi.py``
builds the document from a real app, and schemathesis fuzzes the app against it).

What the document promises, and how it stays true:

* path parameters carry the patterns the core validates (project, env, secret names…),
  so a request the schema allows is one the server takes (or answers 401/403/404/409);
* every status the server can answer is listed, with the error body it sends
  (:mod:`sealbox.server.errors`: the code enum is THE table of codes per status);
* the router's methods per path are the documented ones; Starlette's ``HEAD`` goes with
  ``GET``, and Vault's ``LIST`` is the ``x-vault-list`` mark on a ``GET`` (a request line
  ``LIST …`` is served as ``GET …?list=true``, see fastpath/protocol.py);
* the login route (``/v1/auth/{method}/login``) is also listed once per installed login
  method, as its own path with the body the method's fields make (a plug-in is documented
  by its declaration); the template's ``method`` parameter then leaves those names out;
* a KV route's ``{path:path}`` is documented as ``{project}/{env}/{key}`` (the document
  ``{key}`` in the folder ``{env}``): OpenAPI has no multi-segment parameter, and a client
  must send the ``/`` between them unencoded (an encoded ``/`` is refused). A KV path may
  be of any depth from 1 (``{project}``, the project's own document); see documents.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.routing import BaseRoute, Route

from sealbox.auth.methods import registry as login_registry
from sealbox.auth.methods.interface import METHOD_NAME_RE, Field, FieldKind, LoginMethod
from sealbox.auth.methods.password import PasswordLogin
from sealbox.auth.passwords import MIN_LENGTH as MIN_PASSWORD
from sealbox.auth.policy import DENY, POLICY_NAME_RE, Capability
from sealbox.auth.service import BUILTIN
from sealbox.model import (
    FOLDER_SEGMENT_RE,
    MAX_NAME,
    META_FIELDS,
    PROJECT_RE,
    SCOPE_RE,
    SECRET_NAME_RE,
    VALUE_BASE64,
    Classification,
)
from sealbox.server.errors import HTTP_STATUS
from sealbox.server.routes_auth import LOGIN as LOGIN_PATH
from sealbox.server.routes_auth import LOGIN_NAMED as LOGIN_NAMED_PATH
from sealbox.server.routes_kv import MERGE_PATCH, RESERVED_MOUNTS, is_compat_path

Schema = dict[str, Any]

JSON = "application/json"
#: The router adds HEAD to every GET route; it is implied by the GET operation.
IMPLIED = "HEAD"
#: Vault's verb; documented as ``x-vault-list`` on the GET of the same path.
LIST = "LIST"
OPENAPI_METHODS = ("get", "put", "post", "delete", "patch")


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def body(props: dict[str, Any], required: Sequence[str] = ()) -> Schema:
    """A request body: the server refuses any field it does not name (400)."""
    schema: Schema = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return schema


def resp(props: dict[str, Any], required: Sequence[str] | None = None) -> Schema:
    """A response object: the fields listed are always there (unless ``required`` says)."""
    return {
        "type": "object",
        "properties": props,
        "required": list(props) if required is None else list(required),
    }


def _pattern(regex: re.Pattern[str]) -> str:
    """A Python ``…\\Z`` full-match regex as a JSON Schema pattern."""
    text = regex.pattern
    return "^" + (text[:-2] if text.endswith(r"\Z") else text) + "$"


S: Schema = {"type": "string"}
I: Schema = {"type": "integer"}  # noqa: E741 - a schema, read as "integer"
B: Schema = {"type": "boolean"}
NS: Schema = {"type": ["string", "null"]}
SL: Schema = {"type": "array", "items": S}
ANY: Schema = {"type": "object"}
EMPTY: Schema = body({})

#: Identity, role and other lowercase names (``SCOPE_RE``).
SCOPE: Schema = {"type": "string", "pattern": _pattern(SCOPE_RE)}
#: Project names (``PROJECT_RE``).
PROJECT: Schema = {"type": "string", "pattern": _pattern(PROJECT_RE)}
_SEGMENT = _pattern(FOLDER_SEGMENT_RE)[1:-1]
#: An environment: a folder path of segments joined by ``:``, or ``.`` (the project's own).
FOLDER: Schema = {
    "type": "string",
    "maxLength": 255,
    "pattern": f"^(\\.|{_SEGMENT}(:{_SEGMENT})*)$",
}
#: Secret names (``SECRET_NAME_RE``, at most ``MAX_NAME``).
NAME: Schema = {"type": "string", "maxLength": MAX_NAME, "pattern": _pattern(SECRET_NAME_RE)}
POLICY_NAME: Schema = {"type": "string", "pattern": _pattern(POLICY_NAME_RE)}
#: ``/v1/policies/explain`` is its own path (a concrete path wins over a template).
POLICY_PARAM: Schema = {**POLICY_NAME, "not": {"enum": ["explain"]}}
#: A policy the server can write (the built-in ones cannot be changed).
WRITABLE_POLICY: Schema = {**POLICY_NAME, "not": {"enum": ["explain", *sorted(BUILTIN)]}}
#: tokens.mint: 12 random bytes in hex.
ACCESSOR: Schema = {"type": "string", "pattern": "^[0-9a-f]{24}$"}
#: ``45s``, ``30m``, ``8h``, ``90d``, ``2w`` (``parse_duration``), below the 365 days a
#: token may live (a token's TTL is also bounded by its parent's and its max TTL).
DURATION: Schema = {
    "type": "string",
    "pattern": "^([1-9][0-9]{0,5}s|[1-9][0-9]{0,4}m|[1-9][0-9]{0,2}h|[1-9][0-9]?d|[1-9]w)$",
}
SECRET_PATH: Schema = {
    "type": "string",
    "pattern": f"^{_pattern(PROJECT_RE)[1:-1]}/{FOLDER['pattern'][1:-1]}/"
    f"{_pattern(SECRET_NAME_RE)[1:-1]}$",
}
TIME: Schema = {"type": "string", "format": "date-time"}
#: Integers in a query string are at most 18 digits (``int_param``).
MAX_INT = 10**18 - 1
#: A value that is not UTF-8 text, as standard padded base64 (model.value_json).
B64: Schema = {
    "type": "string",
    "contentEncoding": "base64",
    "pattern": "^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$",
}
IF_VERSION: Schema = {"if_version": {"type": "integer", "minimum": 0, "maximum": MAX_INT}}
BASE64_VALUE_BODY = body({VALUE_BASE64: B64, **IF_VERSION}, [VALUE_BASE64])
VERSION: Schema = {"type": "integer", "minimum": 1, "maximum": MAX_INT}
CAPABILITIES = [c.value for c in Capability]
#: A KV path segment below the project: one segment of a folder path (documents.folder_of).
KV_SEGMENT: Schema = {"type": "string", "pattern": _pattern(FOLDER_SEGMENT_RE)}
#: A policy path pattern (``PATH_PATTERN_RE``, and no ``..``).
PATH_PATTERN: Schema = {
    "type": "string",
    "pattern": r"^\.?[A-Za-z0-9_*?/-]+(\.[A-Za-z0-9_*?/-]+)*\.?$",
    "maxLength": 300,
}


def _mount_schema(kv_mounts: Sequence[str]) -> Schema:
    if "*" in kv_mounts:
        return {
            "type": "string",
            "pattern": "^[^/\\\\\\x00]{1,64}$",
            "not": {"enum": sorted({*RESERVED_MOUNTS, ".", ".."})},
        }
    return {"type": "string", "enum": sorted(kv_mounts)}


#: Path parameter schemas by name; an operation may override one (``params=``).
PATH_PARAMS: dict[str, Schema] = {
    "project": {**PROJECT, "examples": ["payments"]},
    "env": {**FOLDER, "examples": ["dev"]},
    "name": {**NAME, "examples": ["API_KEY"]},
    "accessor": ACCESSOR,
    "key": {**KV_SEGMENT, "examples": ["stripe"]},
    # A login method's name: set from the installed methods (see _login_paths).
    "method": {"type": "string", "pattern": _pattern(METHOD_NAME_RE)},
    # The KV mount (and the mount lookup's path): set from the server's kv_mounts.
    "mount": S,
    "path": S,
    "rotation_id": {"type": "string", "pattern": "^rot_[A-Za-z0-9_-]{6,60}$"},
    # A credentials role's name (lowercase, ``-`` and ``_``: ``SCOPE_RE``).
    "role": {**SCOPE, "examples": ["db-readonly"]},
}


def _query(name: str, schema: Schema, description: str, *, required: bool = False) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": description,
    }


META_PROPS: dict[str, Any] = {
    "owner": NS,
    "purpose": NS,
    "classification": {"enum": [*(c.value for c in Classification), None]},
    "rotate_every_days": {"type": ["integer", "null"], "minimum": 1, "maximum": 2**31},
    "rotation_method": NS,
    "expires": {"type": ["string", "null"], "format": "date-time"},
    "depends_on": SL,
    "contact": NS,
    "upstream": NS,
    "tags": SL,
}
assert set(META_PROPS) == META_FIELDS
#: What a change of ``expires`` takes: a date (midnight UTC) or a time.
META_EXPIRES: Schema = {
    "anyOf": [
        {"type": "string", "format": "date"},
        {"type": "string", "format": "date-time"},
        {"type": "null"},
    ]
}

ERROR_CODES: dict[int, list[str]] = {}
for _code, _status in HTTP_STATUS.items():
    ERROR_CODES.setdefault(_status, []).append(_code)

SCHEMAS: dict[str, Any] = {
    # sealbox.server.errors.native_body
    "Error": resp(
        {
            "error": resp(
                {
                    "code": {"enum": sorted(HTTP_STATUS)},
                    "message": S,
                    "request_id": S,
                }
            )
        }
    ),
    # sealbox.server.errors.compat_body (Vault's shape)
    "CompatError": resp({"errors": SL}),
    # parent: the accessor of the token that made it (None for a login token or an orphan)
    "Token": resp(
        {"token": S, "accessor": S, "expires_at": NS, "max_expires_at": NS, "parent": NS}
    ),
    # What the server stores and shows (a request's limits are on META_PROPS).
    "Meta": resp({**META_PROPS, "rotate_every_days": {"type": ["integer", "null"]}}),
    "SecretInfo": resp(
        {
            "path": S,
            "name": S,
            "version": I,
            "created_at": NS,
            "updated_at": NS,
            "deleted_at": NS,
            "meta": _ref("Meta"),
        }
    ),
    "Identity": resp(
        {
            "id": S,
            "name": S,
            "kind": {"enum": ["person", "machine"]},
            "policies": SL,
            "role_id": S,
            "created_at": S,
            "disabled": B,
        },
        ["id", "name", "kind", "policies", "created_at", "disabled"],
    ),
    "TokenInfo": resp(
        {
            "accessor": S,
            "identity": S,
            "policies": SL,
            "auth_method": S,
            "created_at": S,
            "expires_at": NS,
            "max_expires_at": NS,
            "revoked": B,
            "display": NS,
            "parent": NS,
        },
        ["accessor", "identity", "policies", "revoked"],
    ),
    "Policy": resp(
        {
            "name": S,
            "description": S,
            "rules": {
                "type": "array",
                "items": resp({"path": S, "capabilities": SL}),
            },
        }
    ),
    "PathVersion": resp({"path": S, "version": I}),
    # sealbox.server.routes_kv.envelope
    "KVEnvelope": resp(
        {
            "request_id": S,
            "lease_id": S,
            "renewable": B,
            "lease_duration": I,
            "data": {"type": ["object", "null"]},
            "wrap_info": {"type": "null"},
            "warnings": {"type": ["array", "null"]},
            "auth": {"type": "null"},
        },
        ["request_id", "data"],
    ),
}

POLICY_BODY = body(
    {
        "description": S,
        "rules": {
            "type": "array",
            "minItems": 1,
            "items": body(
                {
                    "path": PATH_PATTERN,
                    "capabilities": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"enum": [*CAPABILITIES, DENY]},
                    },
                },
                ["path", "capabilities"],
            ),
        },
    },
    ["rules"],
)
KV_DATA_BODY = body(
    {"data": ANY, "options": body({"cas": {"type": "integer", "minimum": 0, "maximum": MAX_INT}})},
    ["data"],
)
KV_VERSIONS_BODY = body(
    {"versions": {"type": "array", "minItems": 1, "items": VERSION}}, ["versions"]
)
_CUSTOM: dict[str, Schema] = {key: {"type": ["string", "null"]} for key in sorted(META_FIELDS)}
_CUSTOM["classification"] = {"enum": [*(c.value for c in Classification), "", None]}
_CUSTOM["rotate_every_days"] = {
    "anyOf": [{"type": "string", "pattern": "^[1-9][0-9]{0,8}$"}, {"enum": ["", None]}]
}
_CUSTOM["expires"] = {"anyOf": [{"type": "string", "format": "date"}, {"enum": ["", None]}]}
#: Vault's durations: seconds, or Go's ``1h30m`` / ``45s`` form.
KV_DURATION: Schema = {
    "anyOf": [
        {"type": "integer", "minimum": 0, "maximum": 100 * 365 * 86400},
        {"type": "string", "pattern": "^([0-9]{1,9}|([0-9]{1,6}h)?([0-9]{1,6}m)?([0-9]{1,9}s)?)$"},
    ]
}
KV_SETTINGS: dict[str, Schema] = {
    "max_versions": {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_INT},
    "cas_required": {"type": ["boolean", "null"]},
    "delete_version_after": {"anyOf": [KV_DURATION, {"type": "null"}]},
    "metadata_cas_required": {"enum": [False, None]},
}
KV_METADATA_BODY = body(
    {
        # Inventory fields keep their meaning (and rules); any other key is a label.
        "custom_metadata": {
            "type": "object",
            "properties": _CUSTOM,
            "additionalProperties": {"type": "string", "maxLength": 512},
            "maxProperties": 64,
            "propertyNames": {"maxLength": 128},
        },
        **KV_SETTINGS,
    }
)
KV_CONFIG_BODY = body(KV_SETTINGS)
TOKEN_BODY = body(
    {
        "identity": SCOPE,
        "ttl": DURATION,
        "max_ttl": DURATION,
        "policies": {"type": "array", "items": POLICY_NAME},
        # not bound to the caller's token (it outlives it): admin on sys/tokens only
        "orphan": B,
    }
)
#: ?force=true: a change that would leave no enabled root holder or admin (else a 409).
FORCE = (_query("force", B, "allow leaving the vault without an admin (audited)"),)
IDENTITY_BODY: Schema = {
    "oneOf": [
        body(
            {
                "name": SCOPE,
                "kind": {"const": "person"},
                "password": {"type": "string", "minLength": MIN_PASSWORD},
                "policies": {"type": "array", "items": POLICY_NAME},
            },
            ["name", "kind", "password"],
        ),
        body(
            {
                "name": SCOPE,
                "kind": {"const": "machine"},
                "policies": {"type": "array", "items": POLICY_NAME},
            },
            ["name", "kind"],
        ),
    ]
}


@dataclass(frozen=True)
class Op:
    """One documented operation: what it takes and answers. Statuses follow from it:

    400 when it takes any input; 401/403 when it needs a token (401 also on a login);
    404 when it needs a token (a target may not exist, or is hidden) or ``lookup`` says
    the path names something that may not be there (a login method); 409 on a change
    (any non-GET with a token); 413/415 when it reads a JSON body; 429 on a login;
    503 when it touches storage or keys (all but ``unavailable=False``).
    """

    summary: str
    tag: str
    ok: int = 200
    response: Schema | None = None
    body: Schema | None = None
    media: str = JSON
    query: tuple[Schema, ...] = ()
    params: Mapping[str, Schema] = field(default_factory=dict)
    auth: bool = True
    login: bool = False
    unavailable: bool = True
    ok_media: str = JSON
    not_found: Schema | None = None
    description: str | None = None
    lookup: bool = False
    #: Further statuses it may answer (an upstream database's 502, a quota's 409 on a GET).
    extra: tuple[int, ...] = ()
    #: Further success answers, by status or range (``2XX``), in the ``ok`` answer's shape.
    also_ok: Mapping[str, str] = field(default_factory=dict)


def _error(compat: bool, status: int, description: str) -> dict[str, Any]:
    codes = sorted(ERROR_CODES.get(status, []))
    native: Schema = {
        "allOf": [
            _ref("Error"),
            {"properties": {"error": {"properties": {"code": {"enum": codes}}}}},
        ]
    }
    # A KV route under a reserved first segment (/v1/tokens/data/…) answers natively.
    schema = {"anyOf": [_ref("CompatError"), native]} if compat else native
    return {"description": description, "content": {JSON: {"schema": schema}}}


BAD_INPUT = (
    "invalid input: a field, a parameter or the path breaks the rules above; or the body is "
    "not UTF-8 JSON (a duplicate key, nesting deeper than the server's limit, a lone "
    "surrogate); or the path is not UTF-8 once decoded"
)
MEDIA = {
    JSON: "the body's Content-Type is not application/json (or application/*+json)",
    MERGE_PATCH: f"the body's Content-Type is not {MERGE_PATCH}",
}
EXTRA_STATUS = {
    409: "conflict: a quota reached, or a lease past its max TTL or expired",
    502: "the upstream system (a database) could not be reached, or refused",
}
RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}


def _render(op: Op, template: str, method: str) -> dict[str, Any]:
    # The login templates stand for Vault's methods too (approle, userpass: Vault's errors).
    compat = is_compat_path(template) or template.startswith("/v1/auth/{method}/")
    names = re.findall(r"\{(\w+)\}", template)
    responses: dict[str, Any] = {}
    if op.ok == 204:
        responses["204"] = {"description": "done"}
    else:
        schema = op.response or ANY
        responses[str(op.ok)] = {
            "description": "success",
            "content": {op.ok_media: {"schema": schema}},
        }
    for key, text in op.also_ok.items():
        responses[key] = {**responses[str(op.ok)], "description": text}
    takes_input = bool(names or op.query or op.body is not None)
    changes = method != "get"
    wanted = [
        (400, takes_input, BAD_INPUT),
        (401, op.auth or op.login, "missing, unknown, expired or revoked token; bad credentials"),
        (403, op.auth, "denied by policy (never says whether the target exists)"),
        (404, op.auth or op.lookup, "not found"),
        (409, op.auth and changes, "conflict: exists already, or not at the expected version"),
        (413, op.body is not None, "the request body is larger than the server accepts"),
        (415, op.body is not None, MEDIA.get(op.media, f"the body is not {op.media}")),
        (429, op.login, "too many login attempts: retry after Retry-After seconds"),
        (503, op.unavailable, "storage, audit or key provider briefly unavailable"),
    ]
    wanted += [(status, True, EXTRA_STATUS[status]) for status in op.extra]
    for status, applies, text in wanted:
        if not applies or str(status) in responses:
            continue
        responses[str(status)] = _error(compat, status, text)
        if status == 404 and op.not_found is not None:
            schema = responses["404"]["content"][JSON]["schema"]
            responses["404"]["content"][JSON]["schema"] = {"anyOf": [schema, op.not_found]}
        if status in (429, 503):
            responses[str(status)]["headers"] = RETRY_AFTER
    out: dict[str, Any] = {"summary": op.summary, "tags": [op.tag], "responses": responses}
    if op.description:
        out["description"] = op.description
    params = [
        {"name": n, "in": "path", "required": True, "schema": op.params.get(n, PATH_PARAMS[n])}
        for n in names
    ]
    if op.tag == KV:
        # A KV path's segments are folder segments (no ":", no "."; documents.folder_of).
        for p in params:
            if p["name"] == "env":
                p["schema"] = {**KV_SEGMENT, "examples": ["dev"]}
    if params or op.query:
        out["parameters"] = [*params, *op.query]
    if op.body is not None:
        # An empty body reads as {}: it is required only when some field is, or when the
        # route wants its media type said (a KV merge patch).
        needed = op.media != JSON or any(k in op.body for k in ("required", "oneOf", "anyOf"))
        out["requestBody"] = {
            "required": needed,
            "content": {op.media: {"schema": op.body}},
        }
    if not op.auth:
        out["security"] = []
    return out


# -- the operations, by route template and method -------------------------------------------------
TOKEN = _ref("Token")
VAULT_TOKENS = "vault-tokens"
VAULT_SYS = "vault-sys"
#: Vault's durations: seconds (a number or digits) or ``1h30m`` (vault_shapes.duration).
VAULT_DURATION: Schema = {
    "anyOf": [
        {"type": "integer", "minimum": 0},
        {"type": "string", "pattern": "^([0-9]+|([0-9]+[smhd])+)$"},
    ]
}
#: Vault's answer envelope (vault_shapes.envelope) around ``data`` or ``auth``.
_ENVELOPE_PROPS = {
    "request_id": S, "lease_id": S, "renewable": B, "lease_duration": I,
    "wrap_info": {"type": "null"}, "warnings": {"type": ["array", "null"], "items": S},
}  # fmt: skip
VAULT_AUTH = resp(
    {
        "client_token": S, "accessor": S, "policies": SL, "token_policies": SL,
        "metadata": ANY, "lease_duration": I, "renewable": B, "entity_id": S,
        "token_type": S, "orphan": B, "mfa_requirement": {"type": "null"}, "num_uses": I,
    }
)  # fmt: skip
VAULT_AUTH_ANSWER = resp({**_ENVELOPE_PROPS, "data": {"type": "null"}, "auth": VAULT_AUTH})
VAULT_LOOKUP = resp(
    {
        **_ENVELOPE_PROPS,
        "auth": {"type": "null"},
        "data": resp(
            {
                "accessor": S, "creation_time": I, "creation_ttl": I, "display_name": S,
                "entity_id": S, "expire_time": TIME, "explicit_max_ttl": I, "id": S,
                "issue_time": TIME, "meta": ANY, "num_uses": I, "orphan": B, "path": S,
                "policies": SL, "renewable": B, "ttl": I, "type": S,
            }
        ),
    }
)  # fmt: skip
VAULT_CREATE = body(
    {
        "policies": SL, "ttl": VAULT_DURATION, "explicit_max_ttl": VAULT_DURATION,
        "display_name": {"type": "string", "maxLength": 128}, "no_parent": B,
        "no_default_policy": B, "renewable": {"const": True}, "num_uses": {"const": 0},
        "type": {"enum": ["", "service", "default"]},
        **{k: {"description": "refused unless empty: sealbox has no equivalent"}
           for k in ("id", "role_name", "period", "entity_alias", "meta", "lease")},
    }
)  # fmt: skip
#: A mount in Vault's shape (vault_shapes.kv_mount); a map of them, at the top and in data.
VAULT_MOUNT = resp(
    {
        "accessor": S, "config": ANY, "description": S, "external_entropy_access": B,
        "local": B, "options": {"type": ["object", "null"]}, "plugin_version": S,
        "running_plugin_version": S, "running_sha256": S, "seal_wrap": B, "type": S,
        "uuid": S,
    }
)  # fmt: skip
VAULT_MOUNTS = {
    "type": "object",
    "properties": {
        **_ENVELOPE_PROPS,
        "data": {"type": "object", "additionalProperties": VAULT_MOUNT},
    },
    "additionalProperties": True,
}
SEAL_STATUS = resp(
    {
        "type": S, "initialized": B, "sealed": B, "t": {"type": "integer"},
        "n": {"type": "integer"}, "progress": {"type": "integer"}, "nonce": S, "version": S,
        "build_date": S, "commit_date": S, "migration": B, "recovery_seal": B, "storage_type": S,
        "cluster_name": S, "cluster_id": S,
    },
    ["type", "initialized", "sealed", "t", "n", "progress", "nonce", "version"],
)  # fmt: skip
ROTATION = "/v1/rotation/secrets/{project}/{env}/{name}"
ROTATION_RUN = "/v1/rotation/runs/{rotation_id}"
ROTATION_ID = "^rot_[A-Za-z0-9_-]{6,60}$"
ROTATION_RECORD = resp(
    {
        "id": S,
        "path": S,
        "method": S,
        "state": {"enum": ["running", "pending", "failed", "succeeded", "cancelled", "rehearsed"]},
        "step": S,
        "error": NS,
        "test": NS,
        "pending_version": {"type": ["integer", "null"]},
    },
    ["id", "path", "state"],
)
ROTATIONS = resp({"rotations": {"type": "array", "items": ROTATION_RECORD}}, ["rotations"])
ROTATION_CONFIG = resp(
    {"path": S, "method": S, "options": ANY, "grace_seconds": I, "window": NS},
    ["path", "method"],
)
_TEXTS = SL
KMS_STATUS = resp(
    {
        "keks": {
            "type": "array",
            "items": resp({"kek_id": S, "created_at": S, "active": B, "versions": I}),
        },
        "providers": {
            "type": "array",
            "items": resp(
                {
                    "name": S,
                    "kind": S,
                    "key_id": S,
                    "reachable": {"type": ["boolean", "null"]},
                    "error": S,
                    "wraps": _TEXTS,
                    "opens": _TEXTS,
                    "missing": _TEXTS,
                }
            ),
        },
        "problems": _TEXTS,
    }
)
INCIDENT_REPORT = resp(
    {
        "secret": S,
        "reason": S,
        "at": TIME,
        "current_version": I,
        "versions": {"type": "array", "items": resp({"version": I, "stage": NS})},
        "affected_versions": {"type": "array", "items": I},
        "value_matched": {"type": ["boolean", "null"]},
        "also_holding": {"type": "array", "items": resp({"secret": S, "version": I})},
        "readers": {
            "type": "array",
            "items": resp(
                {
                    "identity": S,
                    "source": S,
                    "hostname": NS,
                    "remote_addr": NS,
                    "reads": I,
                    "first_at": S,
                    "last_at": S,
                    "versions": {"type": "array", "items": I},
                }
            ),
        },
        "owner": NS,
        "contact": NS,
        "upstream": NS,
        "classification": NS,
        "depends_on": SL,
        "redeploy": SL,
        "actions": SL,
    }
)
SECRET = "/v1/secrets/{project}/{env}/{name}"  # noqa: S105 - a path template
KV = "vault-kv-v2"
KV_PATH = "/{path:path}"
ENVELOPE = _ref("KVEnvelope")
#: Vault answers a soft-deleted version with 404 and its metadata in an envelope.
KV_NOT_FOUND: Schema = ENVELOPE
IDENTITY = {"name": SCOPE}
POLICY = {"name": POLICY_PARAM}
EVENTS = (
    'A stream of server-sent events: a `snapshot` event ({"versions": {NAME: version}}), '
    'then a `change` event per change ({"path", "version", "op"}), a comment line '
    "as heartbeat, and an `error` event that ends the stream when the token or the "
    "permission goes. Never a value."
)
LOGIN = "Rate limited per identity and per source address (429 with Retry-After)."
LEASE_CREDS: Schema = resp({"username": S, "password": S})
STATEMENTS: Schema = {"type": ["string", "array"], "items": S}
#: Vault's TTLs and increments: seconds, or a duration such as ``1h`` (0 or null: the default).
SPAN: Schema = {
    "anyOf": [{"type": "integer", "minimum": 0, "maximum": 31_536_000}, DURATION, {"type": "null"}]
}
#: One path segment (Starlette's ``{name}``) the server takes: no ``\`` or NUL (an
#: encoded one is a 400, see middleware), not ``.`` or ``..`` (clients resolve them).
SEGMENT: Schema = {
    "type": "string",
    "pattern": "^[^/\\\\\\x00]+$",
    "not": {"enum": [".", ".."]},
}
FIELD_TYPES: dict[FieldKind, Schema] = {
    FieldKind.STR: S,
    FieldKind.STR_LIST: SL,
    FieldKind.INT: I,
    FieldKind.BOOL: B,
}


def _field_schema(f: Field) -> Schema:
    schema = dict(FIELD_TYPES[f.kind])
    if f.pattern is not None:
        schema["pattern"] = _pattern(f.pattern)
    if f.nonempty:
        schema["minLength"] = 1
    return schema


def login_op(method: LoginMethod) -> Op:
    """A login method's operation, from the fields it declares (its path field, if it has
    one, is the ``{name}`` segment after ``login/``)."""
    props, required, params = {}, [], {}
    for f in method.fields:
        if f.name == method.path_field:
            params["name"] = {**SEGMENT, **_field_schema(f)}
            continue
        props[f.name] = _field_schema(f)
        if f.required:
            required.append(f.name)
    return Op(
        method.summary,
        tag="auth",
        response=TOKEN,
        auth=False,
        login=True,
        description=LOGIN,
        body=body(props, required),
        params=params,
    )


def login_template(method: LoginMethod) -> str:
    """Where the document lists a method: ``/v1/auth/<name>/login[/{name}]``."""
    template = LOGIN_NAMED_PATH if method.path_field else LOGIN_PATH
    return template.replace("{method}", method.name)


def _vault_auth_ops() -> dict[tuple[str, str], Op]:
    """Vault's ``auth/approle/role/…`` and ``auth/userpass/users/…`` (routes_vault_auth.py):
    bodies are Vault's fields, checked by the core (unsupported ones are a 400 naming them)."""
    role, users = "/v1/auth/approle/role", "/v1/auth/userpass/users"
    named, user = role + "/{name}", users + "/{name}"
    fields = {"type": "object", "description": "Vault's fields (docs/server.md)"}
    data = resp({"data": ANY})
    ops: dict[tuple[str, str], Op] = {
        (role, "GET"): Op("AppRole roles (machines): `keys`", tag="vault-auth", response=data),
        (users, "GET"): Op("userpass users (people): `keys`", tag="vault-auth", response=data),
        (named, "GET"): Op("An AppRole role's settings", tag="vault-auth", response=data),
        (user, "GET"): Op("A userpass user's settings", tag="vault-auth", response=data),
        (named, "DELETE"): Op("Delete an AppRole role (its machine)", tag="vault-auth", ok=204),
        (user, "DELETE"): Op("Delete a userpass user (its person)", tag="vault-auth", ok=204),
        (named + "/role-id", "GET"): Op("A role's role id", tag="vault-auth", response=data),
        (named + "/secret-id", "GET"): Op(
            "A role's secret id accessors: `keys`", tag="vault-auth", response=data
        ),
    }
    for method in ("POST", "PUT"):
        ops[(named, method)] = Op(
            "Create or update an AppRole role (a machine)", tag="vault-auth", ok=204, body=fields
        )
        ops[(user, method)] = Op(
            "Create or update a userpass user (a person)", tag="vault-auth", ok=204, body=fields
        )
        ops[(named + "/role-id", method)] = Op(
            "Set a role's role id", tag="vault-auth", ok=204, body=body({"role_id": S}, ["role_id"])
        )
        ops[(user + "/password", method)] = Op(
            "Set a user's password",
            tag="vault-auth",
            ok=204,
            body=body({"password": S}, ["password"]),
        )
        ops[(named + "/secret-id", method)] = Op(
            "A new secret id (shown once) with the role's uses and TTL",
            tag="vault-auth",
            body=body({"metadata": ANY, "cidr_list": SL, "token_bound_cidrs": SL}),
            response=data,
        )
        for what, key in (
            ("secret-id", "secret_id"),
            ("secret-id-accessor", "secret_id_accessor"),
        ):
            ops[(f"{named}/{what}/lookup", method)] = Op(
                f"A secret id's uses and times, by its {key}",
                tag="vault-auth",
                body=body({key: S}, [key]),
                response=data,
            )
            ops[(f"{named}/{what}/destroy", method)] = Op(
                f"Destroy a secret id, by its {key}",
                tag="vault-auth",
                ok=204,
                body=body({key: S}, [key]),
            )
    return ops


OPERATIONS: dict[tuple[str, str], Op] = {
    # -- auth ---------------------------------------------------------------------------------
    ("/v1/auth/login", "POST"): login_op(PasswordLogin()),
    **{
        (LOGIN_PATH, verb): Op(
            "Log in with an installed login method; an unknown name is a 404",
            tag="auth",
            response=TOKEN,
            auth=False,
            login=True,
            lookup=True,
            description=f"{LOGIN} The built-in methods are listed as their own paths; "
            "another takes the fields its package declares.",
            body=ANY,
        )
        for verb in ("POST", "PUT")
    },
    **{
        (LOGIN_NAMED_PATH, verb): Op(
            "Log in with a method that takes a name in the path (userpass); else a 404",
            tag="auth",
            response=TOKEN,
            auth=False,
            login=True,
            lookup=True,
            description=LOGIN,
            body=ANY,
            params={"name": SEGMENT},
        )
        for verb in ("POST", "PUT")
    },
    ("/v1/auth/token/self", "GET"): Op(
        "The calling token",
        tag="auth",
        response=resp({"identity": S, "kind": S, "policies": SL, "accessor": S, "expires_at": NS}),
    ),
    **{
        ("/v1/auth/token/lookup-self", verb): Op(
            "The calling token's full Vault record, `id` (the token) included: what"
            " `bao login` stores and hvac's `is_authenticated` asks",
            tag=VAULT_TOKENS,
            response=VAULT_LOOKUP,
            body=None if verb == "GET" else ANY,
        )
        for verb in ("GET", "POST", "PUT")
    },
    **{
        ("/v1/auth/token/lookup", verb): Op(
            "A token's Vault record by `token` (one's own and its descendants freely,"
            " others' with read on sys/tokens)",
            tag=VAULT_TOKENS,
            response=VAULT_LOOKUP,
            body=body({"token": S}, ["token"]),
        )
        for verb in ("GET", "POST", "PUT")
    },
    **{
        ("/v1/auth/token/lookup-accessor", verb): Op(
            "A token's Vault record by `accessor` (`id` is empty), same rights as lookup",
            tag=VAULT_TOKENS,
            response=VAULT_LOOKUP,
            body=body({"accessor": S}, ["accessor"]),
        )
        for verb in ("POST", "PUT")
    },
    **{
        ("/v1/auth/token/renew", verb): Op(
            "Extend the calling token, or the one in `token` (up to its max TTL and its"
            " parent's expiry): native `expires_at`/`warnings` beside Vault's `auth` block",
            tag="auth",
            # warnings: why the new expiry is earlier than asked for (capped, as Vault says)
            response=resp({"expires_at": NS, "warnings": SL, "auth": VAULT_AUTH}),
            body=body({"increment": VAULT_DURATION, "token": S}),
        )
        for verb in ("POST", "PUT")
    },
    **{
        ("/v1/auth/token/renew-self", verb): Op(
            "Extend the calling token; Vault's `auth` block (`warnings` if capped)",
            tag=VAULT_TOKENS,
            response=VAULT_AUTH_ANSWER,
            body=body({"increment": VAULT_DURATION}),
        )
        for verb in ("POST", "PUT")
    },
    **{
        ("/v1/auth/token/revoke-self", verb): Op(
            "Revoke the calling token", tag="auth", ok=204, body=EMPTY
        )
        for verb in ("POST", "PUT")
    },
    **{
        ("/v1/auth/token/revoke", verb): Op(
            "Revoke the token in `token` and its descendants (one's own freely, others'"
            " with admin on sys/tokens)",
            tag=VAULT_TOKENS,
            ok=204,
            body=body({"token": S}, ["token"]),
        )
        for verb in ("POST", "PUT")
    },
    **{
        ("/v1/auth/token/revoke-accessor", verb): Op(
            "Revoke the token with `accessor` and its descendants, same rights as revoke",
            tag=VAULT_TOKENS,
            ok=204,
            body=body({"accessor": S}, ["accessor"]),
        )
        for verb in ("POST", "PUT")
    },
    **{
        (f"/v1/auth/token/{name}", verb): Op(
            summary,
            tag=VAULT_TOKENS,
            response=VAULT_AUTH_ANSWER,
            body=VAULT_CREATE,
        )
        for name, summary in (
            (
                "create",
                "A child of the calling token with a subset of its policies (never more:"
                " 403); options sealbox lacks (num_uses, period, role_name, id, meta,"
                " entity_alias, renewable false, type batch) are a 400",
            ),
            ("create-orphan", "As create, a root of a new token tree (admin on sys/tokens)"),
        )
        for verb in ("POST", "PUT")
    },
    # -- projects -----------------------------------------------------------------------------
    ("/v1/projects", "GET"): Op(
        "Projects the caller can see", tag="projects", response=resp({"projects": SL})
    ),
    ("/v1/projects", "POST"): Op(
        "Create a project",
        tag="projects",
        ok=201,
        response=resp({"name": S}),
        body=body(
            {"name": PROJECT, "environments": {"type": "array", "items": FOLDER, "maxItems": 20}},
            ["name"],
        ),
    ),
    ("/v1/projects/{project}/envs", "GET"): Op(
        "A project's environments", tag="projects", response=resp({"environments": SL})
    ),
    ("/v1/projects/{project}/envs", "POST"): Op(
        "Create an environment",
        tag="projects",
        ok=201,
        response=resp({"project": S, "name": S}),
        body=body({"name": FOLDER}, ["name"]),
    ),
    # -- secrets ------------------------------------------------------------------------------
    ("/v1/secrets/{project}/{env}", "GET"): Op(
        "Secrets of an environment (names and metadata, never values)",
        tag="secrets",
        query=(_query("deleted", B, "include soft-deleted secrets"),),
        response=resp({"secrets": {"type": "array", "items": _ref("SecretInfo")}}),
    ),
    (SECRET, "GET"): Op(
        "Read a version's value (current by default)",
        tag="secrets",
        query=(
            _query("version", VERSION, "a version number"),
            _query("reveal", B, "audit as shown to a person, not a program"),
            _query(
                "stage",
                {"enum": ["current", "pending", "previous"]},
                "by stage: pending (being rotated in), previous (during its grace window)",
            ),
        ),
        response={
            **resp(
                {"path": S, "version": I, "value": S, VALUE_BASE64: B64, "created_at": S},
                ["path", "version", "created_at"],
            ),
            "oneOf": [{"required": ["value"]}, {"required": [VALUE_BASE64]}],
        },
    ),
    (SECRET, "PUT"): Op(
        "Write a new version (the value as text, or as value_base64 when it is not UTF-8)",
        tag="secrets",
        response=_ref("PathVersion"),
        body={"oneOf": [body({"value": S, **IF_VERSION}, ["value"]), BASE64_VALUE_BODY]},
    ),
    (SECRET, "DELETE"): Op("Soft-delete a secret", tag="secrets", ok=204),
    (SECRET + "/undelete", "POST"): Op("Undo a soft delete", tag="secrets", ok=204, body=EMPTY),
    (SECRET + "/purge", "POST"): Op(
        "Destroy a secret and every version",
        tag="secrets",
        response=resp({"destroyed": I}),
        body=EMPTY,
    ),
    (SECRET + "/history", "GET"): Op(
        "A secret's versions",
        tag="secrets",
        response=resp(
            {
                "versions": {
                    "type": "array",
                    "items": resp(
                        {
                            "version": I,
                            "stage": NS,
                            "created_at": S,
                            "created_by": S,
                            "rollback_of": {"type": ["integer", "null"]},
                        },
                        ["version", "created_at"],
                    ),
                }
            }
        ),
    ),
    (SECRET + "/rollback", "POST"): Op(
        "A new version with an old version's content",
        tag="secrets",
        response=_ref("PathVersion"),
        body=body({"version": VERSION, "if_version": VERSION}, ["version"]),
    ),
    (SECRET + "/meta", "GET"): Op(
        "A secret's metadata", tag="secrets", response=resp({"path": S, "meta": _ref("Meta")})
    ),
    (SECRET + "/meta", "PATCH"): Op(
        "Change metadata fields (null clears one)",
        tag="secrets",
        body=body({**META_PROPS, "expires": META_EXPIRES}),
        response=resp({"path": S, "meta": _ref("Meta")}),
    ),
    ("/v1/resolve/{project}/{env}", "GET"): Op(
        "Every readable current value of an environment in one round trip (sealbox run)",
        tag="secrets",
        query=(
            _query(
                "only",
                {
                    "type": "string",
                    "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,254}"
                    "(,[A-Za-z_][A-Za-z0-9_]{0,254}){0,20}$",
                },
                "comma-separated names",
            ),
            _query("purpose", {"enum": ["run", "export", "reveal"]}, "audit purpose"),
        ),
        response=resp(
            {
                "secrets": {
                    "type": "object",
                    "additionalProperties": {"anyOf": [S, resp({VALUE_BASE64: B64})]},
                }
            }
        ),
    ),
    ("/v1/events/{project}/{env}", "GET"): Op(
        "Change notifications of an environment (server-sent events)",
        tag="secrets",
        ok_media="text/event-stream",
        response=resp(
            {
                "event": {"enum": ["snapshot", "change", "error"]},
                "data": {"type": "string", "contentMediaType": JSON},
            }
        ),
        description=EVENTS,
    ),
    # -- identities ---------------------------------------------------------------------------
    ("/v1/identities", "GET"): Op(
        "Identities",
        tag="identities",
        response=resp({"identities": {"type": "array", "items": _ref("Identity")}}),
    ),
    ("/v1/identities", "POST"): Op(
        "Create a person (with a password) or a machine (logs in by AppRole)",
        tag="identities",
        ok=201,
        response=_ref("Identity"),
        body=IDENTITY_BODY,
    ),
    ("/v1/identities/{name}", "GET"): Op(
        "An identity", tag="identities", params=IDENTITY, response=_ref("Identity")
    ),
    ("/v1/identities/{name}", "DELETE"): Op(
        "Delete an identity", tag="identities", ok=204, params=IDENTITY, query=FORCE
    ),
    ("/v1/identities/{name}/policies", "PUT"): Op(
        "Replace an identity's policies",
        tag="identities",
        params=IDENTITY,
        query=FORCE,
        body=body({"policies": {"type": "array", "items": POLICY_NAME}}, ["policies"]),
        response=_ref("Identity"),
    ),
    ("/v1/identities/{name}/secret-ids", "POST"): Op(
        "A new secret id for a machine (shown once)",
        tag="identities",
        params=IDENTITY,
        body=body({"uses": {"type": "integer", "minimum": 1, "maximum": 2**31}, "ttl": DURATION}),
        response=resp({"secret_id": S}),
    ),
    # -- Vault's AppRole and userpass administration (machines and people) ----------------
    **_vault_auth_ops(),
    ("/v1/identities/{name}/revoke-tokens", "POST"): Op(
        "Revoke every token of an identity",
        tag="identities",
        params=IDENTITY,
        body=EMPTY,
        response=resp({"revoked": I}),
    ),
    # -- tokens -------------------------------------------------------------------------------
    ("/v1/tokens", "POST"): Op(
        "Mint a token (for oneself, or for another identity as admin)",
        tag="tokens",
        response=TOKEN,
        body=TOKEN_BODY,
    ),
    ("/v1/tokens", "GET"): Op(
        "Tokens, by accessor",
        tag="tokens",
        query=(_query("identity", SCOPE, "only this identity's tokens"),),
        response=resp({"tokens": {"type": "array", "items": _ref("TokenInfo")}}),
    ),
    ("/v1/tokens/{accessor}", "DELETE"): Op("Revoke a token by accessor", tag="tokens", ok=204),
    # -- policies -----------------------------------------------------------------------------
    ("/v1/policies", "GET"): Op(
        "Policies",
        tag="policies",
        response=resp({"policies": {"type": "array", "items": _ref("Policy")}}),
    ),
    ("/v1/policies/explain", "POST"): Op(
        "Explain a decision for an identity, path and capability",
        tag="policies",
        body=body(
            {
                "identity": SCOPE,
                "path": {"type": "string", "maxLength": 300},
                "capability": {"enum": CAPABILITIES},
            },
            ["identity", "path", "capability"],
        ),
        response=resp(
            {"allowed": B, "reason": S, "policy": NS, "rule": {"type": ["object", "null"]}}
        ),
    ),
    ("/v1/policies/{name}", "PUT"): Op(
        "Create or replace a policy (a `name` in the body must be the path's)",
        tag="policies",
        params={"name": WRITABLE_POLICY},
        query=FORCE,
        body=POLICY_BODY,
        response=_ref("Policy"),
    ),
    ("/v1/policies/{name}", "GET"): Op(
        "A policy", tag="policies", params=POLICY, response=_ref("Policy")
    ),
    ("/v1/policies/{name}", "DELETE"): Op(
        "Delete a policy", tag="policies", ok=204, params={"name": WRITABLE_POLICY}, query=FORCE
    ),
    # -- audit --------------------------------------------------------------------------------
    ("/v1/audit/log", "POST"): Op(
        "Audit events matching every filter given, newest first (admin on sys/audit)",
        tag="audit",
        body=body(
            {
                "secret": SECRET_PATH,
                "identity": S,
                "since": TIME,
                "until": TIME,
                "operations": SL,
                "denied": B,
                "source": S,
                "limit": {"type": "integer", "minimum": 1, "maximum": MAX_INT},
            }
        ),
        response=resp({"events": {"type": "array", "items": ANY}}),
    ),
    ("/v1/audit/who-read", "POST"): Op(
        "Who received a secret's value (a version, or an exact value by its HMAC)",
        tag="audit",
        body={
            **body(
                {
                    "path": SECRET_PATH,
                    "version": VERSION,
                    "value_hmac": S,
                    "since": TIME,
                    "until": TIME,
                }
            ),
            "anyOf": [{"required": ["path"]}, {"required": ["value_hmac"]}],
            "dependentRequired": {"version": ["path"]},
        },
        response=resp({"events": {"type": "array", "items": ANY}}),
    ),
    ("/v1/audit/hash", "POST"): Op(
        "The HMAC audit events carry for a value (the value is not stored)",
        tag="audit",
        body={"oneOf": [body({"value": S}, ["value"]), body({VALUE_BASE64: B64}, [VALUE_BASE64])]},
        response=resp({"hmac": S}),
    ),
    ("/v1/audit/verify", "POST"): Op(
        "Walk every audit chain: findings (tampering), notices and a summary",
        tag="audit",
        body=EMPTY,
        response=resp({"findings": SL, "notices": SL, "summary": SL}, ["findings"]),
    ),
    ("/v1/audit/checkpoint", "POST"): Op(
        "Sign every audit chain head now (Ed25519)",
        tag="audit",
        body=EMPTY,
        response=resp({"checkpoints": {"type": "array", "items": ANY}}),
    ),
    # -- rotation -----------------------------------------------------------------------------
    ("/v1/rotation/status", "GET"): Op(
        "Rotations: unfinished first, then recent ones (`failed`: those waiting on a failure)",
        tag="rotation",
        query=(_query("failed", B, "only rotations that failed or wait on the upstream"),),
        response=ROTATIONS,
    ),
    ("/v1/rotation/due", "GET"): Op(
        "The secrets whose scheduled rotation is due (overdue: its window passed unrotated)",
        tag="rotation",
        response=resp({"due": {"type": "array", "items": ANY}}, ["due"]),
    ),
    ("/v1/rotation/due", "POST"): Op(
        "Start every due rotation whose window is open now (for cron); skipped ones say why",
        tag="rotation",
        body=body({"limit": {"type": "integer", "minimum": 1, "maximum": MAX_INT}}),
        response=resp({"outcomes": {"type": "array", "items": ANY}}),
    ),
    (ROTATION, "GET"): Op(
        "How a secret is rotated (list on the secret)", tag="rotation", response=ROTATION_CONFIG
    ),
    (ROTATION, "PUT"): Op(
        "Configure how a secret is rotated; the rotator checks its options (rotate)",
        tag="rotation",
        body=body(
            {
                "method": S,
                "options": {"type": "object", "additionalProperties": S},
                "grace_seconds": {"type": "integer", "minimum": 0},
                "window": S,
                "start_offset_seconds": {"type": "integer", "minimum": 0},
                "notify_url": S,
            },
            ["method"],
        ),
        response=ROTATION_CONFIG,
    ),
    (ROTATION + "/rotate", "POST"): Op(
        "Rotate now: create, set, test, finish (a dry run undoes after test); the record,"
        " whatever state it ended in",
        tag="rotation",
        body=body({"dry_run": B, "rotation_id": {"type": "string", "pattern": ROTATION_ID}}),
        response=ROTATION_RECORD,
    ),
    (ROTATION + "/resume", "POST"): Op(
        "Resume the secret's unfinished rotation",
        tag="rotation",
        body=EMPTY,
        response=ROTATION_RECORD,
    ),
    (ROTATION + "/cancel", "POST"): Op(
        "Cancel the secret's unfinished rotation, restoring the old state",
        tag="rotation",
        body=EMPTY,
        response=ROTATION_RECORD,
    ),
    (ROTATION + "/history", "GET"): Op(
        "The rotations of a secret, newest first", tag="rotation", response=ROTATIONS
    ),
    (ROTATION + "/revoke", "POST"): Op(
        "Make a version unreadable by anyone (not the current or pending one)",
        tag="rotation",
        ok=204,
        body=body({"version": VERSION}, ["version"]),
    ),
    (ROTATION_RUN, "GET"): Op("One rotation", tag="rotation", response=ROTATION_RECORD),
    (ROTATION_RUN + "/resume", "POST"): Op(
        "Resume a rotation from its interrupted or failed step",
        tag="rotation",
        body=EMPTY,
        response=ROTATION_RECORD,
    ),
    (ROTATION_RUN + "/cancel", "POST"): Op(
        "Cancel a rotation, restoring the old state",
        tag="rotation",
        body=EMPTY,
        response=ROTATION_RECORD,
    ),
    # -- incident -----------------------------------------------------------------------------
    ("/v1/incident", "POST"): Op(
        "A suspected leak of one secret: who received it (or an exact leaked value), who else"
        " holds the value, whom to tell and redeploy; `rotate`: then rotate now and revoke"
        " every older version (admin on the secret and on sys/audit)",
        tag="incident",
        body=body(
            {
                "path": SECRET_PATH,
                "reason": {"type": "string", "minLength": 1, "maxLength": 500, "pattern": "\\S"},
                # compared and hashed only, never stored, echoed or logged
                "value": {"type": "string", "minLength": 1},
                VALUE_BASE64: {**B64, "minLength": 4},
                "rotate": B,
            },
            ["path", "reason"],
        )
        | {"not": {"required": ["value", VALUE_BASE64]}},
        response=INCIDENT_REPORT,
    ),
    # -- key providers (issue 13) -------------------------------------------------------------
    ("/v1/sys/kms", "GET"): Op(
        "The key providers: each one's reach and which key-encryption keys it opens, and the"
        " problems found (admin on sys/kms); probe=false calls no provider",
        tag="sys",
        query=(_query("probe", {"enum": ["true", "false"]}, "false: call no provider"),),
        response=KMS_STATUS,
    ),
    # -- operations ---------------------------------------------------------------------------
    ("/v1/sys/health", "GET"): Op(
        "Liveness (Vault-shaped fields too): 503 with `sealed: true` while sealed",
        tag="sys",
        auth=False,
        query=(
            _query(
                "sealedcode",
                {
                    "type": "integer",
                    "minimum": 200,
                    "maximum": 599,
                    "not": {"enum": [204, 205, 304]},
                },
                "the status to answer while sealed (Vault's; a liveness probe: 200)",
            ),
            _query(
                "activecode",
                {
                    "type": "integer",
                    "minimum": 200,
                    "maximum": 299,
                    "not": {"enum": [204, 205, 304]},
                },
                "the status to answer while unsealed (Vault's; default 200; a 2xx)",
            ),
            _query(
                "standbycode",
                {
                    "type": "integer",
                    "minimum": 200,
                    "maximum": 599,
                    "not": {"enum": [204, 205, 304]},
                },
                "Vault's status for a standby: checked, unused (sealbox has no standbys)",
            ),
        ),
        response=resp(
            {
                "status": S,
                "initialized": B,
                "sealed": B,
                "standby": B,
                "version": S,
                "replication_performance_mode": S,
                "replication_dr_mode": S,
                "server_time_utc": I,
                "cluster_name": S,
                "cluster_id": S,
            },
            ["status", "initialized", "sealed", "standby", "version", "server_time_utc"],
        ),
        also_ok={"2XX": "the status `activecode` asked for"},
    ),
    ("/v1/sys/seal-status", "GET"): Op(
        "The seal (Vault's shape: `bao status`): sealed, shares needed and made, progress",
        tag="sys",
        auth=False,
        response=SEAL_STATUS,
    ),
    **{
        ("/v1/sys/unseal", method): Op(
            "Give one unseal share (`key`, a SLIP-39 word list), or `reset: true`; answers the"
            " seal status (Vault's shape: `bao operator unseal`). A bad share is 400, naming"
            " which one it is",
            tag="sys",
            auth=False,
            body=body(
                {
                    "key": {"type": "string", "minLength": 1, "maxLength": 4096},
                    "reset": B,
                    "migrate": B,
                }
            ),
            response=SEAL_STATUS,
        )
        for method in ("PUT", "POST")
    },
    **{
        ("/v1/sys/seal", method): Op(
            "Seal: drop the keys from memory (admin on sys/seal), audited; sealed until unsealed",
            tag="sys",
            ok=204,
        )
        for method in ("PUT", "POST")
    },
    ("/v1/sys/mounts", "GET"): Op(
        "The KV mounts this server serves (`*`: `secret/`) and `sys/`, as Vault's map"
        " (`bao secrets list`)",
        tag=VAULT_SYS,
        response=VAULT_MOUNTS,
    ),
    ("/v1/sys/mounts/{mount}/tune", "GET"): Op(
        "A served KV mount's configuration (Vault's tune answer)",
        tag=VAULT_SYS,
        response=resp({**_ENVELOPE_PROPS, "data": ANY}),
        params={"mount": S},
    ),
    ("/v1/sys/auth", "GET"): Op(
        "The login methods installed, and `token/`, as Vault's map (`bao auth list`)",
        tag=VAULT_SYS,
        response=VAULT_MOUNTS,
    ),
    **{
        ("/v1/sys/capabilities-self", verb): Op(
            "The calling token's capabilities on each of `paths`, in Vault's words, from"
            " its policies (`root` for a root holder, `deny` for none)",
            tag=VAULT_SYS,
            response=ANY,
            body=body({"paths": SL, "path": S}),
        )
        for verb in ("POST", "PUT")
    },
    ("/v1/sys/internal/ui/mounts", "GET"): Op(
        "Every mount by kind (`secret`, `auth`), as Vault's UI lists them",
        tag=VAULT_SYS,
        response=resp({**_ENVELOPE_PROPS, "data": resp({"secret": ANY, "auth": ANY})}),
    ),
    ("/v1/sys/leader", "GET"): Op(
        "Vault's HA leader answer (`bao status` asks it): no standbys",
        tag="sys",
        auth=False,
        response=ANY,
    ),
    ("/v1/sys/ready", "GET"): Op(
        "Readiness: storage and key provider, separately (503 + Retry-After if one is down;"
        " while sealed, each key provider's reachability too)",
        tag="sys",
        auth=False,
        response=resp(
            {"storage": S, "keys": S, "sealed": B, "providers": ANY}, ["storage", "keys"]
        ),
    ),
    ("/v1/openapi.json", "GET"): Op(
        "This document",
        tag="sys",
        auth=False,
        unavailable=False,
        response=resp({"openapi": S, "paths": ANY}),
    ),
    ("/metrics", "GET"): Op(
        "Prometheus metrics (text format)",
        tag="sys",
        auth=False,
        unavailable=False,
        ok_media="text/plain",
        response=S,
    ),
    # -- dynamic database credentials (Vault's database engine and sys/leases) ------------------
    **{
        ("/v1/database/roles/{project}/{env}/{role}", method): Op(
            "Create or replace a credentials role (`db_name`: the admin URL secret's path;"
            " admin on creds/<project>/<env>/<role> and read on the admin secret)",
            tag="leases",
            ok=204,
            body=body(
                {
                    "db_name": S,
                    "creation_statements": STATEMENTS,
                    "revocation_statements": STATEMENTS,
                    "renew_statements": STATEMENTS,
                    "rollback_statements": STATEMENTS,
                    "default_ttl": SPAN,
                    "max_ttl": SPAN,
                    "backend": {"type": "string", "enum": ["postgres", "mysql"]},
                    "username_template": S,
                    "max_leases": {"type": ["integer", "null"], "minimum": 1},
                    "replace": B,
                },
                ["db_name", "creation_statements"],
            ),
        )
        for method in ("POST", "PUT")
    },
    ("/v1/database/roles/{project}/{env}/{role}", "GET"): Op(
        "A credentials role (list on its path)",
        tag="leases",
        response=resp({"data": ANY, "role": ANY}),
    ),
    ("/v1/database/roles/{project}/{env}/{role}", "DELETE"): Op(
        "Delete a credentials role (409 while it has unrevoked leases)", tag="leases", ok=204
    ),
    ("/v1/database/creds/{project}/{env}/{role}", "GET"): Op(
        "New database credentials under a lease (read on creds/<project>/<env>/<role>)",
        tag="leases",
        response=resp(
            {
                "lease_id": S,
                "renewable": B,
                "lease_duration": I,
                "data": LEASE_CREDS,
                "lease": ANY,
            },
            required=["lease_id", "renewable", "lease_duration", "data", "lease"],
        ),
        extra=(409, 502),
    ),
    ("/v1/sys/leases/renew", "PUT"): Op(
        "Renew a lease by `increment` (seconds or a duration), up to its max TTL",
        tag="leases",
        body=body({"lease_id": S, "increment": SPAN}, ["lease_id"]),
        response=resp({"lease_id": S, "renewable": B, "lease_duration": I, "lease": ANY}),
        extra=(502,),
    ),
    ("/v1/sys/leases/revoke", "PUT"): Op(
        "Revoke a lease now: its database user is dropped (`force`: forget it whatever"
        " the database says; admin on the role)",
        tag="leases",
        ok=204,
        body=body({"lease_id": S, "sync": B, "force": B}, ["lease_id"]),
        extra=(502,),
    ),
    ("/v1/sys/leases/lookup", "PUT"): Op(
        "A lease's times and TTL left",
        tag="leases",
        body=body({"lease_id": S}, ["lease_id"]),
        response=resp({"data": ANY}),
    ),
    ("/v1/sys/leases/lookup/{project}/{env}/{role}", "GET"): Op(
        "The live leases of a role you may see (Vault's LIST: `keys`, the ids' last"
        " segments; sealbox's `leases`); `revoked=true` adds revoked ones",
        tag="leases",
        query=(_query("revoked", B, "include revoked leases"),),
        response=resp({"data": ANY, "leases": {"type": "array", "items": ANY}}),
    ),
    **{
        (f"/v1/sys/leases/{action}/{{project}}/{{env}}/{{role}}", "PUT"): Op(
            f"Revoke every lease of a role ({what}; admin on the role)",
            tag="leases",
            ok=204,
            body=body({"prefix": S, "sync": B}),
            extra=(502,),
        )
        for action, what in (
            ("revoke-prefix", "failures stay due for the reaper"),
            ("revoke-force", "forgetting those the database refuses"),
        )
    },
    # -- Vault KV v2 ----------------------------------------------------------------------------
    ("/v1/sys/internal/ui/mounts/{path:path}", "GET"): Op(
        "Mount lookup that every `bao kv` command makes first (`path`: the mount, "
        "optionally followed by `/` and the rest of a KV path)",
        tag=KV,
        response=ENVELOPE,
    ),
    ("/v1/{mount}/data" + KV_PATH, "GET"): Op(
        "KV v2 read",
        tag=KV,
        query=(
            _query(
                "version",
                {"type": "integer", "minimum": 0, "maximum": MAX_INT},
                "a version number (0: the current one)",
            ),
        ),
        response=ENVELOPE,
        not_found=KV_NOT_FOUND,
    ),
    ("/v1/{mount}/data" + KV_PATH, "POST"): Op(
        "KV v2 write (creates the project and environment for a token with admin on them)",
        tag=KV,
        body=KV_DATA_BODY,
        response=ENVELOPE,
    ),
    ("/v1/{mount}/data" + KV_PATH, "PUT"): Op(
        "KV v2 write (as POST)", tag=KV, body=KV_DATA_BODY, response=ENVELOPE
    ),
    ("/v1/{mount}/data" + KV_PATH, "PATCH"): Op(
        "KV v2 patch: a JSON merge patch of the current fields, as a new version "
        "(needs read and write)",
        tag=KV,
        body=KV_DATA_BODY,
        media=MERGE_PATCH,
        response=ENVELOPE,
    ),
    ("/v1/{mount}/data" + KV_PATH, "DELETE"): Op(
        "KV v2 delete latest version (soft)", tag=KV, ok=204
    ),
    ("/v1/{mount}/metadata" + KV_PATH, "GET"): Op(
        "KV v2 metadata; with ?list=true (or method LIST) the keys below the path",
        tag=KV,
        query=(_query("list", B, "list keys"),),
        response=ENVELOPE,
        not_found=KV_NOT_FOUND,
    ),
    **{
        ("/v1/{mount}/metadata" + KV_PATH, method): Op(
            f"KV v2 metadata {what}: version settings and custom_metadata (inventory fields "
            "keep their meaning, other keys are labels); the document need hold no data yet",
            tag=KV,
            ok=204,
            body=KV_METADATA_BODY,
            media=media,
        )
        for method, what, media in (
            ("POST", "write", JSON),
            ("PUT", "write", JSON),
            ("PATCH", "patch", MERGE_PATCH),
        )
    },
    ("/v1/{mount}/metadata" + KV_PATH, "DELETE"): Op(
        "KV v2 delete metadata and every version", tag=KV, ok=204
    ),
    ("/v1/{mount}/config", "GET"): Op(
        "KV v2 mount configuration: the defaults of every document (read on sys/mounts)",
        tag=KV,
        response=ENVELOPE,
    ),
    **{
        ("/v1/{mount}/config", method): Op(
            "KV v2 mount configuration write (admin on sys/mounts; every mount maps to the "
            "same projects, so it is one configuration)",
            tag=KV,
            ok=204,
            body=KV_CONFIG_BODY,
        )
        for method in ("POST", "PUT")
    },
    ("/v1/{mount}/metadata", "GET"): Op(
        "KV v2 list of the mount's top level (projects)",
        tag=KV,
        response=ENVELOPE,
        not_found=KV_NOT_FOUND,
    ),
    **{
        (f"/v1/{{mount}}/{action}" + KV_PATH, method): Op(
            f"KV v2 {action} versions ({what})", tag=KV, ok=204, body=KV_VERSIONS_BODY
        )
        for action, what in (
            ("delete", "soft: reads of them are refused until undeleted"),
            ("undelete", "bring soft-deleted versions back"),
            ("destroy", "for good: the secret versions no other live version uses are deleted"),
        )
        for method in ("POST", "PUT")
    },
}


def doc_template(route_path: str) -> str:
    """The documented path of a route: converters dropped; a KV route's ``{path:path}``
    becomes ``{project}/{env}/{key}``, the mount lookup's just ``{path}``."""
    if route_path.startswith("/v1/{mount}/") and route_path.endswith(KV_PATH):
        route_path = route_path[: -len(KV_PATH)] + "/{project}/{env}/{key}"
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", route_path)


def route_methods(routes: Iterable[BaseRoute]) -> dict[str, set[str]]:
    """Route template -> the methods the router serves there (HEAD included)."""
    out: dict[str, set[str]] = {}
    for route in routes:
        if not isinstance(route, Route):
            raise TypeError(f"{route!r} is not a Route: the OpenAPI document cannot describe it")
        out.setdefault(route.path, set()).update(route.methods or ())
    return out


def allowed_methods(routes: Iterable[BaseRoute], path: str) -> list[str]:
    """What ``Allow`` says for a request path: every method some route serves there (HEAD
    with GET; Vault's LIST is not advertised, it is a GET with ?list=true) — the methods
    the document lists for that path (see :func:`paths`)."""
    methods: set[str] = set()
    for route in routes:
        if isinstance(route, Route) and route.path_regex.match(path):
            methods.update(route.methods or ())
    methods.discard(LIST)
    order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
    return [m for m in order if m in methods]


def paths(
    routes: Iterable[BaseRoute],
    kv_mounts: Sequence[str] = ("*",),
    login_methods: Mapping[str, LoginMethod] | None = None,
) -> dict[str, Any]:
    """The ``paths`` object: every route's methods, each from :data:`OPERATIONS`; the
    login route's also once per installed login method (see :func:`_login_paths`)."""
    out: dict[str, Any] = {}
    used: set[tuple[str, str]] = set()
    for route_path, methods in route_methods(routes).items():
        template = doc_template(route_path)
        item: dict[str, Any] = out.setdefault(template, {})
        for method in sorted(methods - {IMPLIED, LIST}):
            key = (route_path, method)
            if key not in OPERATIONS:
                raise LookupError(f"route {method} {route_path} has no entry in OPERATIONS")
            used.add(key)
            item[method.lower()] = _render(OPERATIONS[key], template, method.lower())
        if LIST in methods:
            if "get" not in item:
                raise LookupError(f"LIST {route_path} has no GET to carry x-vault-list")
            item["get"]["x-vault-list"] = True
        if is_compat_path(template):
            mount = _mount_schema(kv_mounts)
            for op in item.values():
                for param in op.get("parameters", ()):
                    if param["in"] == "path" and param["name"] in ("mount", "path"):
                        param["schema"] = mount
    if login_methods is None:
        login_methods = login_registry.available()
    _login_paths(out, login_methods)
    _shadowed(routes, out)
    unused = sorted(set(OPERATIONS) - used)
    if unused:
        raise LookupError(f"OPERATIONS entries without a route: {unused}")
    return {template: out[template] for template in sorted(out)}


def _login_paths(out: dict[str, Any], methods: Mapping[str, LoginMethod]) -> None:
    """Each installed login method as its own path, with the body its fields make; the
    route's templates then stand for the other names (404), which their ``method``
    parameter says by leaving the listed ones out."""
    listed: dict[str, list[str]] = {}
    for method in methods.values():
        template = login_template(method)
        generic = LOGIN_NAMED_PATH if method.path_field else LOGIN_PATH
        if generic not in out:
            continue  # an app without the login route (a test's partial router)
        op = login_op(method)
        out[template] = {verb: _render(op, template, verb) for verb in out[generic]}
        listed.setdefault(generic, []).append(method.name)
    for generic, names in listed.items():
        for op in out[generic].values():
            for param in op.get("parameters", ()):
                if param["in"] == "path" and param["name"] == "method":
                    param["schema"] = {**param["schema"], "not": {"enum": sorted(names)}}


def _shadowed(routes: Iterable[BaseRoute], out: dict[str, Any]) -> None:
    """A concrete path that a template matches too (``/v1/policies/explain`` and
    ``/v1/policies/{name}``) is served by both: the template's other methods are listed
    under the concrete path (OpenAPI matches a concrete path before a template)."""
    for route in routes:
        assert isinstance(route, Route)
        concrete = route.path
        if "{" in concrete:
            continue
        item = out[doc_template(concrete)]
        for other in routes:
            assert isinstance(other, Route)
            if "{" not in other.path or not other.path_regex.match(concrete):
                continue
            for method in sorted((other.methods or set()) - {IMPLIED, LIST}):
                if method.lower() in item:
                    continue
                op = OPERATIONS[(other.path, method)]
                rendered = _render(op, concrete, method.lower())
                rendered["summary"] = f"{op.summary} (as {doc_template(other.path)})"
                item[method.lower()] = rendered


def document(
    version: str,
    routes: Iterable[BaseRoute],
    kv_mounts: Sequence[str] = ("*",),
    login_methods: Mapping[str, LoginMethod] | None = None,
) -> dict[str, Any]:
    """The OpenAPI document of an app whose router holds ``routes`` and serves
    ``login_methods`` (None: those installed here)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "sealbox",
            "version": version,
            "description": "sealbox server: native API under /v1 and a Vault KV v2 "
            "compatible API. Authenticate with `Authorization: Bearer <token>` or "
            "`X-Vault-Token`. A method a path does not list is answered 405 with an "
            "`Allow` header naming the ones it does (HEAD goes with GET; Vault's LIST is "
            "served as GET with `?list=true` where a GET is marked `x-vault-list`). "
            "An unexpected failure is a 500 whose body names only its request id.",
        },
        "paths": paths(routes, kv_mounts, login_methods),
        "components": {
            "schemas": SCHEMAS,
            "responses": {
                "MethodNotAllowed": {
                    "description": "the path does not take this method",
                    "headers": {"Allow": {"schema": S, "description": "the methods it takes"}},
                    "content": {JSON: {"schema": _ref("Error")}},
                },
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "vaultToken": {"type": "apiKey", "in": "header", "name": "X-Vault-Token"},
            },
        },
        "security": [{"bearer": []}, {"vaultToken": []}],
    }
