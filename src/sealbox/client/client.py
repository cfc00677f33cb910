"""``sealbox.Client``: the remote twin of the embedded :class:`~sealbox.vault.Vault`.

It satisfies the same :class:`~sealbox.api.VaultAPI` Protocol over the server's native
HTTP API, raising the same :class:`~sealbox.errors.SealboxError` classes (by the stable
``code`` of the server's error body). Reads of values can be cached in memory (``cache_ttl``)
and, with ``offline=True``, kept encrypted on disk and served when the server cannot be
reached, up to ``offline_max_age`` old (a warning on the ``sealbox.client`` logger says so).
``watch()`` follows a server's change stream and calls back within about a second.

The token is never part of a message, a log line or the ``repr``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sealbox.client.cache import DiskCache, Entry, MemoryCache, describe_age, now
from sealbox.client.errors import BadReply, reading
from sealbox.client.transport import Transport, path_of
from sealbox.errors import (
    AuthenticationFailed,
    BackendUnavailable,
    InvalidInput,
    KeyProviderError,
    SealboxError,
    Sealed,
)
from sealbox.model import (
    DEFAULT_ENVIRONMENTS,
    MAX_VALUE_BYTES,
    ChangeEvent,
    CheckpointRow,
    Secret,
    SecretInfo,
    SecretMeta,
    SecretRef,
    SecretValue,
    Stage,
    Verification,
    VersionInfo,
    validate_name,
    validate_scope,
    value_json,
)
from sealbox.wire import audit as wire_audit
from sealbox.wire import secrets as wire

if TYPE_CHECKING:
    from sealbox.client.accounts import RemoteAccounts
    from sealbox.client.audit import RemoteAudit
    from sealbox.client.leases import RemoteLeases
    from sealbox.client.rotations import RemoteRotations
    from sealbox.client.watch import Watch
    from sealbox.model import IncidentReport, KmsStatus


def _log() -> Any:
    # NOTE: `logging` costs ~5 ms to import; `sealbox run` only needs it to warn.
    import logging

    return logging.getLogger("sealbox.client")


DEFAULT_CACHE_TTL = 10.0
DEFAULT_OFFLINE_MAX_AGE = timedelta(hours=24)
#: Server conditions in which a cached copy may stand in (the server says "retry shortly").
UNAVAILABLE = (BackendUnavailable, KeyProviderError, Sealed)
#: Purposes of ``resolve`` whose answers may be cached (a reveal is shown to a person and
#: must reach the server's audit trail every time).
CACHED_PURPOSES = ("run", "export")
#: What the server answers (400, on its Vault path) to a wrong role id or secret id.
APPROLE_REFUSED = "invalid role or secret ID"


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class Client:
    """A sealbox server, used like an embedded vault.

    ``Client(addr, token)``, or log in with :meth:`login_password` / :meth:`login_approle`.
    """

    def __init__(
        self,
        addr: str,
        token: str,
        *,
        cache_ttl: float | timedelta = DEFAULT_CACHE_TTL,
        offline: bool = False,
        offline_max_age: float | timedelta = DEFAULT_OFFLINE_MAX_AGE,
        prefer_offline: bool = False,
        cache_dir: Path | None = None,
        cacert: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._transport = Transport(addr, cacert=cacert, timeout=timeout)
        if not isinstance(token, str) or not token.strip():
            raise AuthenticationFailed(
                f"no token for the sealbox server at {self._transport.where}",
                hint="set SEALBOX_TOKEN, or log in to the server",
                hint_key="login",
            )
        self._token = token.strip()
        self.cache_ttl = _seconds(cache_ttl)
        self.offline = offline or prefer_offline
        self.offline_max_age = _seconds(offline_max_age)
        self.prefer_offline = prefer_offline
        self._memory = MemoryCache()
        self._disk: DiskCache | None = None
        if self.offline:
            if cache_dir is None:
                import os

                from sealbox.client.cache import cache_dir as default_dir
                from sealbox.files import default_home

                cache_dir = default_dir(default_home(os.environ))
            self._disk = DiskCache(cache_dir, self._token, self._transport.where)
        self._watches: list[Watch] = []
        self._accounts: RemoteAccounts | None = None

    # -- identity of the client ------------------------------------------------------------------
    @property
    def address(self) -> str:
        """The server's address (as shown in messages)."""
        return self._transport.where

    @property
    def token(self) -> SecretValue:
        """The token, wrapped: ``client.token.reveal()`` to store it (``sealbox login``)."""
        return SecretValue(self._token)

    def __repr__(self) -> str:
        return f"Client(addr={self.address!r}, token='***')"

    def __reduce__(self) -> Any:
        raise TypeError("Client cannot be pickled (it holds a token)")

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- logging in ------------------------------------------------------------------------------
    @classmethod
    def login_password(cls, addr: str, name: str, password: str, **options: Any) -> Client:
        """Log in as a person; the new token is in ``client.token``."""
        transport = Transport(
            addr, cacert=options.get("cacert"), timeout=options.get("timeout", 10.0)
        )
        try:
            data = transport.call(
                "POST", "/v1/auth/login", token=None, body={"name": name, "password": password}
            )
        finally:
            transport.close()
        return cls._logged_in(addr, data, transport.where, options)

    @classmethod
    def login_approle(cls, addr: str, role_id: str, secret_id: str, **options: Any) -> Client:
        """Log in as a machine (role id + secret id); the new token is in ``client.token``."""
        transport = Transport(
            addr, cacert=options.get("cacert"), timeout=options.get("timeout", 10.0)
        )
        try:
            data = transport.call(
                "POST",
                "/v1/auth/approle/login",
                token=None,
                body={"role_id": role_id, "secret_id": secret_id},
            )
        except InvalidInput as exc:
            # A Vault path: Vault answers wrong credentials 400; the SDK says what it is.
            if exc.message == APPROLE_REFUSED:
                raise AuthenticationFailed(exc.message) from None
            raise
        finally:
            transport.close()
        return cls._logged_in(addr, data, transport.where, options)

    @classmethod
    def _logged_in(cls, addr: str, data: Any, where: str, options: dict[str, Any]) -> Client:
        from sealbox.wire.accounts import decode_login

        with reading(where, "login"):
            token, info = decode_login(data)
        client = cls(addr, token, **options)
        client.login_info = info
        return client

    login_info: dict[str, Any] | None = None

    def token_self(self) -> dict[str, Any]:
        """The token's own entry: identity, kind, policies, accessor, expires_at."""
        data = self._call("GET", "/v1/auth/token/self")
        with reading(self.address, "token/self"):
            if not isinstance(data, dict) or "identity" not in data:
                raise KeyError("identity")
        result: dict[str, Any] = data
        return result

    def renew(self, increment: timedelta | None = None) -> str:
        """Extend the token (up to its max TTL); returns the new expiry (ISO time)."""
        from sealbox.client.accounts import duration

        body = {"increment": duration(increment)} if increment else {}
        data = self._call("POST", "/v1/auth/token/renew", body=body)
        with reading(self.address, "token/renew"):
            expires: str = data["expires_at"]
        return expires

    def revoke_self(self) -> None:
        """Revoke this client's token (``sealbox logout``) and forget its offline copies."""
        self._call("POST", "/v1/auth/token/revoke-self", body={})
        self.wipe_offline_cache()

    def wipe_offline_cache(self) -> int:
        """Forget every cached read of this token, in memory and on disk (on logout, and
        when a version is revoked); returns how many disk copies went."""
        self._memory.clear()
        return self._disk.wipe() if self._disk is not None else 0

    # -- plumbing ---------------------------------------------------------------------------------
    def _call(
        self, method: str, path: str, *, body: Any = None, query: dict[str, Any] | None = None
    ) -> Any:
        return self._transport.call(method, path, token=self._token, body=body, query=query)

    def _read(self, key: str | None, what: str, fetch: Callable[[], Any]) -> Any:
        """A cacheable read: memory (TTL), then the server, then an offline copy if allowed."""
        if key is None:
            return fetch()
        t = now()
        entry = self._memory.get(key)
        if entry is not None and entry.age(t) <= self.cache_ttl:
            return entry.data
        if self.prefer_offline:
            copy = entry or (self._disk.get(key) if self._disk else None)
            if copy is not None and copy.age(t) <= self.offline_max_age:
                _log().info(
                    "served %s from the offline cache (%s old, --prefer-offline)",
                    what,
                    describe_age(copy.age(t)),
                )
                return copy.data
        try:
            data = fetch()
        except UNAVAILABLE as exc:
            if not self.offline:
                raise
            copy = entry or (self._disk.get(key) if self._disk else None)
            if copy is None:
                raise type(exc)(
                    f"{exc.message}; no offline copy of {what} is cached",
                    hint=exc.hint,
                    hint_key=exc.hint_key,
                    hint_args=exc.hint_args,
                ) from exc
            age = copy.age(t)
            if age > self.offline_max_age:
                raise type(exc)(
                    f"{exc.message}; the offline copy of {what} is {describe_age(age)} old, "
                    f"more than the {describe_age(self.offline_max_age)} allowed",
                    hint="raise offline_max_age (SEALBOX_OFFLINE_MAX_AGE) to accept older data",
                ) from exc
            _log().warning(
                "sealbox server at %s unavailable (%s); served STALE data for %s from the "
                "offline cache, fetched %s ago",
                self.address,
                exc.code,
                what,
                describe_age(age),
            )
            return copy.data
        fresh = Entry(data, t)
        self._memory.put(key, fresh)
        if self._disk is not None:
            self._disk.put(key, fresh)
        return data

    def invalidate(self, project: str, env: str, name: str | None = None) -> None:
        """Forget cached reads of an environment (or of one secret and the environment's
        resolves). Called on this client's writes and on change events."""
        scope = f"|{project}/{env}|"
        exact = f"|{project}/{env}/{name}|" if name else None

        def match(key: str) -> bool:
            if key.startswith("resolve") and scope in key:
                return True
            return key.startswith("get") and (
                (exact is None and f"|{project}/{env}/" in key)
                or (exact is not None and exact in key)
            )

        self._memory.drop(match)

    def close(self) -> None:
        for w in list(self._watches):
            w.stop()
        self._watches.clear()
        self._transport.close()

    # -- projects and environments -------------------------------------------------------------
    def create_project(
        self, project: str, *, environments: tuple[str, ...] = DEFAULT_ENVIRONMENTS
    ) -> None:
        validate_scope("project", project)
        for env in environments:
            validate_scope("environment", env)
        self._call(
            "POST", "/v1/projects", body={"name": project, "environments": list(environments)}
        )

    def list_projects(self) -> list[str]:
        data = self._call("GET", "/v1/projects")
        with reading(self.address, "projects"):
            return wire.decode_projects(data)

    def create_env(self, project: str, env: str) -> None:
        validate_scope("project", project)
        validate_scope("environment", env)
        self._call("POST", path_of("v1", "projects", project, "envs"), body={"name": env})

    def list_envs(self, project: str) -> list[str]:
        validate_scope("project", project)
        data = self._call("GET", path_of("v1", "projects", project, "envs"))
        with reading(self.address, "environments"):
            return wire.decode_envs(data)

    # -- secrets ---------------------------------------------------------------------------------
    @staticmethod
    def _secret_path(ref: SecretRef, *rest: str) -> str:
        return path_of("v1", "secrets", ref.project, ref.env, ref.name, *rest)

    def set(self, ref: SecretRef, value: SecretValue, *, if_version: int | None = None) -> int:
        if len(value) > MAX_VALUE_BYTES:
            raise InvalidInput(f"the value for {ref} is larger than {MAX_VALUE_BYTES} bytes")
        if if_version is not None and if_version < 0:
            raise InvalidInput(
                "the expected version (if_version) must be 0 (not yet created) or a version number",
                hint_key="if_version",
            )
        # A value that is not UTF-8 text travels as value_base64: byte for byte.
        body: dict[str, Any] = value_json(value)
        if if_version is not None:
            body["if_version"] = if_version
        try:
            data = self._call("PUT", self._secret_path(ref), body=body)
        finally:
            self.invalidate(ref.project, ref.env, ref.name)
        with reading(self.address, "write"):
            return wire.decode_version(data)

    def get(
        self,
        ref: SecretRef,
        *,
        version: int | None = None,
        reveal: bool = False,
        stage: str | None = None,
    ) -> Secret:
        """A version's value (current by default; ``stage``: ``pending``, or ``previous``
        during the secret's grace window)."""
        if version is not None and version < 1:
            raise InvalidInput("versions are numbered from 1")
        if version is not None and stage is not None:
            raise InvalidInput("ask for a version or a stage, not both")
        query: dict[str, Any] = {}
        if version is not None:
            query["version"] = version
        if reveal:
            query["reveal"] = "true"
        if stage is not None:
            query["stage"] = str(stage)
        # NOTE: a read by stage is never cached, in memory or on disk, and never answered
        # from an offline copy: a previous version's grace window ends, a pending version is
        # promoted or dropped, and a copy must not outlive either.
        key = None if reveal or stage is not None else f"get|{ref.path}|{version or ''}"

        def fetch() -> Any:
            return self._call("GET", self._secret_path(ref), query=query)

        data = self._read(key, ref.path, fetch)
        with reading(self.address, "read"):
            return wire.decode_read(data, ref)

    def resolve(
        self, project: str, env: str, *, only: list[str] | None = None, purpose: str = "run"
    ) -> dict[str, SecretValue]:
        validate_scope("project", project)
        validate_scope("environment", env)
        query: dict[str, Any] = {"purpose": purpose}
        if only is not None:
            for name in only:
                validate_name(name)
            if not only:
                raise InvalidInput("'only' names no secret; leave it out to get every secret")
            query["only"] = ",".join(only)
        key = None
        if purpose in CACHED_PURPOSES:
            names = ",".join(sorted(only)) if only is not None else "*"
            key = f"resolve|{project}/{env}|{names}|{purpose}"

        def fetch() -> Any:
            return self._call("GET", path_of("v1", "resolve", project, env), query=query)

        data = self._read(key, f"{project}/{env}", fetch)
        with reading(self.address, "resolve"):
            return wire.decode_resolved(data)

    def list_secrets(
        self, project: str, env: str, *, include_deleted: bool = False
    ) -> list[SecretInfo]:
        validate_scope("project", project)
        validate_scope("environment", env)
        query = {"deleted": "true"} if include_deleted else None
        data = self._call("GET", path_of("v1", "secrets", project, env), query=query)
        with reading(self.address, "list"):
            return wire.decode_listing(data)

    def versions(self, project: str, env: str) -> dict[str, int]:
        """Current version of every live secret of an environment (like ``Vault.versions``)."""
        return {s.ref.name: s.current_version for s in self.list_secrets(project, env)}

    def info(self, ref: SecretRef) -> SecretInfo:
        data = self._call("GET", self._secret_path(ref, "meta"))
        with reading(self.address, "metadata"):
            meta = wire.decode_meta(data)
            if "version" in data and "created_at" in data:
                return wire.decode_info({**data, "path": ref.path, "meta": meta.to_dict()})
        # NOTE: the meta route answers path + meta only; the version state comes from the
        # history (authorised like info: list on the secret's path).
        versions = self.history(ref)
        if not versions:
            raise BadReply(f"malformed reply from {self.address}: {ref} has no versions")
        current = next((v for v in versions if v.stage is Stage.CURRENT), versions[-1])
        return SecretInfo(
            ref=ref,
            current_version=current.version,
            created_at=versions[0].created_at,
            updated_at=versions[-1].created_at,
            deleted_at=None,
            meta=meta,
        )

    def history(self, ref: SecretRef) -> list[VersionInfo]:
        data = self._call("GET", self._secret_path(ref, "history"))
        with reading(self.address, "history"):
            return wire.decode_history(data)

    def rollback(self, ref: SecretRef, version: int, *, if_version: int | None = None) -> int:
        body: dict[str, Any] = {"version": version}
        if if_version is not None:
            body["if_version"] = if_version
        try:
            data = self._call("POST", self._secret_path(ref, "rollback"), body=body)
        finally:
            self.invalidate(ref.project, ref.env, ref.name)
        with reading(self.address, "rollback"):
            return wire.decode_version(data)

    def update_meta(self, ref: SecretRef, **changes: Any) -> SecretMeta:
        body: dict[str, Any] = {}
        for key, value in changes.items():
            if isinstance(value, datetime):
                body[key] = value.isoformat()
            elif isinstance(value, tuple | list):
                body[key] = [str(v) for v in value]
            elif hasattr(value, "value") and isinstance(value.value, str):  # an enum
                body[key] = value.value
            else:
                body[key] = value
        data = self._call("PATCH", self._secret_path(ref, "meta"), body=body)
        with reading(self.address, "metadata"):
            return wire.decode_meta(data)

    def delete(self, ref: SecretRef) -> None:
        try:
            self._call("DELETE", self._secret_path(ref))
        finally:
            self.invalidate(ref.project, ref.env, ref.name)

    def undelete(self, ref: SecretRef) -> None:
        try:
            self._call("POST", self._secret_path(ref, "undelete"), body={})
        finally:
            self.invalidate(ref.project, ref.env, ref.name)

    def purge(self, ref: SecretRef) -> int:
        try:
            data = self._call("POST", self._secret_path(ref, "purge"), body={})
        finally:
            self.invalidate(ref.project, ref.env, ref.name)
        with reading(self.address, "purge"):
            return wire.decode_destroyed(data)

    # -- live updates ----------------------------------------------------------------------------
    # -- the audit trail (admin on sys/audit) ------------------------------------------------
    def audit_log(
        self,
        *,
        secret: SecretRef | None = None,
        identity: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        operations: Sequence[str] | None = None,
        denied: bool = False,
        source: str | None = None,
        limit: int | None = 100,
    ) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"denied": denied, "limit": limit}
        if secret is not None:
            body["secret"] = secret.path
        for key, value in (("identity", identity), ("source", source)):
            if value is not None:
                body[key] = value
        for key, moment in (("since", since), ("until", until)):
            if moment is not None:
                body[key] = moment.isoformat()
        if operations:
            body["operations"] = list(operations)
        data = self._call("POST", "/v1/audit/log", body=body)
        with reading(self.address, "audit log"):
            return wire_audit.decode_events(data)

    def who_read(
        self,
        ref: SecretRef | None = None,
        *,
        version: int | None = None,
        value_hmac: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[dict[str, Any]]:
        body: dict[str, Any] = {}
        if ref is not None:
            body["path"] = ref.path
        if version is not None:
            body["version"] = version
        if value_hmac is not None:
            body["value_hmac"] = value_hmac
        for key, moment in (("since", since), ("until", until)):
            if moment is not None:
                body[key] = moment.isoformat()
        data = self._call("POST", "/v1/audit/who-read", body=body)
        with reading(self.address, "who-read"):
            return wire_audit.decode_events(data)

    def audit_hash(self, value: SecretValue) -> str:
        data = self._call("POST", "/v1/audit/hash", body=value_json(value))
        with reading(self.address, "audit hash"):
            return wire_audit.decode_hmac(data)

    def audit_verify(self, files: Sequence[str] = ()) -> Verification:
        if files:
            raise InvalidInput(
                "a local JSONL audit file is verified on the server's host, not through it",
                hint_key="audit_verify_file",
            )
        data = self._call("POST", "/v1/audit/verify", body={})
        with reading(self.address, "audit verify"):
            return wire_audit.decode_verification(data)

    def audit_accept_rejected(self, file: str) -> str:
        raise InvalidInput(
            "a rejected spool file is accepted on the server's host (embedded, on the server's "
            "vault), not through the server",
            hint_key="accept_rejected_remote",
        )

    def audit_checkpoint(self) -> list[CheckpointRow]:
        data = self._call("POST", "/v1/audit/checkpoint", body={})
        with reading(self.address, "audit checkpoint"):
            return wire_audit.decode_checkpoints(data)

    def watch(self, project: str, env: str, on_change: Callable[[ChangeEvent], None]) -> Watch:
        """Call ``on_change`` (in a background thread) for every change in ``project/env``.

        Follows the server's event stream, reconnecting with backoff; changes missed while
        disconnected are reported on reconnection. Returns a handle with ``stop()``.
        """
        from sealbox.client.watch import Watch

        validate_scope("project", project)
        validate_scope("environment", env)

        def changed(event: ChangeEvent) -> None:
            self.invalidate(event.project, event.env, event.name)
            if event.op == "revoke":
                # NOTE: a revoked version (a leaked value) must never be served again, and
                # copies of it may sit under any key (a read by number, a current read or a
                # resolve from before the rotation): drop every copy. Revocations are rare.
                self.wipe_offline_cache()
            on_change(event)

        w = Watch(self._transport, self._token, project, env, changed)
        self._watches.append(w)
        w.start()
        return w

    # -- accounts --------------------------------------------------------------------------------
    @property
    def accounts(self) -> RemoteAccounts:
        if self._accounts is None:
            from sealbox.client.accounts import RemoteAccounts

            self._accounts = RemoteAccounts(self)
        return self._accounts

    @property
    def rotations(self) -> RemoteRotations:
        """The server's rotations, shaped as the embedded vault's ``vault.rotations``."""
        from sealbox.client.rotations import RemoteRotations

        return RemoteRotations(self)

    def incident(
        self,
        ref: SecretRef,
        *,
        reason: str,
        value: SecretValue | None = None,
        rotate: bool = False,
    ) -> IncidentReport:
        """A suspected leak of ``ref`` (``POST /v1/incident``): who received it (or the exact
        leaked ``value``, compared and hashed by the server, never answered), who else holds
        the value, whom to tell and redeploy; ``rotate``: then rotate now and revoke every
        older version. The call shape of the embedded ``vault.incident``."""
        from sealbox.wire import incident as wire_incident

        body: dict[str, Any] = {"path": ref.path, "reason": reason, "rotate": rotate}
        if value is not None:
            body.update(value_json(value))
        data = self._call("POST", "/v1/incident", body=body)
        with reading(self.address, "incident"):
            return wire_incident.decode_report(data)

    def kms_status(self, *, probe: bool = True) -> KmsStatus:
        """The server's key providers: each one's reach and which KEKs it opens
        (``GET /v1/sys/kms``, admin on sys/kms); ``probe=False`` calls no provider."""
        from sealbox.wire import kms as wire_kms

        data = self._call("GET", "/v1/sys/kms", query={"probe": "true" if probe else "false"})
        with reading(self.address, "key provider status"):
            return wire_kms.decode_status(data)

    @property
    def leases(self) -> RemoteLeases:
        """Dynamic database credentials: issue, renew, look up, revoke (``LeasesAPI``)."""
        from sealbox.client.leases import RemoteLeases

        return RemoteLeases(self)

    @property
    def audit(self) -> RemoteAudit:
        """The audit methods above, shaped as the embedded vault's ``vault.audit``."""
        from sealbox.client.audit import RemoteAudit

        return RemoteAudit(self)


__all__ = ["Client", "SealboxError"]
