"""Standing suite "fuzz": schemathesis against the served OpenAPI document, in-process.

Every documented operation is fuzzed (examples, coverage and fuzzing phases; positive and
negative data) against a fresh app per operation, with an admin token so authenticated
operations get past 401. Checks: no 5xx, every status and content type is documented,
every body matches its schema, schema-valid requests are accepted, undocumented methods get
405 with an ``Allow`` that names the documented ones, and authenticated operations refuse
requests without a token. Not checked: that every schema-INVALID request is refused — the
document is deliberately stricter than the server in places (a KV key is documented up to
the 21 characters that always fit a secret name; ``null`` for an optional field is taken
as absent), so a refusal there is not promised.

Reproducible: a fixed seed (each operation derives its own from it), no example database.
``SEALBOX_FUZZ_EXAMPLES`` (default 60 per operation) and ``SEALBOX_FUZZ_SEED`` change them
for a longer or different local run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from starlette.applications import Starlette
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send
from tests.fuzz.served import served_app, served_document
from tests.standing_summary import record

SEED = int(os.environ.get("SEALBOX_FUZZ_SEED", "20261201"))
MAX_EXAMPLES = int(os.environ.get("SEALBOX_FUZZ_EXAMPLES", "60"))
BASE_URL = "http://localhost"

#: Operations whose 400 depends on the target, not on the request's form: the schema
#: cannot say "not yourself" or "a machine". (method, path, why)
STATE_DEPENDENT_400 = (
    ("DELETE", "/v1/identities/{name}", "an identity cannot delete itself"),
    ("POST", "/v1/identities/{name}/secret-ids", "only a machine has secret ids"),
    *(
        (
            method,
            "/v1/database/roles/{project}/{env}/{role}",
            "statements must use {{name}} and {{password}}; the TTL within the max TTL",
        )
        for method in ("POST", "PUT")
    ),
    ("PUT", "/v1/sys/leases/renew", "a renewal within the lease's max TTL"),
    *(
        (method, "/v1/sys/unseal", "a share must be one of the vault's (with its checksum)")
        for method in ("POST", "PUT")
    ),
    (
        "GET",
        "/v1/secrets/{project}/{env}/{name}",
        "version and stage are exclusive (OpenAPI cannot say two parameters exclude each other)",
    ),
)
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429"]

CONFIG = SchemathesisConfig.from_dict(
    {
        "operations": [
            {
                "include-method": method,
                "include-path": path,
                "checks": {"positive_data_acceptance": {"expected-statuses": [*ACCEPTED, "400"]}},
            }
            for method, path, _ in STATE_DEPENDENT_400
        ],
        "seed": SEED,
        # An events stream never ends by itself: the snapshot event is enough to check.
        "max-stream-events": 1,
        "generation": {"max-examples": MAX_EXAMPLES},
        # Stateful links are not declared; each operation is fuzzed on its own.
        "phases": {"stateful": {"enabled": False}},
        "checks": {"negative_data_rejection": {"enabled": False}},
    }
)


class CurrentApp:
    """The ASGI app the schema's operations call: the one the running test built."""

    app: Starlette | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "no served app: the fixture did not run"
        await self.app(scope, receive, send)


CURRENT = CurrentApp()
schema = schemathesis.openapi.from_dict(served_document(), config=CONFIG)
schema.app = CURRENT


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    with served_app(tmp_path) as (app, token):
        CURRENT.app = app
        try:
            yield token
        finally:
            CURRENT.app = None


def test_the_fuzzed_document_is_the_served_one(tmp_path: Path) -> None:
    with served_app(tmp_path) as (app, _), TestClient(app) as client:
        assert client.get("/v1/openapi.json").json() == served_document()


@pytest.mark.slow
@schema.parametrize()
@settings(
    database=None,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
def test_fuzz_the_served_api(case: Any, served: str) -> None:
    record("fuzz", "schemathesis cases")
    case.call_and_validate(base_url=BASE_URL, headers={"Authorization": f"Bearer {served}"})
