"""Values of sealbox's data model: secret addresses, versions, metadata, change events,
policies and the audit trail's answers.

A secret lives at ``project/env/NAME``. Every write makes an immutable version; a
secret's metadata (owner, purpose, classification, rotation, expiry…) is not secret and
is what the inventory shows. :class:`SecretValue` wraps plaintext so that it prints as
``***`` unless revealed on purpose.

The core, the storage layer and the SDK all name these values, so this is a leaf: it
imports only :mod:`sealbox.errors` and the standard library (and none of it heavy: it is
on ``sealbox run``'s path).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from sealbox.errors import InvalidInput

#: An environment-variable name (what ``sealbox run`` hands a child, what dotenv files hold).
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: A secret's name: a variable name, or any key a Vault KV document uses that has no ``/``
#: or ``:`` (``api-key``, ``tls.crt``, ``1st``); ``sealbox run`` maps the ones that are no
#: variable name (:func:`variable_name`). See docs/concepts.md, "Names and folders".
SECRET_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")
#: Identities, credential roles and other lowercase names.
SCOPE_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}\Z")
#: A project: upper case too (Vault paths use it), ``.`` (hostnames).
PROJECT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\Z")
#: One segment of an environment's folder path (``prod``, ``db``, ``api.example.com``).
FOLDER_SEGMENT_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}\Z")
#: Between the segments of a folder path: ``prod:db`` is the folder ``db`` of ``prod``
#: (the KV path ``<project>/prod/db``). Not ``/``: a secret's address stays
#: ``project/env/NAME``, three segments, in policies, URLs and the audit trail.
FOLDER_SEP = ":"
#: The environment of a project's own variables (the KV document ``<project>`` itself).
ROOT_FOLDER = "."
MAX_FOLDER = 255
MAX_NAME = 255
#: The largest secret value, in bytes, embedded and remote alike (docs/server.md, "Values").
MAX_VALUE_BYTES = 1024 * 1024
#: The JSON field that carries a value which is not UTF-8 text, as standard padded base64.
VALUE_BASE64 = "value_base64"
DEFAULT_ENVIRONMENTS = ("dev", "staging", "prod")


class SecretValue:
    """Plaintext of a secret. Prints as ``***``; ``reveal()`` is the only way in."""

    __slots__ = ("_value",)

    def __init__(self, value: str | bytes) -> None:
        if isinstance(value, str):
            try:
                value = value.encode("utf-8")
            except UnicodeEncodeError:
                # A lone surrogate ("\ud800" from JSON, undecodable bytes from argv).
                raise InvalidInput(
                    "the secret value is not valid Unicode text (it holds a lone UTF-16 "
                    "surrogate, U+D800-U+DFFF); pass such data as bytes or encode it"
                ) from None
        self._value = bytes(value)

    def reveal(self) -> str:
        """The plaintext as text (UTF-8; undecodable bytes are replaced)."""
        return self._value.decode("utf-8", errors="replace")

    def reveal_bytes(self) -> bytes:
        """The plaintext as bytes."""
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return "SecretValue('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SecretValue):
            return NotImplemented
        import hmac  # NOTE: lazily: hashlib/OpenSSL start-up is on `sealbox run`'s budget

        return hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        # NOTE: hashing would allow equality probes through dict/set membership timing;
        # secret values are not meant to be keys.
        raise TypeError("SecretValue is not hashable")

    def __reduce__(self) -> Any:
        raise TypeError("SecretValue cannot be pickled")


def value_json(value: SecretValue) -> dict[str, str]:
    """A value as sealbox's JSON carries it: ``{"value": text}`` when it is UTF-8 text,
    else ``{"value_base64": "..."}`` — exact bytes either way, never a lossy decoding."""
    raw = value.reveal_bytes()
    try:
        return {"value": raw.decode("utf-8")}
    except UnicodeDecodeError:
        import base64

        return {VALUE_BASE64: base64.b64encode(raw).decode("ascii")}


def value_from_json(data: Mapping[str, Any]) -> SecretValue:
    """The value of a JSON object written by :func:`value_json`: exactly one of ``value``
    (text) and ``value_base64`` (standard base64, padded); else :class:`InvalidInput`."""
    if "value" in data and VALUE_BASE64 in data:
        raise InvalidInput(f"give the value as 'value' or '{VALUE_BASE64}', not both")
    if "value" not in data and VALUE_BASE64 not in data:
        raise InvalidInput(
            f"missing field 'value' (or '{VALUE_BASE64}' for a value that is not UTF-8 text)"
        )
    if "value" in data:
        text = data["value"]
        if not isinstance(text, str):
            raise InvalidInput("field 'value' must be a string")
        return SecretValue(text)
    encoded = data[VALUE_BASE64]
    if not isinstance(encoded, str):
        raise InvalidInput(f"field '{VALUE_BASE64}' must be a string")
    import base64
    import binascii

    try:
        return SecretValue(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError):
        raise InvalidInput(f"field '{VALUE_BASE64}' is not standard, padded base64") from None


def validate_name(name: str) -> str:
    """A secret name: letters, digits, ``_``, ``.`` and ``-``, not starting with . or -."""
    if not isinstance(name, str) or len(name) > MAX_NAME or not SECRET_NAME_RE.match(name):
        raise InvalidInput(
            f"invalid secret name {name!r}: use letters, digits, _ . and -, starting with a"
            " letter, digit or _"
            if isinstance(name, str) and len(name) <= MAX_NAME
            else "invalid secret name: too long or not text",
        )
    return name


def validate_scope(kind: str, value: str) -> str:
    """A project name (:data:`PROJECT_RE`), an environment (a folder path of
    :data:`FOLDER_SEGMENT_RE` segments joined by ``:``, or :data:`ROOT_FOLDER`), or any
    other lowercase name (:data:`SCOPE_RE`)."""
    if kind == "environment":
        if _valid_folder(value):
            return value
        rule = (
            "use segments of 1-63 letters, digits, _ . and - (starting with a letter, digit"
            f" or _) joined by {FOLDER_SEP!r}, or {ROOT_FOLDER!r} for the project's own"
        )
    elif kind == "project":
        if isinstance(value, str) and PROJECT_RE.match(value):
            return value
        rule = "use 1-63 letters, digits, _ . and -, starting with a letter or digit"
    else:
        if isinstance(value, str) and SCOPE_RE.match(value):
            return value
        rule = "use 1-63 lowercase letters, digits, - and _, starting with a letter or digit"
    shown = value[:80] if isinstance(value, str) else type(value).__name__
    raise InvalidInput(f"invalid {kind} name {shown!r}: {rule}")


def _valid_folder(value: object) -> bool:
    if not isinstance(value, str) or len(value) > MAX_FOLDER:
        return False
    if value == ROOT_FOLDER:
        return True
    return all(FOLDER_SEGMENT_RE.match(seg) for seg in value.split(FOLDER_SEP))


def variable_name(name: str) -> str:
    """The environment variable ``sealbox run`` sets for a secret: the name itself when it
    is a variable name, else with each ``.`` and ``-`` as ``_`` and a leading digit
    prefixed by ``_`` (``api-key`` -> ``api_key``, ``1st`` -> ``_1st``)."""
    if NAME_RE.match(name):
        return name
    mapped = name.replace(".", "_").replace("-", "_")
    return mapped if not mapped[:1].isdigit() else "_" + mapped


_V = TypeVar("_V")


def as_variables(values: Mapping[str, _V]) -> dict[str, _V]:
    """Secrets by the variable names :func:`variable_name` gives them; two secrets that
    would set the same variable are an error naming both (nothing is silently lost)."""
    out: dict[str, _V] = {}
    source: dict[str, str] = {}
    for name, value in values.items():
        var = variable_name(name)
        if var in source:
            first, second = sorted((source[var], name))
            raise InvalidInput(
                f"secrets {first!r} and {second!r} would both set the variable {var}:"
                " rename one of them"
            )
        source[var] = name
        out[var] = value
    return out


class _Ref(NamedTuple):
    project: str
    env: str
    name: str


class SecretRef(_Ref):
    """The address of a secret: ``project/env/NAME``, validated on construction."""

    # NOTE: a NamedTuple, not a dataclass: importing dataclasses (inspect, ast, tokenize…)
    # and creating the classes cost ~10 ms of `sealbox run`'s 100 ms budget here.
    __slots__ = ()

    def __new__(cls, project: str, env: str, name: str) -> SecretRef:
        validate_scope("project", project)
        validate_scope("environment", env)
        validate_name(name)
        return super().__new__(cls, project, env, name)

    @property
    def path(self) -> str:
        return f"{self.project}/{self.env}/{self.name}"

    def __str__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"SecretRef({self.project!r}, {self.env!r}, {self.name!r})"

    @classmethod
    def parse(cls, path: str) -> SecretRef:
        """``project/env/NAME``; a longer path is a KV path, its middle segments the
        folder (``myapp/prod/db/password`` is ``myapp/prod:db/password``)."""
        parts = path.split("/")
        if len(parts) < 3:
            raise InvalidInput(f"invalid secret path {path[:200]!r}: expected project/env/NAME")
        if len(parts) > 3:
            if any(FOLDER_SEP in p for p in parts[1:-1]):
                raise InvalidInput(
                    f"invalid secret path {path[:200]!r}: write a folder either with / or"
                    f" with {FOLDER_SEP!r}, not both"
                )
            parts = [parts[0], FOLDER_SEP.join(parts[1:-1]), parts[-1]]
        return cls(*parts)


class Stage(enum.StrEnum):
    """Where a version stands in the secret's life."""

    CURRENT = "current"
    PENDING = "pending"
    PREVIOUS = "previous"
    REVOKED = "revoked"
    ARCHIVED = "archived"


