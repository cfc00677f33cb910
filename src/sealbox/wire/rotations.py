"""Bodies of ``/v1/rotation/…``: rotation settings, rotation records, ``rotate --due``
outcomes. Names, versions and steps only: no body here ever carries a value."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sealbox.model import (
    DueOutcome,
    DueRotation,
    RotationConfig,
    RotationInfo,
    RotationState,
    SecretRef,
)
from sealbox.wire.fields import (
    WireError,
    field,
    flag,
    integer,
    items,
    obj,
    opt_int,
    opt_text,
    opt_time,
    text,
    text_list,
    time,
)


def encode_config(cfg: RotationConfig) -> dict[str, Any]:
    return cfg.to_json()


def decode_config(data: Any) -> RotationConfig:
    body = obj(data)
    options = obj(field(body, "options"), "options")
    if not all(isinstance(v, str) for v in options.values()):
        raise WireError("rotation options must be text")
    return RotationConfig(
        ref=SecretRef.parse(text(body, "path")),
        method=text(body, "method"),
        options={str(k): str(v) for k, v in options.items()},
        grace=timedelta(seconds=integer(body, "grace_seconds")),
        window=opt_text(body, "window") or "",
        start_offset=timedelta(seconds=integer(body, "start_offset_seconds")),
        notify_url=opt_text(body, "notify_url") or "",
        updated_at=time(body, "updated_at"),
        updated_by=text(body, "updated_by"),
    )


def encode_rotation(info: RotationInfo) -> dict[str, Any]:
    return {**info.to_json(), "owner": info.owner}


def decode_rotation(data: Any) -> RotationInfo:
    body = obj(data, "rotation")
    state = obj(field(body, "rotator_state"), "rotator_state")
    try:
        rotation_state = RotationState(text(body, "state"))
    except ValueError:
        raise WireError(f"unknown rotation state {str(body.get('state'))[:20]!r}") from None
    return RotationInfo(
        id=text(body, "id"),
        ref=SecretRef.parse(text(body, "path")),
        method=text(body, "method"),
        state=rotation_state,
        step=text(body, "step"),
        phase=text(body, "phase"),
        dry_run=flag(body, "dry_run"),
        from_version=opt_int(body, "from_version"),
        pending_version=opt_int(body, "pending_version"),
        started_at=time(body, "started_at"),
        updated_at=time(body, "updated_at"),
        finished_at=opt_time(body, "finished_at"),
        error=opt_text(body, "error") or "",
        tested=opt_text(body, "test") or "",
        notes=tuple(text_list(body, "notes")),
        rotator_state={str(k): str(v) for k, v in state.items()},
        actor=text(body, "actor"),
        owner=opt_text(body, "owner") or "",
    )


def encode_rotations(found: list[RotationInfo]) -> dict[str, Any]:
    return {"rotations": [encode_rotation(r) for r in found]}


def decode_rotations(data: Any) -> list[RotationInfo]:
    return [decode_rotation(r) for r in items(obj(data), "rotations")]


def encode_outcomes(outcomes: list[DueOutcome]) -> dict[str, Any]:
    return {
        "outcomes": [
            {
                "path": o.ref.path,
                "rotation": encode_rotation(o.rotation) if o.rotation else None,
                "skipped": o.skipped or None,
            }
            for o in outcomes
        ]
    }


def decode_outcomes(data: Any) -> list[DueOutcome]:
    out = []
    for o in items(obj(data), "outcomes"):
        rotation = o.get("rotation")
        out.append(
            DueOutcome(
                SecretRef.parse(text(o, "path")),
                decode_rotation(rotation) if rotation is not None else None,
                opt_text(o, "skipped") or "",
            )
        )
    return out


def encode_due(found: list[DueRotation]) -> dict[str, Any]:
    return {"due": [d.to_json() for d in found]}


def decode_due(data: Any) -> list[DueRotation]:
    return [
        DueRotation(
            SecretRef.parse(text(d, "path")),
            text(d, "method"),
            time(d, "due_at"),
            flag(d, "overdue"),
        )
        for d in items(obj(data), "due")
    ]
