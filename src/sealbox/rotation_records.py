"""A rotation's record, as the engine keeps it: who owns it, its id, its settings and
its notes checked and bounded, and the rows turned into the model's values.

Pure helpers of :mod:`sealbox.rotation_ops` (the engine), kept apart so that the engine
module holds the state machine and nothing else.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
from collections.abc import Mapping
from datetime import datetime, timedelta

from sealbox.errors import InvalidInput, RotationFailed
from sealbox.model import RotationConfig, RotationInfo, RotationState, SecretRef
from sealbox.storage.rows import RotationConfigRow, RotationRow

MAX_OPTIONS = 50
MAX_OPTION_VALUE = 1000
MAX_NOTES = 50
MAX_NOTE = 300
MAX_STATE_BYTES = 16 * 1024
OPTION_KEY_RE = re.compile(r"[a-z][a-z0-9_.-]{0,63}\Z")
ROTATION_ID_RE = re.compile(r"rot_[A-Za-z0-9_-]{6,60}\Z")
#: pid -> this process as a rotation owner (a forked child is another owner).
_OWNERS: dict[int, str] = {}


def process_owner() -> str:
    """This process as a rotation's owner: ``host:pid:random``."""
    pid = os.getpid()
    owner = _OWNERS.get(pid)
    if owner is None:
        owner = _OWNERS[pid] = f"{socket.gethostname()}:{pid}:{secrets.token_hex(4)}"
    return owner


def owner_gone(owner: str) -> bool:
    """True when ``owner`` is a process of this host that no longer runs."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return owner != process_owner()  # this pid's earlier life (a reused number)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def new_rotation_id() -> str:
    return "rot_" + secrets.token_hex(8)


def is_rotation_id(text: str) -> bool:
    return bool(ROTATION_ID_RE.match(text))


def ref_of(row: RotationRow) -> SecretRef:
    return SecretRef(row.project, row.env, row.name)


def path_of(cfg: RotationConfigRow) -> str:
    return f"{cfg.project}/{cfg.env}/{cfg.name}"


def newest_first(at: str) -> tuple[float]:
    return (-datetime.fromisoformat(at).timestamp(),)


def load_state(text: str) -> dict[str, str]:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def dump_state(state: Mapping[str, str]) -> str:
    clean = {str(k)[:100]: str(v)[:MAX_OPTION_VALUE] for k, v in state.items()}
    text = json.dumps(clean, sort_keys=True)
    if len(text) > MAX_STATE_BYTES:
        raise RotationFailed("the rotator's notes for this rotation are too large")
    return text


def check_options(options: Mapping[str, str]) -> dict[str, str]:
    if len(options) > MAX_OPTIONS:
        raise InvalidInput(f"at most {MAX_OPTIONS} rotation options")
    out: dict[str, str] = {}
    for key, value in options.items():
        if not isinstance(key, str) or not OPTION_KEY_RE.match(key):
            raise InvalidInput(
                f"invalid rotation option name {str(key)[:40]!r}: lowercase letters, digits, _ . -"
            )
        if not isinstance(value, str) or len(value) > MAX_OPTION_VALUE:
            raise InvalidInput(f"rotation option {key} must be text of at most 1000 characters")
        out[key] = value
    return out


def check_url(url: str) -> str:
    url = url.strip()
    if not url:
        return ""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000:
        raise InvalidInput("the notify URL must be an http or https URL (at most 2000 characters)")
    return url


def config_of(row: RotationConfigRow) -> RotationConfig:
    return RotationConfig(
        ref=SecretRef(row.project, row.env, row.name),
        method=row.method,
        options=json.loads(row.options),
        grace=timedelta(seconds=row.grace_seconds),
        window=row.time_window,
        start_offset=timedelta(seconds=row.start_offset),
        notify_url=row.notify_url,
        updated_at=datetime.fromisoformat(row.updated_at),
        updated_by=row.updated_by,
    )


def info_of(row: RotationRow) -> RotationInfo:
    try:
        notes = tuple(str(n) for n in json.loads(row.notes))
    except (ValueError, TypeError):
        notes = ()
    return RotationInfo(
        id=row.id,
        ref=ref_of(row),
        method=row.method,
        state=RotationState(row.state),
        step=row.step,
        phase=row.phase,
        dry_run=row.dry_run,
        from_version=row.from_version,
        pending_version=row.pending_version,
        started_at=datetime.fromisoformat(row.started_at),
        updated_at=datetime.fromisoformat(row.updated_at),
        finished_at=datetime.fromisoformat(row.finished_at) if row.finished_at else None,
        error=row.error,
        tested=row.tested,
        notes=notes,
        rotator_state=load_state(row.rotator_state),
        actor=row.actor,
        owner=row.owner,
    )