class Classification(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class SecretMeta(NamedTuple):
    """Inventory fields of a secret. Not secret; searchable."""

    owner: str | None = None
    purpose: str | None = None
    classification: Classification | None = None
    rotate_every_days: int | None = None
    rotation_method: str | None = None
    expires: datetime | None = None
    depends_on: tuple[str, ...] = ()
    contact: str | None = None
    upstream: str | None = None
    tags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "purpose": self.purpose,
            "classification": self.classification.value if self.classification else None,
            "rotate_every_days": self.rotate_every_days,
            "rotation_method": self.rotation_method,
            "expires": self.expires.isoformat() if self.expires else None,
            "depends_on": list(self.depends_on),
            "contact": self.contact,
            "upstream": self.upstream,
            "tags": list(self.tags),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SecretMeta:
        cls_value = data.get("classification")
        expires = data.get("expires")
        return cls(
            owner=data.get("owner"),
            purpose=data.get("purpose"),
            classification=Classification(cls_value) if cls_value else None,
            rotate_every_days=data.get("rotate_every_days"),
            rotation_method=data.get("rotation_method"),
            expires=datetime.fromisoformat(expires) if expires else None,
            depends_on=tuple(data.get("depends_on") or ()),
            contact=data.get("contact"),
            upstream=data.get("upstream"),
            tags=tuple(data.get("tags") or ()),
        )


class VersionInfo(NamedTuple):
    """One version of a secret, without its value."""

    version: int
    stage: Stage | None
    created_at: datetime
    created_by: str
    kek_id: str
    rollback_of: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The version as the API and `secret history --json` show it (no key id)."""
        return {
            "version": self.version,
            "stage": self.stage.value if self.stage else None,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "rollback_of": self.rollback_of,
        }


class SecretInfo(NamedTuple):
    """A secret as a listing shows it: name, metadata and version state, never the value."""

    ref: SecretRef
    current_version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
    meta: SecretMeta = SecretMeta()


class Secret(NamedTuple):
    """A secret's value at one version."""

    ref: SecretRef
    version: int
    value: SecretValue
    created_at: datetime


META_FIELDS = frozenset(SecretMeta._fields)


#: The longest duration anything takes (a TTL, a grace window, an offset): 100 years.
#: Past it a number is a mistake, and Python's timedelta overflows not far beyond.
MAX_DURATION_SECONDS = 100 * 365 * 86400


def seconds_span(seconds: int, what: str) -> timedelta:
    """``seconds`` (0 to :data:`MAX_DURATION_SECONDS`) as a timedelta; InvalidInput naming
    ``what`` otherwise."""
    if not 0 <= seconds <= MAX_DURATION_SECONDS:
        raise InvalidInput(f"{what} must be 0 to {MAX_DURATION_SECONDS} seconds (100 years)")
    return timedelta(seconds=seconds)


def parse_duration(text: str) -> timedelta:
    """``90d``, ``8h``, ``30m``, ``45s`` or ``2w``."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    text = text.strip().lower()
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        raise InvalidInput(
            f"invalid duration {text[:40]!r}: use a number and s, m, h, d or w (e.g. 8h)"
        )
    seconds = int(text[:-1]) * units[text[-1]]
    if seconds <= 0:
        raise InvalidInput("a duration must be positive")
    if seconds > MAX_DURATION_SECONDS:
        raise InvalidInput("a duration must be at most 100 years")
    return timedelta(seconds=seconds)


class ChangeEvent(NamedTuple):
    """A secret changed (for live updates). Names and versions only, never a value."""

    project: str
    env: str
    name: str
    version: int | None
    op: str  # write | rollback | delete | undelete | purge

    @property
    def path(self) -> str:
        return f"{self.project}/{self.env}/{self.name}"


# -- access: the data shape of policies (the engine that decides is auth/policy.py) ------------
class Capability(enum.StrEnum):
    READ = "read"
    LIST = "list"
    WRITE = "write"
    DELETE = "delete"
    ROTATE = "rotate"
    ADMIN = "admin"


GRANTS = frozenset(Capability)
#: The pseudo-capability that makes a rule refuse what it lists.
DENY = "deny"


class Rule(NamedTuple):
    path: str
    capabilities: frozenset[Capability]
    deny: bool = False

    def to_dict(self) -> dict[str, Any]:
        caps = sorted(c.value for c in self.capabilities)
        return {"path": self.path, "capabilities": [*caps, DENY] if self.deny else caps}


class Policy(NamedTuple):
    name: str
    rules: tuple[Rule, ...]
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "rules": [r.to_dict() for r in self.rules],
        }

    def to_json(self) -> str:
        import json  # NOTE: lazily, like hmac above: model.py is on `sealbox run`'s path

        return json.dumps(self.to_dict(), sort_keys=True)


class Decision(NamedTuple):
    allowed: bool
    capability: Capability
    path: str
    policy: str | None
    rule: Rule | None
    reason: str

    def explain(self) -> str:
        verdict = "ALLOW" if self.allowed else "DENY"
        return f"{verdict} {self.capability.value} on {self.path}: {self.reason}"


# -- the audit trail's answers ------------------------------------------------------------------
class Verification(NamedTuple):
    """What ``audit verify`` found."""

    findings: list[str]  # tampering: verify exits 7 on the first
    notices: list[str]  # worth knowing, not tampering (crash-cut lines, unkeyed tails)
    summary: list[str]


class CheckpointRow(NamedTuple):
    """A signed statement that a node's chain had ``hash`` at ``seq`` (stored as it is)."""

    node: str
    seq: int
    hash: str
    at: str
    signature: str  # hex Ed25519 signature
    key_id: str  # fingerprint of the public key
    #: seq of the node's checkpoint before this one (0: the first); -1: a checkpoint from
    #: before schema 7, which did not sign it.
    prev_seq: int = -1


# -- rotation (issue 12): what the rotation service and its front ends show ---------------------
class RotationState(enum.StrEnum):
    """Where a rotation stands. ``running``, ``pending`` and ``failed`` are unfinished
    (the secret's one open rotation: resume or cancel it); the others are final."""

    RUNNING = "running"  # a process is running its steps (or crashed while it did)
    PENDING = "pending"  # the upstream system was unreachable: resume retries the step
    FAILED = "failed"  # a step failed (test refused the new value, a rotator raised)
    SUCCEEDED = "succeeded"
    CANCELLED = "cancelled"
    REHEARSED = "rehearsed"  # a dry run, undone


OPEN_ROTATION_STATES = frozenset(
    {RotationState.RUNNING, RotationState.PENDING, RotationState.FAILED}
)


def _url_origin(url: str) -> str:
    """``scheme://host[:port]/…`` of a URL: where it goes, without its path or query."""
    scheme, sep, rest = url.partition("://")
    host = rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    return f"{scheme}{sep}{host}/…" if sep else "…"


class RotationConfig(NamedTuple):
    """How a secret is rotated (not secret)."""

    ref: SecretRef
    method: str
    options: dict[str, str]
    grace: timedelta  # how long the previous version stays readable after a promotion
    window: str  # "HH:MM-HH:MM" UTC in which scheduled rotations start; "" for any time
    start_offset: timedelta  # after the window opens
    notify_url: str  # "" for none
    updated_at: datetime
    updated_by: str

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.ref.path,
            "method": self.method,
            "options": dict(self.options),
            "grace_seconds": int(self.grace.total_seconds()),
            "window": self.window or None,
            "start_offset_seconds": int(self.start_offset.total_seconds()),
            # NOTE: only where it goes: a webhook URL often carries its token in the path.
            "notify_url": _url_origin(self.notify_url) if self.notify_url else None,
            "updated_at": self.updated_at.isoformat(),
            "updated_by": self.updated_by,
        }


