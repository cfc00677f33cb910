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
from sealbox.client.errors import BadReply
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
    Secret,
    SecretInfo,
    SecretMeta,
    SecretRef,
    SecretValue,
    Stage,
    VersionInfo,
    validate_name,
    validate_scope,
)

if TYPE_CHECKING:
    from sealbox.audit.verify import Verification
    from sealbox.auth.policy import Decision, Policy
    from sealbox.auth.service import IdentityInfo, TokenInfo
    from sealbox.auth.tokens import NewToken
    from sealbox.changes import ChangeEvent
    from sealbox.client.watch import Watch
    from sealbox.storage.rows import CheckpointRow


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


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _duration(value: timedelta | None) -> str | None:
    if value is None:
        return None
    seconds = int(value.total_seconds())
    if seconds <= 0:
        raise InvalidInput("a duration must be positive")
    return f"{seconds}s"


def _time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise TypeError("not a time")
    return datetime.fromisoformat(value)


def _opt_time(value: Any) -> datetime | None:
    return None if value is None else _time(value)


class _Parse:
    """Turns a KeyError/TypeError/ValueError while reading a reply into one clear error."""

    def __init__(self, where: str, what: str) -> None:
        self.where, self.what = where, what

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        if kind is not None and issubclass(kind, (KeyError, TypeError, ValueError, AttributeError)):
            raise BadReply(
                f"malformed reply from the sealbox server at {self.where} ({self.what}): "
                f"{kind.__name__}"
            ) from None


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
                from sealbox.config import default_home

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
        finally:
            transport.close()
        return cls._logged_in(addr, data, transport.where, options)

    @classmethod
    def _logged_in(cls, addr: str, data: Any, where: str, options: dict[str, Any]) -> Client:
        with _Parse(where, "login"):
            token = data["token"]
            if not isinstance(token, str):
                raise TypeError
            client = cls(addr, token, **options)
            client.login_info = {
                "accessor": data.get("accessor"),
                "expires_at": data.get("expires_at"),
            }
        return client

    login_info: dict[str, Any] | None = None

    def token_self(self) -> dict[str, Any]:
        """The token's own entry: identity, kind, policies, accessor, expires_at."""
        data = self._call("GET", "/v1/auth/token/self")
        with _Parse(self.address, "token/self"):
            if not isinstance(data, dict) or "identity" not in data:
                raise KeyError("identity")
        result: dict[str, Any] = data
        return result

    def renew(self, increment: timedelta | None = None) -> str:
        """Extend the token (up to its max TTL); returns the new expiry (ISO time)."""
        body = {"increment": _duration(increment)} if increment else {}
        data = self._call("POST", "/v1/auth/token/renew", body=body)
        with _Parse(self.address, "token/renew"):
            expires: str = data["expires_at"]
        return expires

    def revoke_self(self) -> None:
        """Revoke this client's token (``sealbox logout``) and forget its offline copies."""
        self._call("POST", "/v1/auth/token/revoke-self", body={})
        self.wipe_offline_cache()

    def wipe_offline_cache(self) -> int:
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
        with _Parse(self.address, "projects"):
            return [str(p) for p in data["projects"]]

    def create_env(self, project: str, env: str) -> None:
        validate_scope("project", project)
        validate_scope("environment", env)
        self._call("POST", path_of("v1", "projects", project, "envs"), body={"name": env})

    def list_envs(self, project: str) -> list[str]:
        validate_scope("project", project)
        data = self._call("GET", path_of("v1", "projects", project, "envs"))
        with _Parse(self.address, "environments"):
            return [str(e) for e in data["environments"]]

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
        try:
            text = value.reveal_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(
                f"the value for {ref} is not UTF-8 text; the server's API carries text values"
            ) from None
        body: dict[str, Any] = {"value": text}
        if if_version is not None:
            body["if_version"] = if_version
        try:
            data = self._call("PUT", self._secret_path(ref), body=body)
        finally:
            self.invalidate(ref.project, ref.env, ref.name)
        with _Parse(self.address, "write"):
            return int(data["version"])

    def get(self, ref: SecretRef, *, version: int | None = None, reveal: bool = False) -> Secret:
        if version is not None and version < 1:
            raise InvalidInput("versions are numbered from 1")
        query: dict[str, Any] = {}
        if version is not None:
            query["version"] = version
        if reveal:
            query["reveal"] = "true"
        key = None if reveal else f"get|{ref.path}|{version or ''}"

        def fetch() -> Any:
            return self._call("GET", self._secret_path(ref), query=query)

        data = self._read(key, ref.path, fetch)
        with _Parse(self.address, "read"):
            value = data["value"]
            if not isinstance(value, str):
                raise TypeError
            return Secret(ref, int(data["version"]), SecretValue(value), _time(data["created_at"]))

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
        with _Parse(self.address, "resolve"):
            secrets = data["secrets"]
            if not isinstance(secrets, dict) or not all(
                isinstance(v, str) for v in secrets.values()
            ):
                raise TypeError
            return {str(k): SecretValue(v) for k, v in secrets.items()}

    def _info(self, d: Any) -> SecretInfo:
        return SecretInfo(
            ref=SecretRef.parse(d["path"]),
            current_version=int(d["version"]),
            created_at=_time(d["created_at"]),
            updated_at=_time(d["updated_at"]),
            deleted_at=_opt_time(d.get("deleted_at")),
            meta=SecretMeta.from_dict(d.get("meta") or {}),
        )

    def list_secrets(
        self, project: str, env: str, *, include_deleted: bool = False
    ) -> list[SecretInfo]:
        validate_scope("project", project)
        validate_scope("environment", env)
        query = {"deleted": "true"} if include_deleted else None
        data = self._call("GET", path_of("v1", "secrets", project, env), query=query)
        with _Parse(self.address, "list"):
            return [self._info(d) for d in data["secrets"]]

    def versions(self, project: str, env: str) -> dict[str, int]:
        """Current version of every live secret of an environment (like ``Vault.versions``)."""
        return {s.ref.name: s.current_version for s in self.list_secrets(project, env)}

    def info(self, ref: SecretRef) -> SecretInfo:
        data = self._call("GET", self._secret_path(ref, "meta"))
        with _Parse(self.address, "metadata"):
            meta = SecretMeta.from_dict(data["meta"] or {})
            if "version" in data and "created_at" in data:
                return self._info({**data, "path": ref.path, "meta": meta.to_dict()})
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
        with _Parse(self.address, "history"):
            return [
                VersionInfo(
                    version=int(v["version"]),
                    stage=Stage(v["stage"]) if v.get("stage") else None,
                    created_at=_time(v["created_at"]),
                    created_by=str(v.get("created_by") or ""),
                    kek_id=str(v.get("kek_id") or ""),
                    rollback_of=v.get("rollback_of"),
                )
                for v in data["versions"]
            ]

    def rollback(self, ref: SecretRef, version: int, *, if_version: int | None = None) -> int:
        body: dict[str, Any] = {"version": version}
        if if_version is not None:
            body["if_version"] = if_version
        try:
            data = self._call("POST", self._secret_path(ref, "rollback"), body=body)
        finally:
            self.invalidate(ref.project, ref.env, ref.name)
        with _Parse(self.address, "rollback"):
            return int(data["version"])

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
        with _Parse(self.address, "metadata"):
            return SecretMeta.from_dict(data["meta"])

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
        with _Parse(self.address, "purge"):
            return int(data["destroyed"])

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
        with _Parse(self.address, "audit log"):
            return [dict(e) for e in data["events"]]

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
        with _Parse(self.address, "who-read"):
            return [dict(e) for e in data["events"]]

    def audit_hash(self, value: SecretValue) -> str:
        data = self._call("POST", "/v1/audit/hash", body={"value": value.reveal()})
        with _Parse(self.address, "audit hash"):
            return str(data["hmac"])

    def audit_verify(self, files: Sequence[str] = ()) -> Verification:
        from sealbox.audit.verify import Verification

        if files:
            raise InvalidInput(
                "a local JSONL audit file is verified on the server's host, not through it",
                hint_key="audit_verify_file",
            )
        data = self._call("POST", "/v1/audit/verify", body={})
        with _Parse(self.address, "audit verify"):
            return Verification(
                [str(x) for x in data["findings"]],
                [str(x) for x in data["notices"]],
                [str(x) for x in data["summary"]],
            )

    def audit_accept_rejected(self, file: str) -> str:
        raise InvalidInput(
            "a rejected spool file is accepted on the server's host (embedded, on the server's "
            "vault), not through the server",
            hint_key="accept_rejected_remote",
        )

    def audit_checkpoint(self) -> list[CheckpointRow]:
        # NOTE: the row type is plain data shared with the embedded vault's answer.
        from sealbox.storage.rows import CheckpointRow

        data = self._call("POST", "/v1/audit/checkpoint", body={})
        with _Parse(self.address, "audit checkpoint"):
            return [CheckpointRow(**c) for c in data["checkpoints"]]

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
            on_change(event)

        w = Watch(self._transport, self._token, project, env, changed)
        self._watches.append(w)
        w.start()
        return w

    # -- accounts --------------------------------------------------------------------------------
    @property
    def accounts(self) -> RemoteAccounts:
        if self._accounts is None:
            self._accounts = RemoteAccounts(self)
        return self._accounts

    @property
    def audit(self) -> RemoteAudit:
        """The audit methods above, shaped as the embedded vault's ``vault.audit``."""
        return RemoteAudit(self)


