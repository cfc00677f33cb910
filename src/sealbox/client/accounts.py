"""``client.accounts``: identities, tokens and policies on the server (``AccountsAPI``).

Every answer is read with the codecs of :mod:`sealbox.wire`, the same the server's routes
write with; a token is shown once, when minted (``NewToken.value``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sealbox.client.errors import reading
from sealbox.client.transport import path_of
from sealbox.errors import InvalidInput
from sealbox.model import Decision, Policy
from sealbox.wire import accounts as wire
from sealbox.wire.policies import decode_decision, decode_policies, decode_policy, encode_policy

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from sealbox.client.client import Client
    from sealbox.wire.accounts import IdentityInfo, NewToken, TokenInfo


def duration(value: timedelta | None) -> str | None:
    """A duration as the API takes it (``"90s"``)."""
    if value is None:
        return None
    seconds = int(value.total_seconds())
    if seconds <= 0:
        raise InvalidInput("a duration must be positive")
    return f"{seconds}s"


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

    def _parse(self, what: str) -> AbstractContextManager[None]:
        return reading(self._client.address, what)

    # -- policies ------------------------------------------------------------------------------
    def apply_policy(self, policy: Policy, *, force: bool = False) -> None:
        path = path_of("v1", "policies", policy.name)
        self._call("PUT", path, body=encode_policy(policy), query=_force(force))

    def get_policy(self, name: str) -> Policy:
        data = self._call("GET", path_of("v1", "policies", name))
        with self._parse("policy"):
            return decode_policy(data)

    def list_policies(self) -> list[Policy]:
        data = self._call("GET", "/v1/policies")
        with self._parse("policies"):
            return decode_policies(data)

    def delete_policy(self, name: str, *, force: bool = False) -> None:
        self._call("DELETE", path_of("v1", "policies", name), query=_force(force))

    def explain(self, identity: str, path: str, capability: str) -> Decision:
        # The server validates (and authorises) first, as the embedded vault does.
        data = self._call(
            "POST",
            "/v1/policies/explain",
            body={"identity": identity, "path": path, "capability": capability},
        )
        with self._parse("explain"):
            return decode_decision(data, path, capability)

    # -- identities ----------------------------------------------------------------------------
    def create_person(self, name: str, password: str, policies: list[str]) -> IdentityInfo:
        body = {"name": name, "kind": "person", "password": password, "policies": policies}
        data = self._call("POST", "/v1/identities", body=body)
        with self._parse("identity"):
            return wire.decode_identity(data)

    def create_machine(self, name: str, policies: list[str]) -> IdentityInfo:
        body = {"name": name, "kind": "machine", "policies": policies}
        data = self._call("POST", "/v1/identities", body=body)
        with self._parse("identity"):
            return wire.decode_identity(data)

    def new_secret_id(
        self, name: str, *, uses: int | None = None, ttl: timedelta | None = None
    ) -> str:
        body: dict[str, Any] = {}
        if uses is not None:
            body["uses"] = uses
        if ttl is not None:
            body["ttl"] = duration(ttl)
        data = self._call("POST", path_of("v1", "identities", name, "secret-ids"), body=body)
        with self._parse("secret id"):
            return wire.decode_secret_id(data)

    def list_identities(self) -> list[IdentityInfo]:
        data = self._call("GET", "/v1/identities")
        with self._parse("identities"):
            return wire.decode_identities(data)

    def get_identity(self, name: str) -> IdentityInfo:
        data = self._call("GET", path_of("v1", "identities", name))
        with self._parse("identity"):
            return wire.decode_identity(data)

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
        body: dict[str, Any] = {}
        if identity is not None:
            body["identity"] = identity
        if ttl is not None:
            body["ttl"] = duration(ttl)
        if max_ttl is not None:
            body["max_ttl"] = duration(max_ttl)
        if policies is not None:
            body["policies"] = policies
        if orphan:
            body["orphan"] = True
        data = self._call("POST", "/v1/tokens", body=body)
        with self._parse("token"):
            return wire.decode_new_token(data)

    def list_tokens(self, identity: str | None = None) -> list[TokenInfo]:
        data = self._call("GET", "/v1/tokens", query={"identity": identity})
        with self._parse("tokens"):
            return wire.decode_tokens(data)

    def revoke_token(self, accessor: str) -> None:
        self._call("DELETE", path_of("v1", "tokens", accessor))

    def revoke_identity_tokens(self, name: str) -> int:
        data = self._call("POST", path_of("v1", "identities", name, "revoke-tokens"), body={})
        with self._parse("revoke"):
            return wire.decode_revoked(data)
