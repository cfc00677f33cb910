"""KV documents: a folder's secrets seen as one Vault KV v2 document (``vault.documents``).

There is one data model. A secret lives at ``project/env/NAME``; an environment is a
folder path (``prod``, ``prod:db``; :data:`~sealbox.model.ROOT_FOLDER` for the project's
own). The KV path ``<project>[/<segment>…]`` names the folder ``<segment>:…`` of the
project (``myapp/prod/db`` is ``myapp/prod:db``; ``myapp`` alone is ``myapp/.``), and the
document there is that folder's live secrets: each key a secret, each value the secret's
value, byte for byte (a JSON string is the value's text; any other JSON value is stored
as its JSON text and read back as that value). So what a Vault client writes is what
``sealbox secret get`` and ``sealbox run`` see, and the reverse.

Vault versions a whole document; sealbox versions each secret. A document version is a
record of which secret version each key had (``sb_document_versions``): a KV write makes
one, writing only the keys whose value changed and deleting the keys it drops; a change
made outside KV (``sealbox secret set``) is folded into a new document version the next
time the document is used. Per-version delete, undelete and destroy, ``max_versions``,
``cas_required`` and ``delete_version_after`` act on those records; destroying a version
removes the secret versions no other live document version still uses. See
docs/server.md, "One data model".
"""

from __future__ import annotations

import contextlib
import json
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sealbox.auth.policy import Capability
from sealbox.errors import AccessDenied, AlreadyExists, Conflict, InvalidInput, NotFound
from sealbox.model import (
    FOLDER_SEGMENT_RE,
    FOLDER_SEP,
    MAX_FOLDER,
    META_FIELDS,
    PROJECT_RE,
    ROOT_FOLDER,
    SecretRef,
    SecretValue,
    validate_name,
    validate_scope,
)
from sealbox.secret_ops import SecretOps
from sealbox.storage.rows import DocumentRow, DocumentVersionRow, VersionRow

TEXT = "text"
JSON = "json"
#: The setting holding the KV mounts' configuration (``<mount>/config``).
CONFIG_SETTING = "kv_config"
#: Who may read and change it.
CONFIG_PATH = "sys/mounts"
CAS_MISMATCH = "check-and-set parameter did not match the current version"
CAS_REQUIRED = "check-and-set parameter required for this call"


class DocSettings(NamedTuple):
    """A document's (or the mounts') version settings; 0 / False: not set."""

    max_versions: int = 0
    cas_required: bool = False
    delete_version_after: int = 0  # seconds
    #: How many times the document's metadata was written (OpenBao's
    #: ``current_metadata_version``); not a setting.
    metadata_version: int = 0

    def to_json(self) -> str:
        return json.dumps(self._asdict())

    @classmethod
    def from_json(cls, text: str | None) -> DocSettings:
        try:
            raw = json.loads(text or "{}")
        except ValueError:
            raw = {}
        if not isinstance(raw, dict):
            raw = {}
        return cls(
            int(raw.get("max_versions", 0) or 0),
            bool(raw.get("cas_required", False)),
            int(raw.get("delete_version_after", 0) or 0),
            int(raw.get("metadata_version", 0) or 0),
        )


class DocVersion(NamedTuple):
    """One version of a document as Vault shows it."""

    version: int
    created_at: datetime
    deletion_time: datetime | None  # set by a delete, or created + delete_version_after
    destroyed: bool


class DocumentRead(NamedTuple):
    """A read: the fields (None when that version is deleted or destroyed) and its state."""

    data: dict[str, Any] | None
    version: DocVersion
    custom_metadata: dict[str, str]
    warnings: tuple[str, ...] = ()


class DocumentMeta(NamedTuple):
    current_version: int
    oldest_version: int
    created_at: datetime
    updated_at: datetime
    settings: DocSettings
    custom_metadata: dict[str, str]
    versions: tuple[DocVersion, ...]


