"""``run --creds``: the spec's parsing, and the renewer's schedule (a fake lease service
and explicit times: no clock is waited on)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sealbox.cli import run_core
from sealbox.errors import Conflict, InvalidInput
from sealbox.model import SecretValue
from sealbox.wire.leases import Credential, LeaseInfo


def test_creds_specs() -> None:
    assert run_core.parse_creds(None) == []
    assert run_core.parse_creds("DB=p/e/r, RO=p/e/s") == [("DB", "p/e/r"), ("RO", "p/e/s")]
    for bad in ("DB", "=p/e/r", "1DB=p/e/r", "DB=", "A-B=p/e/r"):
        with pytest.raises(InvalidInput, match="VAR=project/env/role"):
            run_core.parse_creds(bad)
    with pytest.raises(InvalidInput, match="twice"):
        run_core.parse_creds("DB=p/e/r,DB=p/e/s")


def _cred(ttl: float, max_ttl: float) -> Credential:
    now = datetime.now(UTC)
    lease = LeaseInfo(
        "creds/p/e/r/x", "p/e/r", "u", "me", None, now.isoformat(),
        (now + timedelta(seconds=ttl)).isoformat(),
        (now + timedelta(seconds=max_ttl)).isoformat(), None, 0, None, "",
    )  # fmt: skip
    return Credential(lease, "u", SecretValue("pw"))


class FakeLeases:
    def __init__(self, refuse: bool = False) -> None:
        self.renewed: list[timedelta | None] = []
        self.refuse = refuse

    def renew(self, lease_id: str, *, increment: timedelta | None = None) -> LeaseInfo:
        if self.refuse:
            raise Conflict("refused")
        self.renewed.append(increment)
        return _cred(60, 3600).lease


def test_the_renewer_renews_at_two_thirds_by_the_first_ttl(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    said: list[str] = []
    monkeypatch.setattr(run_core, "_report", said.append)
    fake = FakeLeases()
    renewer = run_core._Renewer(fake, [_cred(60, 3600)])  # type: ignore[arg-type]
    start = min(renewer.due.values()) - 40
    renewer.tick(start + 39)
    assert fake.renewed == []
    renewer.tick(start + 41)
    assert fake.renewed == [timedelta(seconds=60)]
    renewer.tick(start + 42)
    assert len(fake.renewed) == 1  # next at +40 s from the renewal
    assert said == []


def test_the_renewer_stops_at_the_max_ttl_and_on_refusal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    said: list[str] = []
    monkeypatch.setattr(run_core, "_report", said.append)
    near = run_core._Renewer(FakeLeases(), [_cred(60, 0.5)])  # type: ignore[arg-type]
    near.tick(max(near.due.values()))
    assert near.due == {} and "reached its max TTL" in said[0]
    refused = run_core._Renewer(FakeLeases(refuse=True), [_cred(60, 3600)])  # type: ignore[arg-type]
    refused.tick(max(refused.due.values()))
    assert refused.due == {} and "could not be renewed (refused)" in said[1]