class RotationInfo(NamedTuple):
    """One rotation as recorded (names, versions and steps; never a value)."""

    id: str
    ref: SecretRef
    method: str
    state: RotationState
    step: str
    phase: str
    dry_run: bool
    from_version: int | None
    pending_version: int | None
    started_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    error: str
    tested: str  # "", "passed" or "failed"
    notes: tuple[str, ...]
    rotator_state: dict[str, str]
    actor: str
    owner: str

    @property
    def open(self) -> bool:
        return self.state in OPEN_ROTATION_STATES

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": self.ref.path,
            "method": self.method,
            "state": self.state.value,
            "step": self.step,
            "phase": self.phase,
            "dry_run": self.dry_run,
            "from_version": self.from_version,
            "pending_version": self.pending_version,
            "started_at": self.started_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "error": self.error or None,
            "test": self.tested or None,
            "notes": list(self.notes),
            "rotator_state": dict(self.rotator_state),
            "actor": self.actor,
        }


class DueRotation(NamedTuple):
    """A secret whose scheduled rotation is due (or overdue: its window passed unrotated)."""

    ref: SecretRef
    method: str
    due_at: datetime
    overdue: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.ref.path,
            "method": self.method,
            "due_at": self.due_at.isoformat(),
            "overdue": self.overdue,
        }