def folder_of(kv_path: str) -> tuple[str, str]:
    """``(project, env)`` of a KV document path (``myapp/prod/db`` -> ``myapp``, ``prod:db``)."""
    parts = kv_path.strip("/").split("/")
    if not parts[0]:
        raise InvalidInput("the KV path names no document")
    project, segments = parts[0], parts[1:]
    if not PROJECT_RE.match(project):
        raise InvalidInput(
            f"KV path segment {project[:64]!r} cannot name a sealbox project: use 1-63"
            " letters, digits, _ . and -, starting with a letter or digit"
        )
    for seg in segments:
        if not FOLDER_SEGMENT_RE.match(seg):
            raise InvalidInput(
                f"KV path segment {seg[:64]!r} cannot name a sealbox folder: use 1-63"
                " letters, digits, _ . and -, starting with a letter, digit or _"
            )
    env = FOLDER_SEP.join(segments) if segments else ROOT_FOLDER
    if len(env) > MAX_FOLDER:
        raise InvalidInput(f"the KV path is too long (a folder path has at most {MAX_FOLDER})")
    return project, env


def kv_path_of(project: str, env: str) -> str:
    """The KV document path of a folder (the inverse of :func:`folder_of`)."""
    return project if env == ROOT_FOLDER else f"{project}/{env.replace(FOLDER_SEP, '/')}"


def _members(row: DocumentVersionRow | None) -> dict[str, list[Any]]:
    if row is None:
        return {}
    try:
        raw = json.loads(row.members)
    except ValueError:
        return {}
    return raw if isinstance(raw, dict) else {}


def _field(value: SecretValue, kind: str, name: str, warnings: list[str]) -> Any:
    if kind == JSON:
        try:
            return json.loads(value.reveal_bytes())
        except ValueError:
            pass
    raw = value.reveal_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        warnings.append(
            f"{name}: the value is not UTF-8 text; KV (JSON) shows it with U+FFFD in place"
            " of the undecodable bytes (sealbox secret get and sealbox run give the bytes)"
        )
        return value.reveal()