def _identity(d: Any) -> IdentityInfo:
    from sealbox.auth.service import IdentityInfo

    return IdentityInfo(
        id=str(d.get("id") or ""),
        name=str(d["name"]),
        kind=str(d["kind"]),
        policies=tuple(str(p) for p in d.get("policies") or ()),
        role_id=d.get("role_id"),
        created_at=str(d.get("created_at") or ""),
        disabled=bool(d.get("disabled", False)),
    )


def _token_info(d: Any) -> TokenInfo:
    from sealbox.auth.service import TokenInfo

    return TokenInfo(
        accessor=str(d["accessor"]),
        identity=str(d.get("identity") or ""),
        policies=tuple(str(p) for p in d.get("policies") or ()),
        auth_method=str(d.get("auth_method") or ""),
        created_at=str(d.get("created_at") or ""),
        expires_at=str(d.get("expires_at") or ""),
        max_expires_at=str(d.get("max_expires_at") or ""),
        revoked=bool(d.get("revoked", False)),
        display=str(d.get("display") or ""),
        parent=str(d["parent"]) if d.get("parent") else None,
    )


def _force(force: bool) -> dict[str, str] | None:
    """``?force=true``: the server refuses to remove the last admin without it."""
    return {"force": "true"} if force else None


class RemoteAccounts:
    """Identities, tokens and policies on the server (satisfies ``AccountsAPI``)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def __repr__(self) -> str:
        return f"RemoteAccounts({self._client.address!r})"

    def _call(self, method: str, path: str, *, body: Any = None, query: Any = None) -> Any:
        return self._client._call(method, path, body=body, query=query)

    def _parse(self, what: str) -> _Parse:
        return _Parse(self._client.address, what)

    # -- policies ------------------------------------------------------------------------------
    def apply_policy(self, policy: Policy, *, force: bool = False) -> None:
        self._call(
            "PUT",
            path_of("v1", "policies", policy.name),
            body=policy.to_dict(),
            query=_force(force),
        )

    def get_policy(self, name: str) -> Policy:
        from sealbox.auth.policy import parse_policy

        data = self._call("GET", path_of("v1", "policies", name))
        with self._parse("policy"):
            return parse_policy(data, source=f"policy {name!r} from the server")

    def list_policies(self) -> list[Policy]:
        from sealbox.auth.policy import parse_policy

        data = self._call("GET", "/v1/policies")
        with self._parse("policies"):
            return [parse_policy(d, source="policy from the server") for d in data["policies"]]

    def delete_policy(self, name: str, *, force: bool = False) -> None:
        self._call("DELETE", path_of("v1", "policies", name), query=_force(force))

    def explain(self, identity: str, path: str, capability: str) -> Decision:
        from sealbox.auth.policy import DENY, GRANTS, Capability, Decision, Rule

        # The server validates (and authorises) first, as the embedded vault does.
        data = self._call(
            "POST",
            "/v1/policies/explain",
            body={"identity": identity, "path": path, "capability": capability},
        )
        with self._parse("explain"):
            cap = Capability(capability)
            rule = None
            if data.get("rule"):
                raw = data["rule"]
                caps = [c for c in raw["capabilities"] if c != DENY]
                deny = DENY in raw["capabilities"]
                rule = Rule(
                    str(raw["path"]),
                    frozenset(Capability(c) for c in caps) if caps or not deny else GRANTS,
                    deny,
                )
            return Decision(
                allowed=bool(data["allowed"]),
                capability=cap,
                path=path,
                policy=data.get("policy"),
                rule=rule,
                reason=str(data["reason"]),
            )

    # -- identities ----------------------------------------------------------------------------
    def create_person(self, name: str, password: str, policies: list[str]) -> IdentityInfo:
        body = {"name": name, "kind": "person", "password": password, "policies": policies}
        data = self._call("POST", "/v1/identities", body=body)
        with self._parse("identity"):
            return _identity(data)

    def create_machine(self, name: str, policies: list[str]) -> IdentityInfo:
        body = {"name": name, "kind": "machine", "policies": policies}
        data = self._call("POST", "/v1/identities", body=body)
        with self._parse("identity"):
            return _identity(data)

    def new_secret_id(
        self, name: str, *, uses: int | None = None, ttl: timedelta | None = None
    ) -> str:
        body: dict[str, Any] = {}
        if uses is not None:
            body["uses"] = uses
        if ttl is not None:
            body["ttl"] = _duration(ttl)
        data = self._call("POST", path_of("v1", "identities", name, "secret-ids"), body=body)
        with self._parse("secret id"):
            value = data["secret_id"]
            if not isinstance(value, str):
                raise TypeError
            return value

    def list_identities(self) -> list[IdentityInfo]:
        data = self._call("GET", "/v1/identities")
        with self._parse("identities"):
            return [_identity(d) for d in data["identities"]]

    def get_identity(self, name: str) -> IdentityInfo:
        data = self._call("GET", path_of("v1", "identities", name))
        with self._parse("identity"):
            return _identity(data)

    def set_policies(self, name: str, policies: list[str], *, force: bool = False) -> None:
        self._call(
            "PUT",
            path_of("v1", "identities", name, "policies"),
            body={"policies": policies},
            query=_force(force),
        )

    def delete_identity(self, name: str, *, force: bool = False) -> None:
        self._call("DELETE", path_of("v1", "identities", name), query=_force(force))

    # -- tokens ----------------------------------------------------------------------------------
    def create_token(
        self,
        *,
        identity: str | None = None,
        ttl: timedelta | None = None,
        max_ttl: timedelta | None = None,
        policies: list[str] | None = None,
        display: str = "",
        orphan: bool = False,
    ) -> NewToken:
        """A new token. NOTE: ``display`` is not part of the HTTP API (the server names
        the token after its identity)."""
        from sealbox.auth.tokens import NewToken, token_hash

        body: dict[str, Any] = {}
        if identity is not None:
            body["identity"] = identity
        if ttl is not None:
            body["ttl"] = _duration(ttl)
        if max_ttl is not None:
            body["max_ttl"] = _duration(max_ttl)
        if policies is not None:
            body["policies"] = policies
        if orphan:
            body["orphan"] = True
        data = self._call("POST", "/v1/tokens", body=body)
        with self._parse("token"):
            value = data["token"]
            if not isinstance(value, str):
                raise TypeError
            return NewToken(value, token_hash(value), str(data["accessor"]))

    def list_tokens(self, identity: str | None = None) -> list[TokenInfo]:
        data = self._call("GET", "/v1/tokens", query={"identity": identity})
        with self._parse("tokens"):
            return [_token_info(d) for d in data["tokens"]]

    def revoke_token(self, accessor: str) -> None:
        self._call("DELETE", path_of("v1", "tokens", accessor))

    def revoke_identity_tokens(self, name: str) -> int:
        data = self._call("POST", path_of("v1", "identities", name, "revoke-tokens"), body={})
        with self._parse("revoke"):
            return int(data["revoked"])


class RemoteAudit:
    """The server's audit trail as ``AuditAPI`` names it (``vault.audit.log`` …); the
    work is the Client's flat ``audit_*`` methods, which the SDK keeps."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def __repr__(self) -> str:
        return f"RemoteAudit({self._client.address!r})"

    def log(
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
        return self._client.audit_log(
            secret=secret,
            identity=identity,
            since=since,
            until=until,
            operations=operations,
            denied=denied,
            source=source,
            limit=limit,
        )

    def who_read(
        self,
        ref: SecretRef | None = None,
        *,
        version: int | None = None,
        value_hmac: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[dict[str, Any]]:
        return self._client.who_read(
            ref, version=version, value_hmac=value_hmac, since=since, until=until
        )

    def value_hmac(self, value: SecretValue) -> str:
        return self._client.audit_hash(value)

    def verify(self, files: Sequence[str] = ()) -> Verification:
        return self._client.audit_verify(files)

    def accept_rejected(self, file: str) -> str:
        return self._client.audit_accept_rejected(file)

    def checkpoint(self) -> list[CheckpointRow]:
        return self._client.audit_checkpoint()


def _conforms(client: Client) -> None:
    """Static check (mypy): the Client satisfies the shared Protocols."""
    from sealbox.api import AccountsAPI, AuditAPI, VaultAPI

    api: VaultAPI = client
    accounts: AccountsAPI = client.accounts
    audit: AuditAPI = client.audit
    del api, accounts, audit


__all__ = ["Client", "RemoteAccounts", "RemoteAudit", "SealboxError"]