class DueOutcome(NamedTuple):
    """What ``rotate --due`` did for one due secret."""

    ref: SecretRef
    rotation: RotationInfo | None
    skipped: str  # why it was not started ("" when it was)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.ref.path,
            "rotation": self.rotation.to_json() if self.rotation else None,
            "skipped": self.skipped or None,
        }


class Reader(NamedTuple):
    """One identity that received affected versions, from one place."""

    identity: str
    source: str
    hostname: str | None
    remote_addr: str | None
    reads: int
    first_at: str
    last_at: str
    versions: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {**self._asdict(), "versions": list(self.versions)}


class IncidentReport(NamedTuple):
    """What ``vault.incident`` (:mod:`sealbox.incident`) found (never a value)."""

    ref: SecretRef
    reason: str
    at: datetime
    current_version: int
    #: (version, stage) of every version of the secret.
    versions: tuple[tuple[int, str | None], ...]
    #: The versions the incident is about.
    affected: tuple[int, ...]
    #: None: no value given; True/False: the leaked value is / is not a version of ``ref``.
    value_matched: bool | None
    #: Other secrets (path, version) holding the leaked value.
    also_holding: tuple[tuple[str, int], ...]
    readers: tuple[Reader, ...]
    meta: SecretMeta
    #: Whom to redeploy: the metadata's dependents, then each identity that read.
    redeploy: tuple[str, ...]
    #: What a response did (rotation, revoked versions, leases), one line each.
    actions: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "secret": self.ref.path,
            "reason": self.reason,
            "at": self.at.isoformat(),
            "current_version": self.current_version,
            "versions": [{"version": v, "stage": s} for v, s in self.versions],
            "affected_versions": list(self.affected),
            "value_matched": self.value_matched,
            "also_holding": [{"secret": p, "version": v} for p, v in self.also_holding],
            "readers": [r.to_json() for r in self.readers],
            "owner": self.meta.owner,
            "contact": self.meta.contact,
            "upstream": self.meta.upstream,
            "classification": (
                self.meta.classification.value if self.meta.classification else None
            ),
            "depends_on": list(self.meta.depends_on),
            "redeploy": list(self.redeploy),
            "actions": list(self.actions),
        }


