"""The incident report's codec (``wire/incident.py``): the report's own JSON, both ways,
and a clear :class:`WireError` naming the field for anything else."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from sealbox.model import Classification, IncidentReport, Reader, SecretMeta, SecretRef
from sealbox.wire.fields import WireError
from sealbox.wire.incident import decode_report, encode_report

REPORT = IncidentReport(
    ref=SecretRef("payments", "prod", "STRIPE_KEY"),
    reason="INC-42 key in a log",
    at=datetime(2026, 12, 1, 3, 0, tzinfo=UTC),
    current_version=3,
    versions=((1, "revoked"), (2, "previous"), (3, "current"), (4, None)),
    affected=(1, 2),
    value_matched=True,
    also_holding=(("payments/dev/COPY", 1),),
    readers=(
        Reader("checkout-api", "api", None, "10.0.0.7", 4, "2026-11-01", "2026-11-30", (1, 2)),
        Reader("ann", "cli", "laptop", None, 1, "2026-11-02", "2026-11-02", (2,)),
    ),
    meta=SecretMeta(
        owner="payments-team",
        contact="oncall@example.com",
        upstream="stripe",
        classification=Classification.CRITICAL,
        depends_on=("checkout-api", "billing-worker"),
    ),
    redeploy=("checkout-api", "billing-worker", "ann"),
    actions=("rotated: version 3 is current (rot_abcdef)", "revoked versions 1, 2"),
)


def _wired(body: dict[str, Any]) -> Any:
    return json.loads(json.dumps(body))


def test_a_report_round_trips_as_its_own_json() -> None:
    body = _wired(encode_report(REPORT))
    assert body == _wired(REPORT.to_json())
    assert decode_report(body) == REPORT


def test_an_assessment_without_a_value_or_readers_round_trips() -> None:
    plain = REPORT._replace(
        value_matched=None, also_holding=(), readers=(), actions=(), meta=SecretMeta()
    )
    assert decode_report(_wired(encode_report(plain))) == plain


GOOD = _wired(encode_report(REPORT))


@pytest.mark.parametrize(
    ("body", "names"),
    [
        pytest.param([GOOD], "not a JSON object", id="not an object"),
        pytest.param({**GOOD, "secret": "a/b"}, "'secret'", id="bad path"),
        pytest.param({k: v for k, v in GOOD.items() if k != "reason"}, "'reason'", id="reason"),
        pytest.param({**GOOD, "at": "yesterday"}, "'at'", id="time"),
        pytest.param({**GOOD, "affected_versions": ["1"]}, "'affected_versions'", id="versions"),
        pytest.param({**GOOD, "value_matched": "yes"}, "'value_matched'", id="matched"),
        pytest.param({**GOOD, "classification": "top"}, "'classification'", id="class"),
        pytest.param({**GOOD, "readers": [{"identity": "a"}]}, "'source'", id="reader"),
        pytest.param({**GOOD, "also_holding": [{"secret": "x"}]}, "'version'", id="holder"),
        pytest.param({**GOOD, "redeploy": "everyone"}, "'redeploy'", id="redeploy"),
    ],
)
def test_a_malformed_report_is_a_wire_error_naming_the_field(body: Any, names: str) -> None:
    with pytest.raises(WireError, match=names):
        decode_report(body)
