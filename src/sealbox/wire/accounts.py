"""Bodies of ``/v1/identities``, ``/v1/tokens`` and the login answers, and the values they carry.

:class:`IdentityInfo`, :class:`TokenInfo` and :class:`NewToken` are defined here, not in
:mod:`sealbox.model`: they are frozen dataclasses (the CLI prints ``info.__dict__``), and
importing :mod:`dataclasses` would cost ``sealbox run`` (which imports ``model``) ~10 ms.
The core (:mod:`sealbox.auth`) makes them; the SDK decodes them from the server's answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sealbox.wire.fields import (
    WireError,
    flag,
    integer,
    items,
    obj,
    opt_text,
    text,
    texts,
)


@dataclass(frozen=True)
class TokenInfo:
    """A token as listings show it: never the token, only its accessor."""

    accessor: str
    identity: str
    policies: tuple[str, ...]
    auth_method: str
    created_at: str
    expires_at: str
    max_expires_at: str
    revoked: bool
    display: str
    #: The accessor of the token that made this one; None for a root of the token tree.
    parent: str | None = None


@dataclass(frozen=True)
class IdentityInfo:
    id: str
    name: str
    kind: str
    policies: tuple[str, ...]
    role_id: str | None
    created_at: str
    disabled: bool


@dataclass(frozen=True)
class NewToken:
    """A freshly minted token: the value is shown once, only the hash is stored."""

    value: str
    hash: str
    accessor: str

    def __repr__(self) -> str:
        return f"NewToken(accessor={self.accessor!r}, value='***')"


def token_hash(value: str) -> str:
    """What storage keeps of a token: its SHA-256, hex."""
    import hashlib  # NOTE: lazily: OpenSSL start-up is on `sealbox run`'s budget

    return hashlib.sha256(value.encode()).hexdigest()


# -- identities ------------------------------------------------------------------------------
def encode_identity(info: IdentityInfo) -> dict[str, Any]:
    """An identity; ``role_id`` is part of a machine's answer only."""
    data: dict[str, Any] = {
        "id": info.id,
        "name": info.name,
        "kind": info.kind,
        "policies": list(info.policies),
        "created_at": info.created_at,
        "disabled": info.disabled,
    }
    if info.kind == "machine":
        data["role_id"] = info.role_id
    return data


def decode_identity(data: Any) -> IdentityInfo:
    body = obj(data, "an identity")
    return IdentityInfo(
        id=opt_text(body, "id") or "",
        name=text(body, "name"),
        kind=text(body, "kind"),
        policies=tuple(texts(body, "policies")),
        role_id=opt_text(body, "role_id"),
        created_at=opt_text(body, "created_at") or "",
        disabled=flag(body, "disabled"),
    )


def encode_identities(infos: list[IdentityInfo]) -> dict[str, Any]:
    return {"identities": [encode_identity(i) for i in infos]}


def decode_identities(data: Any) -> list[IdentityInfo]:
    return [decode_identity(d) for d in items(obj(data), "identities")]


def encode_secret_id(secret_id: str) -> dict[str, Any]:
    return {"secret_id": secret_id}


def decode_secret_id(data: Any) -> str:
    return text(obj(data), "secret_id")


def encode_revoked(count: int) -> dict[str, Any]:
    """How many tokens a revocation ended."""
    return {"revoked": count}


def decode_revoked(data: Any) -> int:
    return integer(obj(data), "revoked")


# -- tokens ----------------------------------------------------------------------------------
def encode_token_info(info: TokenInfo) -> dict[str, Any]:
    return {
        "accessor": info.accessor,
        "identity": info.identity,
        "policies": list(info.policies),
        "auth_method": info.auth_method,
        "created_at": info.created_at,
        "expires_at": info.expires_at,
        "max_expires_at": info.max_expires_at,
        "revoked": info.revoked,
        "display": info.display,
        "parent": info.parent,
    }


def decode_token_info(data: Any) -> TokenInfo:
    body = obj(data, "a token")
    return TokenInfo(
        accessor=text(body, "accessor"),
        identity=opt_text(body, "identity") or "",
        policies=tuple(texts(body, "policies")),
        auth_method=opt_text(body, "auth_method") or "",
        created_at=opt_text(body, "created_at") or "",
        expires_at=opt_text(body, "expires_at") or "",
        max_expires_at=opt_text(body, "max_expires_at") or "",
        revoked=flag(body, "revoked"),
        display=opt_text(body, "display") or "",
        parent=opt_text(body, "parent") or None,
    )


def encode_tokens(infos: list[TokenInfo]) -> dict[str, Any]:
    return {"tokens": [encode_token_info(i) for i in infos]}


def decode_tokens(data: Any) -> list[TokenInfo]:
    return [decode_token_info(d) for d in items(obj(data), "tokens")]


def encode_new_token(new: NewToken, info: TokenInfo) -> dict[str, Any]:
    """A minted token: its value, shown this once, and its lifetime."""
    return {
        "token": new.value,
        "accessor": new.accessor,
        "expires_at": info.expires_at,
        "max_expires_at": info.max_expires_at,
        "parent": info.parent,
    }


def decode_new_token(data: Any) -> NewToken:
    body = obj(data, "a token")
    value = text(body, "token")
    return NewToken(value, token_hash(value), text(body, "accessor"))


def decode_login(data: Any) -> tuple[str, dict[str, Any]]:
    """A login's answer: the token, and what the SDK keeps of the rest (``login_info``)."""
    body = obj(data, "a login")
    token = text(body, "token")
    if not token.strip():
        raise WireError("field 'token' is empty")
    return token, {"accessor": body.get("accessor"), "expires_at": body.get("expires_at")}