# -- key providers (issue 13): what `vault.kms` and its front ends show ---------------------------
class KeyProviderInfo(NamedTuple):
    """A key provider the vault's KEKs are wrapped under (its config is not secret)."""

    name: str
    kind: str
    #: The order providers are tried in when the vault is opened (lowest first).
    position: int
    created_at: str
    config: Mapping[str, Any]


class KekInfo(NamedTuple):
    """One key-encryption key version, and how many data keys it wraps."""

    kek_id: str
    created_at: str
    active: bool
    versions: int


class ProviderStatus(NamedTuple):
    """What one provider can do now: reach its key, and open which KEKs.

    ``reachable`` is None when it was not tried (it needs a person: a passphrase, shares).
    ``wraps`` are the KEKs it holds a wrapping of; ``opens`` those it was seen to open
    (unwrapped and compared with the KEK in memory); ``missing`` the KEKs it holds no
    wrapping of.
    """

    name: str
    kind: str
    key_id: str
    reachable: bool | None
    error: str
    wraps: tuple[str, ...]
    opens: tuple[str, ...]
    missing: tuple[str, ...]


class KmsStatus(NamedTuple):
    """The key hierarchy's state: KEK versions, each provider's reach, the problems found
    (a configuration and the stored wrappings never silently disagree)."""

    keks: tuple[KekInfo, ...]
    providers: tuple[ProviderStatus, ...]
    problems: tuple[str, ...]


