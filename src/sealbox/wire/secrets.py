"""Bodies of ``/v1/projects``, ``/v1/secrets`` and ``/v1/resolve``: values, versions, metadata.

A value crosses the wire only here (``encode_read``, ``encode_resolved``); every other
body carries names, versions and metadata, never a value. A value that is UTF-8 text is a
JSON string (``"value"``); any other value is ``"value_base64"`` (standard, padded), so
every value arrives byte for byte (:func:`sealbox.model.value_json`).
"""

from __future__ import annotations

from typing import Any

from sealbox.errors import InvalidInput
from sealbox.model import (
    VALUE_BASE64,
    Secret,
    SecretInfo,
    SecretMeta,
    SecretRef,
    SecretValue,
    Stage,
    VersionInfo,
    value_from_json,
    value_json,
)
from sealbox.wire.fields import (
    WireError,
    field,
    integer,
    iso,
    items,
    obj,
    opt_int,
    opt_text,
    opt_time,
    text,
    text_list,
    time,
)


# -- projects and environments ---------------------------------------------------------------
def encode_projects(names: list[str]) -> dict[str, Any]:
    return {"projects": names}


def decode_projects(data: Any) -> list[str]:
    return text_list(obj(data), "projects")


def encode_envs(names: list[str]) -> dict[str, Any]:
    return {"environments": names}


def decode_envs(data: Any) -> list[str]:
    return text_list(obj(data), "environments")


# -- one secret ------------------------------------------------------------------------------
def encode_read(secret: Secret) -> dict[str, Any]:
    """A read: the one body that carries a value (revealed here, as the API sends it)."""
    return {
        "path": secret.ref.path,
        "version": secret.version,
        **value_json(secret.value),
        "created_at": secret.created_at.isoformat(),
    }


def _value(data: dict[str, Any], where: str) -> SecretValue:
    try:
        return value_from_json(data)
    except InvalidInput as exc:
        raise WireError(f"{where}: {exc.message}") from None


def decode_read(data: Any, ref: SecretRef) -> Secret:
    body = obj(data)
    return Secret(ref, integer(body, "version"), _value(body, "a read"), time(body, "created_at"))


def encode_version(ref: SecretRef, version: int) -> dict[str, Any]:
    """The answer to a write or a rollback: the version it made."""
    return {"path": ref.path, "version": version}


def decode_version(data: Any) -> int:
    return integer(obj(data), "version")


def encode_destroyed(count: int) -> dict[str, Any]:
    """The answer to a purge: how many versions were destroyed."""
    return {"destroyed": count}


def decode_destroyed(data: Any) -> int:
    return integer(obj(data), "destroyed")


# -- metadata, listings, history -----------------------------------------------------------
def _meta_fields(data: Any) -> SecretMeta:
    """A ``meta`` object (:meth:`SecretMeta.to_dict`); null is empty metadata."""
    if data is None:
        return SecretMeta()
    try:
        return SecretMeta.from_dict(obj(data, "meta"))
    except (TypeError, ValueError, AttributeError):
        raise WireError("field 'meta' is not sealbox metadata") from None


def encode_meta(ref: SecretRef, meta: SecretMeta) -> dict[str, Any]:
    return {"path": ref.path, "meta": meta.to_dict()}


def decode_meta(data: Any) -> SecretMeta:
    return _meta_fields(field(obj(data), "meta"))


def encode_info(info: SecretInfo) -> dict[str, Any]:
    """A secret as listings show it."""
    return {
        "path": info.ref.path,
        "name": info.ref.name,
        "version": info.current_version,
        "created_at": iso(info.created_at),
        "updated_at": iso(info.updated_at),
        "deleted_at": iso(info.deleted_at),
        "meta": info.meta.to_dict(),
    }


def decode_info(data: Any) -> SecretInfo:
    body = obj(data, "a secret")
    try:
        ref = SecretRef.parse(text(body, "path"))
    except InvalidInput:
        raise WireError("field 'path' is not a secret path") from None
    return SecretInfo(
        ref=ref,
        current_version=integer(body, "version"),
        created_at=time(body, "created_at"),
        updated_at=time(body, "updated_at"),
        deleted_at=opt_time(body, "deleted_at"),
        meta=_meta_fields(body.get("meta")),
    )


def encode_listing(infos: list[SecretInfo]) -> dict[str, Any]:
    return {"secrets": [encode_info(i) for i in infos]}


def decode_listing(data: Any) -> list[SecretInfo]:
    return [decode_info(d) for d in items(obj(data), "secrets")]


def encode_history(versions: list[VersionInfo]) -> dict[str, Any]:
    """Versions without their values (nor their key ids: :meth:`VersionInfo.to_json`)."""
    return {"versions": [v.to_json() for v in versions]}


def _version_info(v: dict[str, Any]) -> VersionInfo:
    stage = opt_text(v, "stage")
    try:
        parsed = Stage(stage) if stage else None
    except ValueError:
        raise WireError("field 'stage' is not a version stage") from None
    return VersionInfo(
        version=integer(v, "version"),
        stage=parsed,
        created_at=time(v, "created_at"),
        created_by=opt_text(v, "created_by") or "",
        kek_id=opt_text(v, "kek_id") or "",
        rollback_of=opt_int(v, "rollback_of"),
    )


def decode_history(data: Any) -> list[VersionInfo]:
    return [_version_info(v) for v in items(obj(data), "versions")]


# -- resolve ---------------------------------------------------------------------------------
def encode_resolved(values: dict[str, SecretValue]) -> dict[str, Any]:
    """An environment's values by name (``sealbox run`` in remote mode): a UTF-8 value is
    a string, any other one ``{"value_base64": "..."}``."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        as_json = value_json(value)
        out[name] = as_json.get("value", as_json)
    return {"secrets": out}


def decode_resolved(data: Any) -> dict[str, SecretValue]:
    secrets = field(obj(data), "secrets")
    if not isinstance(secrets, dict):
        raise WireError("field 'secrets' is not an object of values")
    out: dict[str, SecretValue] = {}
    for name, value in secrets.items():
        if isinstance(value, str):
            out[str(name)] = SecretValue(value)
        elif isinstance(value, dict) and set(value) == {VALUE_BASE64}:
            out[str(name)] = _value(value, f"secret {str(name)[:80]}")
        else:
            raise WireError("field 'secrets' is not an object of text or value_base64 values")
    return out
