"""The OpenAPI 3.1 document of the server (``GET /v1/openapi.json``), written as data.

``tests/integration/test_server_openapi.py`` checks that every route of the app appears
here and every operation here is a route of the app, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


S = {"type": "string"}
I = {"type": "integer"}  # noqa: E741 - a schema, read as "integer"
B = {"type": "boolean"}
NS = {"type": ["string", "null"]}
SL = {"type": "array", "items": S}
ANY = {"type": "object"}


def _op(
    summary: str,
    *,
    tag: str,
    ok: int = 200,
    response: dict[str, Any] | None = None,
    body: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
    auth: bool = True,
    compat: bool = False,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    error = _ref("CompatError" if compat else "Error")
    responses: dict[str, Any] = {}
    if ok == 204:
        responses["204"] = {"description": "done"}
    else:
        content = {JSON: {"schema": response or ANY}}
        responses[str(ok)] = {"description": "success", "content": content}
    for code, text in (
        ("400", "invalid input"),
        ("401", "missing, unknown or expired token"),
        ("403", "denied by policy (never says whether the target exists)"),
        ("404", "not found"),
        ("503", "storage or key provider briefly unavailable (Retry-After)"),
    ):
        if code in ("401", "403") and not auth:
            continue
        responses[code] = {"description": text, "content": {JSON: {"schema": error}}}
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {JSON: {"schema": body}}}
    if params:
        op["parameters"] = params
    if not auth:
        op["security"] = []
    if extra:
        op.update(extra)
    return op


def _path_params(*names: str) -> list[dict[str, Any]]:
    return [{"name": n, "in": "path", "required": True, "schema": S} for n in names]


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


P_ENV = _path_params("project", "env")
P_SECRET = _path_params("project", "env", "name")
P_KV = _path_params("mount", "path")

SCHEMAS: dict[str, Any] = {
    "Error": _obj(
        {"error": _obj({"code": S, "message": S, "request_id": S}, ["code", "message"])},
        ["error"],
    ),
    "CompatError": _obj({"errors": SL}, ["errors"]),
    "Token": _obj({"token": S, "accessor": S, "expires_at": S}, ["token", "accessor"]),
    "Meta": {
        "type": "object",
        "properties": {
            "owner": NS,
            "purpose": NS,
            "classification": NS,
            "rotate_every_days": {"type": ["integer", "null"]},
            "rotation_method": NS,
            "expires": NS,
            "depends_on": SL,
            "contact": NS,
            "upstream": NS,
            "tags": SL,
        },
    },
    "SecretInfo": _obj(
        {
            "path": S,
            "name": S,
            "version": I,
            "created_at": S,
            "updated_at": S,
            "deleted_at": NS,
            "meta": _ref("Meta"),
        }
    ),
    "Identity": {
        "type": "object",
        "properties": {
            "id": S,
            "name": S,
            "kind": S,
            "policies": SL,
            "role_id": S,
            "created_at": S,
            "disabled": B,
        },
    },
    "TokenInfo": {
        "type": "object",
        "properties": {
            "accessor": S,
            "identity": S,
            "policies": SL,
            "auth_method": S,
            "created_at": S,
            "expires_at": S,
            "max_expires_at": S,
            "revoked": B,
            "display": S,
        },
    },
    "Policy": {
        "type": "object",
        "required": ["rules"],
        "properties": {
            "name": S,
            "description": S,
            "rules": {"type": "array", "items": _obj({"path": S, "capabilities": SL})},
        },
    },
    "PathVersion": _obj({"path": S, "version": I}),
}

TOKEN = _ref("Token")


def _paths() -> dict[str, Any]:
    secret = "/v1/secrets/{project}/{env}/{name}"  # noqa: S105 - a path template
    native = {
        # -- auth -------------------------------------------------------------------------------
        "/v1/auth/login": {
            "post": _op(
                "Log in with a name and password",
                tag="auth",
                response=TOKEN,
                auth=False,
                body=_obj({"name": S, "password": S}, ["name", "password"]),
            )
        },
        "/v1/auth/approle/login": {
            "post": _op(
                "Log in with a role id and secret id",
                tag="auth",
                response=TOKEN,
                auth=False,
                body=_obj({"role_id": S, "secret_id": S}, ["role_id", "secret_id"]),
            )
        },
        "/v1/auth/token/self": {
            "get": _op(
                "The calling token",
                tag="auth",
                response=_obj(
                    {"identity": S, "kind": S, "policies": SL, "accessor": S, "expires_at": S}
                ),
            )
        },
        "/v1/auth/token/lookup-self": {
            "get": _op("The calling token, Vault-shaped (for Vault clients)", tag="auth")
        },
        "/v1/auth/token/renew": {
            "post": _op(
                "Extend the calling token (up to its max TTL)",
                tag="auth",
                response=_obj({"expires_at": S}),
                body=_obj({"increment": S}),
            )
        },
        "/v1/auth/token/revoke-self": {"post": _op("Revoke the calling token", tag="auth", ok=204)},
        # -- projects ---------------------------------------------------------------------------
        "/v1/projects": {
            "get": _op(
                "Projects the caller can see", tag="projects", response=_obj({"projects": SL})
            ),
            "post": _op(
                "Create a project",
                tag="projects",
                ok=201,
                body=_obj({"name": S, "environments": SL}, ["name"]),
            ),
        },
        "/v1/projects/{project}/envs": {
            "get": _op(
                "A project's environments",
                tag="projects",
                params=_path_params("project"),
                response=_obj({"environments": SL}),
            ),
            "post": _op(
                "Create an environment",
                tag="projects",
                ok=201,
                params=_path_params("project"),
                body=_obj({"name": S}, ["name"]),
            ),
        },
        # -- secrets ----------------------------------------------------------------------------
        "/v1/secrets/{project}/{env}": {
            "get": _op(
                "Secrets of an environment (names and metadata, never values)",
                tag="secrets",
                params=[*P_ENV, _query("deleted", B, "include soft-deleted secrets")],
                response=_obj({"secrets": {"type": "array", "items": _ref("SecretInfo")}}),
            )
        },
        secret: {
            "get": _op(
                "Read a version's value (current by default)",
                tag="secrets",
                params=[
                    *P_SECRET,
                    _query("version", I, "a version number"),
                    _query("reveal", B, "audit as shown to a person, not a program"),
                ],
                response=_obj({"path": S, "version": I, "value": S, "created_at": S}),
            ),
            "put": _op(
                "Write a new version",
                tag="secrets",
                params=P_SECRET,
                response=_ref("PathVersion"),
                body=_obj({"value": S, "if_version": I}, ["value"]),
            ),
            "delete": _op("Soft-delete a secret", tag="secrets", ok=204, params=P_SECRET),
        },
        secret + "/undelete": {
            "post": _op("Undo a soft delete", tag="secrets", ok=204, params=P_SECRET)
        },
        secret + "/purge": {
            "post": _op(
                "Destroy a secret and every version",
                tag="secrets",
                params=P_SECRET,
                response=_obj({"destroyed": I}),
            )
        },
        secret + "/history": {
            "get": _op(
                "A secret's versions",
                tag="secrets",
                params=P_SECRET,
                response=_obj(
                    {
                        "versions": {
                            "type": "array",
                            "items": _obj(
                                {
                                    "version": I,
                                    "stage": NS,
                                    "created_at": S,
                                    "created_by": S,
                                    "rollback_of": {"type": ["integer", "null"]},
                                }
                            ),
                        }
                    }
                ),
            )
        },
        secret + "/rollback": {
            "post": _op(
                "A new version with an old version's content",
                tag="secrets",
                params=P_SECRET,
                response=_ref("PathVersion"),
                body=_obj({"version": I, "if_version": I}, ["version"]),
            )
        },
        secret + "/meta": {
            "get": _op(
                "A secret's metadata",
                tag="secrets",
                params=P_SECRET,
                response=_obj({"path": S, "meta": _ref("Meta")}),
            ),
            "patch": _op(
                "Change metadata fields (null clears one)",
                tag="secrets",
                params=P_SECRET,
                body=_ref("Meta"),
                response=_obj({"path": S, "meta": _ref("Meta")}),
            ),
        },
        "/v1/resolve/{project}/{env}": {
            "get": _op(
                "Every readable current value of an environment in one round trip (sealbox run)",
                tag="secrets",
                params=[
                    *P_ENV,
                    _query("only", S, "comma-separated names"),
                    _query("purpose", {"enum": ["run", "export", "reveal"]}, "audit purpose"),
                ],
                response=_obj({"secrets": {"type": "object", "additionalProperties": S}}),
            )
        },
        # -- identities -------------------------------------------------------------------------
        "/v1/identities": {
            "get": _op(
                "Identities",
                tag="identities",
                response=_obj({"identities": {"type": "array", "items": _ref("Identity")}}),
            ),
            "post": _op(
                "Create a person or machine identity",
                tag="identities",
                ok=201,
                response=_ref("Identity"),
                body=_obj(
                    {
                        "name": S,
                        "kind": {"enum": ["person", "machine"]},
                        "password": S,
                        "policies": SL,
                    },
                    ["name", "kind"],
                ),
            ),
        },
        "/v1/identities/{name}": {
            "get": _op(
                "An identity",
                tag="identities",
                params=_path_params("name"),
                response=_ref("Identity"),
            ),
            "delete": _op(
                "Delete an identity", tag="identities", ok=204, params=_path_params("name")
            ),
        },
        "/v1/identities/{name}/policies": {
            "put": _op(
                "Replace an identity's policies",
                tag="identities",
                params=_path_params("name"),
                body=_obj({"policies": SL}, ["policies"]),
                response=_ref("Identity"),
            )
        },
        "/v1/identities/{name}/secret-ids": {
            "post": _op(
                "A new secret id for a machine (shown once)",
                tag="identities",
                params=_path_params("name"),
                body=_obj({"uses": I, "ttl": S}),
                response=_obj({"secret_id": S}),
            )
        },
        "/v1/identities/{name}/revoke-tokens": {
            "post": _op(
                "Revoke every token of an identity",
                tag="identities",
                params=_path_params("name"),
                response=_obj({"revoked": I}),
            )
        },
        # -- tokens -----------------------------------------------------------------------------
        "/v1/tokens": {
            "post": _op(
                "Mint a token (for oneself, or for another identity as admin)",
                tag="tokens",
                response=TOKEN,
                body=_obj({"identity": S, "ttl": S, "max_ttl": S, "policies": SL}),
            ),
            "get": _op(
                "Tokens, by accessor",
                tag="tokens",
                params=[_query("identity", S, "only this identity's tokens")],
                response=_obj({"tokens": {"type": "array", "items": _ref("TokenInfo")}}),
            ),
        },
        "/v1/tokens/{accessor}": {
            "delete": _op(
                "Revoke a token by accessor", tag="tokens", ok=204, params=_path_params("accessor")
            )
        },
        # -- policies ---------------------------------------------------------------------------
        "/v1/policies": {
            "get": _op(
                "Policies",
                tag="policies",
                response=_obj({"policies": {"type": "array", "items": _ref("Policy")}}),
            )
        },
        # -- audit ------------------------------------------------------------------------------
        "/v1/audit/log": {
            "post": _op(
                "Audit events matching every filter given, newest first (admin on sys/audit)",
                tag="audit",
                body=_obj(
                    {
                        "secret": S,
                        "identity": S,
                        "since": S,
                        "until": S,
                        "operations": SL,
                        "denied": B,
                        "source": S,
                        "limit": I,
                    }
                ),
                response=_obj({"events": {"type": "array", "items": ANY}}),
            )
        },
        "/v1/audit/who-read": {
            "post": _op(
                "Who received a secret's value (a version, or an exact value by its HMAC)",
                tag="audit",
                body=_obj({"path": S, "version": I, "value_hmac": S, "since": S, "until": S}),
                response=_obj({"events": {"type": "array", "items": ANY}}),
            )
        },
        "/v1/audit/hash": {
            "post": _op(
                "The HMAC audit events carry for a value (the value is not stored)",
                tag="audit",
                body=_obj({"value": S}, ["value"]),
                response=_obj({"hmac": S}),
            )
        },
        "/v1/audit/verify": {
            "post": _op(
                "Walk every audit chain: findings (tampering), notices and a summary",
                tag="audit",
                response=_obj({"findings": SL, "notices": SL, "summary": SL}),
            )
        },
        "/v1/audit/checkpoint": {
            "post": _op(
                "Sign every audit chain head now (Ed25519)",
                tag="audit",
                response=_obj({"checkpoints": {"type": "array", "items": ANY}}),
            )
        },
        "/v1/policies/explain": {
            "post": _op(
                "Explain a decision for an identity, path and capability",
                tag="policies",
                body=_obj(
                    {"identity": S, "path": S, "capability": S}, ["identity", "path", "capability"]
                ),
                response=_obj({"allowed": B, "reason": S, "policy": NS, "rule": ANY}),
            )
        },
        "/v1/policies/{name}": {
            "put": _op(
                "Create or replace a policy",
                tag="policies",
                params=_path_params("name"),
                body=_ref("Policy"),
                response=_ref("Policy"),
            ),
            "get": _op(
                "A policy", tag="policies", params=_path_params("name"), response=_ref("Policy")
            ),
            "delete": _op("Delete a policy", tag="policies", ok=204, params=_path_params("name")),
        },
        # -- operations -------------------------------------------------------------------------
        "/v1/sys/health": {
            "get": _op(
                "Liveness (Vault-shaped fields too)",
                tag="sys",
                auth=False,
                response={
                    "type": "object",
                    "properties": {
                        "status": S,
                        "initialized": B,
                        "sealed": B,
                        "standby": B,
                        "version": S,
                    },
                },
            )
        },
        "/v1/sys/ready": {
            "get": _op(
                "Readiness: storage and key provider, separately (503 + Retry-After if down)",
                tag="sys",
                auth=False,
                response=_obj({"storage": S, "keys": S}),
            )
        },
        "/v1/openapi.json": {"get": _op("This document", tag="sys", auth=False)},
        "/metrics": {
            "get": _op(
                "Prometheus metrics (text format)",
                tag="sys",
                auth=False,
                extra={
                    "responses": {
                        "200": {"description": "metrics", "content": {"text/plain": {"schema": S}}}
                    }
                },
            )
        },
    }
    kv = "vault-kv-v2"
    compat = {
        "/v1/sys/internal/ui/mounts/{path}": {
            "get": _op(
                "Mount lookup that every `bao kv` command makes first",
                tag=kv,
                compat=True,
                params=_path_params("path"),
            )
        },
        "/v1/{mount}/data/{path}": {
            "get": _op(
                "KV v2 read (path = project/env/rest…)",
                tag=kv,
                compat=True,
                params=[*P_KV, _query("version", I, "a version number")],
            ),
            "post": _op("KV v2 write", tag=kv, compat=True, params=P_KV, body=ANY),
            "put": _op("KV v2 write", tag=kv, compat=True, params=P_KV, body=ANY),
            "patch": _op(
                "KV v2 patch: a JSON merge patch of the current fields, as a new version "
                "(Content-Type application/merge-patch+json; needs read and write)",
                tag=kv,
                compat=True,
                params=P_KV,
                body=ANY,
            ),
            "delete": _op(
                "KV v2 delete latest version (soft)", tag=kv, compat=True, ok=204, params=P_KV
            ),
        },
        "/v1/{mount}/metadata/{path}": {
            "get": _op(
                "KV v2 metadata; with ?list=true (or method LIST) the keys below",
                tag=kv,
                compat=True,
                params=[*P_KV, _query("list", B, "list keys")],
                extra={"x-vault-list": True},
            ),
            **{
                method: _op(
                    f"KV v2 metadata {what}: custom_metadata keys set sealbox inventory fields",
                    tag=kv,
                    compat=True,
                    ok=204,
                    params=P_KV,
                    body=ANY,
                )
                for method, what in (("post", "write"), ("put", "write"), ("patch", "patch"))
            },
            "delete": _op(
                "KV v2 delete metadata and every version", tag=kv, compat=True, ok=204, params=P_KV
            ),
        },
        "/v1/{mount}/metadata": {
            "get": _op(
                "KV v2 list of the mount's top level (projects)",
                tag=kv,
                compat=True,
                params=_path_params("mount"),
                extra={"x-vault-list": True},
            )
        },
    }
    for action in ("delete", "undelete", "destroy"):
        op = _op(
            f"KV v2 {action} versions",
            tag=kv,
            compat=True,
            ok=204,
            params=P_KV,
            body=_obj({"versions": {"type": "array", "items": I}}, ["versions"]),
        )
        compat[f"/v1/{{mount}}/{action}/{{path}}"] = {"post": op, "put": op}
    return {**native, **compat}


def document(version: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "sealbox",
            "version": version,
            "description": "sealbox server: native API under /v1 and a Vault KV v2 "
            "compatible API. Authenticate with `Authorization: Bearer <token>` or "
            "`X-Vault-Token`.",
        },
        "paths": _paths(),
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "vaultToken": {"type": "apiKey", "in": "header", "name": "X-Vault-Token"},
            },
        },
        "security": [{"bearer": []}, {"vaultToken": []}],
    }