class KmsAdded(NamedTuple):
    """A provider just added; ``shares`` are recovery shares to show once (a shamir provider)."""

    provider: KeyProviderInfo
    shares: tuple[SecretValue, ...] = ()


class RewrapProgress(NamedTuple):
    """How far a KEK rotation's re-wrap of data keys is (``vault.kms_rotation``).

    ``total`` is an estimate taken when the re-wrap started (versions written meanwhile
    may add to it); ``phase`` is ``rewrap`` (the first pass), ``final`` (a pass from the
    start again, for versions written under the old KEK meanwhile) or ``wait`` (waiting
    for running servers to see the new KEK before old ones are retired).
    """

    kek_id: str
    done: int
    total: int
    phase: str


class KekRotated(NamedTuple):
    """What ``kms rotate`` did. ``complete`` is False when it was asked to stop between
    batches (the re-wrap resumes where it stopped); ``remaining`` is how many data keys
    are not yet under ``kek_id`` then."""

    kek_id: str
    #: False when an unfinished rotation was resumed (no new KEK made).
    created: bool
    rewrapped: int
    #: Audit keys (the event key, the checkpoint signing key) re-wrapped under ``kek_id``.
    audit_keys: int
    #: Providers whose KEK wrappings were re-wrapped under their newest key.
    providers_rewrapped: tuple[str, ...]
    retired: tuple[str, ...]
    complete: bool
    remaining: int


class KmsMigrated(NamedTuple):
    """What ``kms migrate`` did: the provider moved onto, and the providers dropped."""

    to: str
    added: bool
    removed: tuple[str, ...]
    kept: tuple[str, ...]
    #: Recovery shares of a provider just added (a shamir provider), to show once.
    shares: tuple[SecretValue, ...] = ()