class Documents(SecretOps):
    """Vault KV v2 documents over a vault's folders, for one caller."""

    __slots__ = ()

    # -- settings -----------------------------------------------------------------------------
    def config(self) -> DocSettings:
        """The KV mounts' configuration (``<mount>/config``): the defaults of every document."""
        self._authorize(Capability.READ, CONFIG_PATH, "kv.config.read")
        return DocSettings.from_json(self._storage.get_setting(CONFIG_SETTING))

    def set_config(self, settings: DocSettings) -> None:
        self._authorize(Capability.ADMIN, CONFIG_PATH, "kv.config.write")
        self._check_settings(settings)
        self._storage.set_settings({CONFIG_SETTING: settings.to_json()})
        self._record("kv.config.write", CONFIG_PATH)

    def _defaults(self) -> DocSettings:
        return DocSettings.from_json(self._storage.get_setting(CONFIG_SETTING))

    @staticmethod
    def _check_settings(settings: DocSettings) -> None:
        if settings.max_versions < 0:
            raise InvalidInput("max_versions must be 0 (keep every version) or more")
        if settings.delete_version_after < 0:
            raise InvalidInput("delete_version_after must be 0 (never) or a duration")

    def _effective(self, doc: DocumentRow | None, mount_json: str | None = None) -> DocSettings:
        own = DocSettings.from_json(doc.settings if doc else None)
        mount = self._defaults() if mount_json is None else DocSettings.from_json(mount_json)
        return DocSettings(
            own.max_versions or mount.max_versions,
            own.cas_required or mount.cas_required,
            own.delete_version_after or mount.delete_version_after,
        )

    # -- state --------------------------------------------------------------------------------
    def _load(self, project: str, env: str) -> tuple[DocumentRow | None, list[DocumentVersionRow]]:
        found = self._storage.get_document(project, env)
        return (None, []) if found is None else found

    def _live(self, project: str, env: str) -> dict[str, VersionRow]:
        """The folder's live secrets' current versions (ciphertext included: a read of
        the current document version uses them as they are)."""
        try:
            return {r.name: r for r in self._storage.read_current(project, env)}
        except NotFound:
            return {}

    def _state_of(self, row: DocumentVersionRow, settings: DocSettings) -> DocVersion:
        created = datetime.fromisoformat(row.created_at)
        deletion = datetime.fromisoformat(row.deleted_at) if row.deleted_at else None
        if deletion is None and settings.delete_version_after:
            deletion = created + timedelta(seconds=settings.delete_version_after)
        return DocVersion(row.version, created, deletion, row.destroyed)

    def _readable(self, state: DocVersion) -> bool:
        return not state.destroyed and (
            state.deletion_time is None or state.deletion_time > self._clock()
        )

    def _latest(
        self, doc: DocumentRow | None, versions: list[DocumentVersionRow]
    ) -> DocumentVersionRow | None:
        if doc is None or not versions or versions[-1].version != doc.current_version:
            return None
        return versions[-1]

    def _sync(
        self, project: str, env: str
    ) -> tuple[DocumentRow | None, list[DocumentVersionRow], dict[str, VersionRow]]:
        """The document, with the changes made outside KV since its last version folded
        into a new version (so it always shows the folder's live secrets), and those."""
        for _ in range(3):
            doc, versions = self._load(project, env)
            live = self._live(project, env)
            latest = self._latest(doc, versions)
            expected = _members(latest)
            if latest is not None and (latest.destroyed or latest.deleted_at):
                expected = {}
            now = {name: (r.version, r.created_at) for name, r in live.items()}
            if {k: (int(m[0]), str(m[2])) for k, m in expected.items()} == now:
                return doc, versions, live
            if not live and latest is None:
                return doc, versions, live
            members = {
                name: [v, self._kind(expected.get(name), v, created), created]
                for name, (v, created) in now.items()
            }
            try:
                self._append(project, env, doc, members)
            except Conflict:
                continue  # a concurrent writer recorded a version: look again
        doc, versions = self._load(project, env)
        return doc, versions, self._live(project, env)

    @staticmethod
    def _kind(member: list[Any] | None, version: int, created: str) -> str:
        if member is not None and int(member[0]) == version and str(member[2]) == created:
            return str(member[1])
        return TEXT

    def _append(
        self,
        project: str,
        env: str,
        doc: DocumentRow | None,
        members: dict[str, list[Any]],
    ) -> DocumentVersionRow:
        now = self._now()
        base = doc or DocumentRow(project, env, 0, 0, "{}", "{}", now, now)
        row = DocumentVersionRow(
            base.current_version + 1, now, None, False, json.dumps(members, sort_keys=True)
        )
        self._storage.add_document_version(base, row)
        return row

    def _document(
        self, project: str, env: str
    ) -> tuple[DocumentRow, list[DocumentVersionRow], dict[str, VersionRow]]:
        validate_scope("project", project)
        validate_scope("environment", env)
        doc, versions, live = self._sync(project, env)
        if doc is None:
            raise NotFound(f"no KV document at {kv_path_of(project, env)}")
        return doc, versions, live

    # -- reading ------------------------------------------------------------------------------
    def read(self, project: str, env: str, version: int | None = None) -> DocumentRead:
        """A version's fields (the current one by default)."""
        self._authorize(Capability.READ, f"{project}/{env}/*", "read")
        fast = self._read_current(project, env, version)
        if fast is not None:
            return fast
        doc, versions, live = self._document(project, env)
        settings = self._effective(doc)
        wanted = version or doc.current_version
        row = next((v for v in versions if v.version == wanted), None)
        if row is None:
            raise NotFound(f"no version {wanted} of the KV document {kv_path_of(project, env)}")
        state = self._state_of(row, settings)
        custom = self._custom(doc)
        if not self._readable(state):
            return DocumentRead(None, state, custom)
        warnings: list[str] = []
        values = self._open_members(project, env, _members(row), live)
        if values is None:
            # A member's version is gone (destroyed through sealbox, or its secret purged).
            return DocumentRead(None, state._replace(destroyed=True), custom)
        data = {name: _field(value, kind, name, warnings) for name, (value, kind) in values.items()}
        return DocumentRead(data, state, custom, tuple(warnings))

    def _read_current(self, project: str, env: str, version: int | None) -> DocumentRead | None:
        """The hot path: a read of the current version when nothing changed outside KV
        since it was recorded (two statements); None sends the read the general way."""
        validate_scope("project", project)
        validate_scope("environment", env)
        doc, row, mount, rows = self._storage.read_document_head(project, env, CONFIG_SETTING)
        if doc is None or row is None or version not in (None, row.version):
            return None
        if row.destroyed or row.deleted_at:
            return None
        live = {r.name: r for r in rows}
        members = _members(row)
        if {k: (int(m[0]), str(m[2])) for k, m in members.items()} != {
            name: (r.version, r.created_at) for name, r in live.items()
        }:
            return None  # changed natively: the general path records a new version first
        state = self._state_of(row, self._effective(doc, mount or "{}"))
        custom = self._custom(doc)
        if not self._readable(state):
            return DocumentRead(None, state, custom)
        values = self._open_members(project, env, members, live)
        if values is None:
            return None
        warnings: list[str] = []
        data = {name: _field(value, kind, name, warnings) for name, (value, kind) in values.items()}
        return DocumentRead(data, state, custom, tuple(warnings))

    def _open_members(
        self,
        project: str,
        env: str,
        members: dict[str, list[Any]],
        live: dict[str, VersionRow],
    ) -> dict[str, tuple[SecretValue, str]] | None:
        for name in members:
            self._authorize(Capability.READ, f"{project}/{env}/{name}", "read")
        rows = {
            name: live[name]
            for name, m in members.items()
            if name in live and live[name].version == int(m[0])
        }
        wanted = [(name, int(m[0])) for name, m in members.items() if name not in rows]
        if wanted:  # an older version: the secret versions it is made of
            rows.update(
                (r.name, r) for r in self._storage.read_document_members(project, env, wanted)
            )
        if len(rows) != len(members) or any(r.stage == "revoked" for r in rows.values()):
            return None
        out = {name: (self._open(rows[name]), str(m[1])) for name, m in members.items()}
        self._record(
            "read",
            f"{project}/{env}",
            reason=f"KV document, {len(out)} secrets",
            touched=[
                (f"{project}/{env}/{name}", rows[name].version, value.reveal_bytes())
                for name, (value, _) in out.items()
            ],
        )
        return out

    def metadata(self, project: str, env: str) -> DocumentMeta:
        self._authorize(Capability.LIST, f"{project}/{env}/*", "metadata.read")
        doc, versions, _ = self._document(project, env)
        settings = DocSettings.from_json(doc.settings)
        effective = self._effective(doc)
        self._record("metadata.read", f"{project}/{env}")
        return DocumentMeta(
            current_version=doc.current_version,
            oldest_version=doc.oldest_version,
            created_at=datetime.fromisoformat(
                versions[0].created_at if versions else doc.created_at
            ),
            updated_at=datetime.fromisoformat(doc.updated_at),
            settings=settings,
            custom_metadata=self._custom(doc),
            versions=tuple(self._state_of(v, effective) for v in versions),
        )

    @staticmethod
    def _custom(doc: DocumentRow | None) -> dict[str, str]:
        try:
            raw = json.loads(doc.custom) if doc else {}
        except ValueError:
            raw = {}
        return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}

    # -- writing ------------------------------------------------------------------------------
    def write(
        self, project: str, env: str, data: dict[str, Any], *, cas: int | None = None
    ) -> DocVersion:
        """A new version holding exactly ``data`` (keys it drops are deleted)."""
        validate_scope("project", project)
        validate_scope("environment", env)
        if not isinstance(data, dict):
            raise InvalidInput("a KV document's data is a JSON object of fields")
        fields: dict[str, tuple[SecretValue, str]] = {}
        for key, value in data.items():
            try:
                validate_name(key)
            except InvalidInput:
                raise InvalidInput(
                    f"KV key {str(key)[:64]!r} cannot be a sealbox secret name: use letters,"
                    " digits, _ . and -, starting with a letter, digit or _"
                ) from None
            if isinstance(value, str):
                fields[key] = (SecretValue(value), TEXT)
            else:
                text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
                fields[key] = (SecretValue(text), JSON)
        for key in fields:
            self._authorize(Capability.WRITE, f"{project}/{env}/{key}", "write")
        if cas is None and self._effective(self._load(project, env)[0]).cas_required:
            raise InvalidInput(CAS_REQUIRED)
        self._ensure_folder(project, env)
        doc, _, live = self._sync(project, env)
        settings = self._effective(doc)
        current = doc.current_version if doc else 0
        if cas is not None and cas != current:
            raise InvalidInput(CAS_MISMATCH)
        same = {k for k, (value, _) in fields.items() if k in live and self._open(live[k]) == value}
        members: dict[str, list[Any]] = {}
        inventory = self._inventory_changes(self._custom(doc))
        for key, (value, kind) in fields.items():
            ref = SecretRef(project, env, key)
            if key in same:
                members[key] = [live[key].version, kind, live[key].created_at]
                continue
            version = self.set(ref, value)
            if key not in live and inventory:
                self.update_meta(ref, **inventory)
            written = self._storage.read_document_members(project, env, [(key, version)])
            members[key] = [version, kind, written[0].created_at if written else ""]
        for key in sorted(set(live) - set(fields)):
            self.delete(SecretRef(project, env, key))
        for _ in range(3):
            try:
                row = self._append(project, env, doc, members)
                break
            except Conflict:
                if cas is not None:
                    raise InvalidInput(CAS_MISMATCH) from None
                doc, _ = self._load(project, env)
        else:  # pragma: no cover - three concurrent writers in a row
            raise Conflict("the KV document kept changing: retry the write")
        self._record("kv.write", f"{project}/{env}", row.version)
        self._prune(project, env, settings)
        return self._state_of(row, settings)

    def patch(
        self, project: str, env: str, patch: dict[str, Any], *, cas: int | None = None
    ) -> DocVersion:
        """RFC 7386 merge of ``patch`` into the current version, as a new version (``bao kv
        patch``): it reads the current fields, so it needs read as well as write."""
        if not isinstance(patch, dict):
            raise InvalidInput("a KV patch is a JSON object of fields")
        current = self.read(project, env)
        if current.data is None:
            raise NotFound(f"the current version of {kv_path_of(project, env)} is deleted")
        if cas is not None and cas != current.version.version:
            raise InvalidInput(CAS_MISMATCH)
        return self.write(
            project, env, merge_patch(current.data, patch), cas=current.version.version
        )

    def _ensure_folder(self, project: str, env: str) -> None:
        """Create a missing folder for a caller who may write in it, as a Vault write
        creates its path (a missing project needs admin on it, as ``project create``
        does); NotFound otherwise."""
        try:
            self._storage.list_secrets(project, env)
            return
        except NotFound:
            pass
        if not self.principal.can(f"{project}/{env}/*", Capability.WRITE):
            raise NotFound(f"{project}/{env} does not exist")
        if project not in self._storage.list_projects():
            if not self.principal.can(f"{project}/*/*", Capability.ADMIN):
                raise NotFound(
                    f"project {project} does not exist (a KV write creates it only for a"
                    f" token with admin on {project}/*/*)"
                )
            with contextlib.suppress(AlreadyExists):
                self.create_project(project, environments=())
        try:
            self._storage.create_env(project, env, self._now())
        except AlreadyExists:
            return
        self._record("env.create", f"{project}/{env}", reason="created by a KV write")

    # -- metadata -----------------------------------------------------------------------------
    def write_metadata(
        self,
        project: str,
        env: str,
        *,
        max_versions: int | None = None,
        cas_required: bool | None = None,
        delete_version_after: int | None = None,
        custom_metadata: dict[str, str] | None = None,
        merge: bool = False,
    ) -> None:
        """Settings and ``custom_metadata`` of a document, which need not hold data yet.

        ``custom_metadata`` replaces the map (``merge``: keys are merged, ``None`` values
        remove one). Inventory fields among its keys (owner, purpose…) also set those
        fields on every secret of the folder; every other key is kept as a label."""
        validate_scope("project", project)
        validate_scope("environment", env)
        self._authorize(Capability.WRITE, f"{project}/{env}/*", "metadata.write")
        self._ensure_folder(project, env)
        doc, _, live = self._sync(project, env)
        now = self._now()
        doc = doc or DocumentRow(project, env, 0, 0, "{}", "{}", now, now)
        old = DocSettings.from_json(doc.settings)
        new = DocSettings(
            old.max_versions if max_versions is None else max_versions,
            old.cas_required if cas_required is None else cas_required,
            old.delete_version_after if delete_version_after is None else delete_version_after,
            old.metadata_version + 1,
        )
        self._check_settings(new)
        custom = self._custom(doc)
        if custom_metadata is not None:
            merged: dict[str, Any] = dict(custom) if merge else {}
            merged.update(custom_metadata)
            custom = {k: str(v) for k, v in merged.items() if v is not None}
            if len(custom) > 64 or any(len(k) > 128 or len(v) > 512 for k, v in custom.items()):
                raise InvalidInput(
                    "custom_metadata holds at most 64 keys of 128 bytes, values of 512 bytes"
                )
        self._storage.put_document(
            doc._replace(settings=new.to_json(), custom=json.dumps(custom), updated_at=now)
        )
        self._record("metadata.write", f"{project}/{env}")
        inventory = self._inventory_changes(custom) if custom_metadata is not None else {}
        if inventory:
            for name in live:
                self.update_meta(SecretRef(project, env, name), **inventory)
        if new.max_versions and new.max_versions != old.max_versions:
            self._prune(project, env, self._effective(doc._replace(settings=new.to_json())))

    @staticmethod
    def _inventory_changes(custom: dict[str, str]) -> dict[str, Any]:
        """The inventory fields a ``custom_metadata`` map names, as metadata changes."""
        changes: dict[str, Any] = {}
        for key, value in custom.items():
            if key not in META_FIELDS:
                continue
            if key in ("tags", "depends_on"):
                changes[key] = tuple(i.strip() for i in value.split(",") if i.strip())
            elif key == "rotate_every_days":
                if not value.strip():
                    changes[key] = None  # "" clears a field
                elif not value.strip().isdigit():
                    raise InvalidInput("custom_metadata 'rotate_every_days' is a number of days")
                else:
                    changes[key] = int(value)
            elif key == "expires":
                try:
                    changes[key] = datetime.fromisoformat(value) if value else None
                except ValueError:
                    raise InvalidInput("custom_metadata 'expires' is an ISO 8601 time") from None
            else:
                changes[key] = value or None
        return changes

    # -- deleting -----------------------------------------------------------------------------
    def delete_versions(self, project: str, env: str, versions: list[int] | None = None) -> None:
        """Soft-delete versions (the current one by default): reads of them are refused
        until undeleted; deleting the current one also hides the folder's secrets from
        ``sealbox run`` and ``secret get``."""
        self._authorize(Capability.DELETE, f"{project}/{env}/*", "delete")
        doc, rows, _ = self._document(project, env)
        wanted = set(versions) if versions else {doc.current_version}
        now = self._now()
        changed = [
            r._replace(deleted_at=now)
            for r in rows
            if r.version in wanted and not r.destroyed and not r.deleted_at
        ]
        self._storage.update_document_versions(project, env, changed)
        self._record("kv.delete", f"{project}/{env}", reason=_numbers(changed))
        if any(r.version == doc.current_version for r in changed):
            self._hide(project, env, rows[-1])

    def _hide(self, project: str, env: str, row: DocumentVersionRow) -> None:
        """Soft-delete the folder's secrets that make up ``row``: the document's current
        version is gone, so ``sealbox run`` must not deliver it either."""
        live = self._live(project, env)
        for name in _members(row):
            if name in live:
                self.delete(SecretRef(project, env, name))

    def undelete_versions(self, project: str, env: str, versions: list[int]) -> None:
        self._authorize(Capability.DELETE, f"{project}/{env}/*", "undelete")
        doc, rows, _ = self._document(project, env)
        changed = [
            r._replace(deleted_at=None)
            for r in rows
            if r.version in set(versions) and not r.destroyed and r.deleted_at
        ]
        if any(r.version == doc.current_version for r in changed):
            for name, member in _members(rows[-1]).items():
                ref = SecretRef(project, env, name)
                try:
                    self.undelete(ref)
                except (NotFound, Conflict):
                    continue
                if self._storage.get_secret(project, env, name).current_version != int(member[0]):
                    self.delete(ref)  # changed since: not this version's value any more
        self._storage.update_document_versions(project, env, changed)
        self._record("kv.undelete", f"{project}/{env}", reason=_numbers(changed))

    def destroy_versions(self, project: str, env: str, versions: list[int]) -> None:
        """Destroy versions for good: their secret versions that no other live document
        version uses are deleted (never a live secret's current or pending one)."""
        self._authorize(Capability.DELETE, f"{project}/{env}/*", "destroy")
        doc, rows, _ = self._document(project, env)
        changed = [r._replace(destroyed=True) for r in rows if r.version in set(versions)]
        if any(r.version == doc.current_version and not r.deleted_at for r in changed):
            self._hide(project, env, rows[-1])
        self._storage.update_document_versions(project, env, changed)
        self._record("kv.destroy", f"{project}/{env}", reason=_numbers(changed))
        gone = {r.version for r in changed}
        self._wipe(project, env, [r for r in rows if r.version in gone], rows)

    def _wipe(
        self,
        project: str,
        env: str,
        doomed: list[DocumentVersionRow],
        rows: list[DocumentVersionRow],
    ) -> None:
        """Delete the secret versions only ``doomed`` document versions use."""
        doomed_numbers = {r.version for r in doomed}
        kept: set[tuple[str, int]] = set()
        for r in rows:
            if r.version not in doomed_numbers and not r.destroyed:
                kept.update((n, int(m[0])) for n, m in _members(r).items())
        targets: dict[str, set[int]] = {}
        for r in doomed:
            for name, member in _members(r).items():
                if (name, int(member[0])) not in kept:
                    targets.setdefault(name, set()).add(int(member[0]))
        for name, numbers in sorted(targets.items()):
            count = self._storage.destroy_secret_versions(project, env, name, sorted(numbers))
            if count:
                self._record(
                    "destroy", f"{project}/{env}/{name}", reason=f"{count} versions destroyed"
                )

    def _prune(self, project: str, env: str, settings: DocSettings) -> None:
        """Keep the newest ``max_versions`` versions (0: keep every version)."""
        if not settings.max_versions:
            return
        doc, rows = self._load(project, env)
        if doc is None:
            return
        below = doc.current_version - settings.max_versions + 1
        doomed = [r for r in rows if r.version < below]
        if not doomed:
            return
        self._wipe(project, env, doomed, rows)
        self._storage.prune_document_versions(project, env, below)
        self._record("kv.prune", f"{project}/{env}", reason=_numbers(doomed))

    def delete_document(self, project: str, env: str) -> None:
        """Delete the document, every version and every secret of its folder (``metadata``
        DELETE; ``kv metadata delete``). Irreversible."""
        validate_scope("project", project)
        validate_scope("environment", env)
        self._authorize(Capability.DELETE, f"{project}/{env}/*", "purge")
        doc, _ = self._load(project, env)
        try:
            names = [r.name for r in self._storage.list_secrets(project, env, include_deleted=True)]
        except NotFound:
            names = []
        if doc is None and not names:
            raise NotFound(f"no KV document at {kv_path_of(project, env)}")
        for name in names:
            self._purge(SecretRef(project, env, name), Capability.DELETE)
        self._storage.delete_document(project, env)
        self._record("kv.purge", f"{project}/{env}")

    # -- listing ------------------------------------------------------------------------------
    def list_keys(self, kv_prefix: str) -> list[str]:
        """The keys Vault lists under a KV path: ``name`` for a document, ``name/`` for a
        folder with documents below (both when it is both)."""
        prefix = kv_prefix.strip("/")
        if not prefix:
            keys: set[str] = set()
            # Only paths with documents, as in Vault: a listed folder always lists (External
            # Secrets Operator recurses into every "name/" and fails on a 404).
            for project in self.list_projects():
                for env in self._visible_envs(project):
                    keys.add(project if env == ROOT_FOLDER else f"{project}/")
            return sorted(keys)
        project, folder = folder_of(prefix)
        depth = [] if folder == ROOT_FOLDER else folder.split(FOLDER_SEP)
        keys = set()
        for env in self._visible_envs(project):
            if env == ROOT_FOLDER:
                continue
            segs = env.split(FOLDER_SEP)
            if len(segs) <= len(depth) or segs[: len(depth)] != depth:
                continue
            head = segs[len(depth)]
            keys.add(head if len(segs) == len(depth) + 1 else f"{head}/")
        self._record("list", prefix)
        return sorted(keys)

    def _visible_envs(self, project: str) -> list[str]:
        """The folders of a project that hold a document, which the caller may list."""
        try:
            envs = self._storage.list_envs(project)
        except NotFound:
            return []
        visible = [e for e in envs if self.principal.can(f"{project}/{e}/*", Capability.LIST)]
        if not visible and envs and not self.principal.can(f"{project}/*/*", Capability.LIST):
            raise AccessDenied(f"permission denied: list on {project}")
        out = []
        for env in visible:
            if self._storage.list_secrets(project, env, include_deleted=True) or (
                self._storage.get_document(project, env) is not None
            ):
                out.append(env)
        return out


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


def _numbers(rows: list[DocumentVersionRow]) -> str:
    return "versions " + ",".join(str(r.version) for r in rows) if rows else "no version changed"
