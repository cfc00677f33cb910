"""The one translation of errors on Vault-compatible paths: a token that does not
authenticate is Vault's 403 ``permission denied``; native paths keep their 401."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from sealbox import errors
from sealbox.server.errors import compat_error
from sealbox.server.metrics import Metrics
from sealbox.server.middleware import RequestMiddleware
from sealbox.server.routes_kv import is_compat_path


def test_compat_error_turns_a_bad_token_into_permission_denied() -> None:
    assert compat_error(errors.AuthenticationFailed("invalid or expired token")) == (
        403,
        "permission denied",
    )
    assert compat_error(errors.AccessDenied("permission denied: read on x")) == (
        403,
        "permission denied: read on x",
    )
    assert compat_error(errors.NotFound("nope")) == (404, "nope")


@pytest.mark.parametrize(
    ("path", "compat"),
    [
        ("/v1/auth/token/lookup-self", True),
        ("/v1/auth/token/create", True),
        ("/v1/sys/mounts", True),
        ("/v1/sys/mounts/secret/tune", True),
        ("/v1/sys/auth", True),
        ("/v1/sys/capabilities-self", True),
        ("/v1/secret/data/p/e/x", True),
        # native: the SDK reads these answers
        ("/v1/auth/token/self", False),
        ("/v1/auth/token/renew", False),
        ("/v1/auth/token/revoke-self", False),
        ("/v1/auth/login", False),
        # Vault's own login paths answer Vault's errors (a refused login is its 400)
        ("/v1/auth/approle/login", True),
        ("/v1/auth/userpass/login/u", True),
        ("/v1/tokens", False),
        ("/v1/sys/health", False),
    ],
)
def test_which_paths_are_vault_compatible(path: str, compat: bool) -> None:
    assert is_compat_path(path) is compat


class NoBarrier:
    """Nothing spooled: the audit barrier lets every answer out at once."""

    async def wait(self) -> None:
        return None


async def _refuse(scope: Scope, receive: Receive, send: Send) -> None:
    """An ASGI app whose every request fails authentication (as ``caller()`` raises)."""
    raise errors.AuthenticationFailed("invalid or expired token")


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/v1/auth/token/lookup-self", 403, {"errors": ["permission denied"]}),
        ("/v1/secret/data/p/e/x", 403, {"errors": ["permission denied"]}),
        ("/v1/auth/token/self", 401, None),
        ("/v1/auth/approle/login", 403, {"errors": ["permission denied"]}),
        ("/v1/auth/password/login", 401, None),
    ],
)
def test_the_middleware_answers_each_path_in_its_shape(
    path: str, status: int, body: dict[str, list[str]] | None
) -> None:
    metrics = Metrics(scope_labels=False, cache_counts=lambda: (0, 0))
    wrapped = RequestMiddleware(_refuse, metrics=metrics, barrier=NoBarrier())  # type: ignore[arg-type]
    r = TestClient(wrapped).get(path)  # no lifespan: the app answers requests only
    assert r.status_code == status
    if body is not None:
        assert r.json() == body
    else:
        error = json.loads(r.content)["error"]
        assert error["code"] == errors.AuthenticationFailed.code
