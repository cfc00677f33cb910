"""The random rotator: its policy, and its test step catching a value off policy."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from tests.rotation_fake import FakeContext

from sealbox.errors import InvalidInput, RotationFailed
from sealbox.model import SecretValue
from sealbox.rotation.random import ALPHABETS, RandomRotator
from sealbox.rotation.registry import rotator


def test_registry_finds_random() -> None:
    assert isinstance(rotator("random"), RandomRotator)
    with pytest.raises(InvalidInput, match="no rotator named 'nope'"):
        rotator("nope")


@pytest.mark.parametrize("alphabet", sorted(ALPHABETS))
def test_values_follow_the_policy(alphabet: str) -> None:
    r = RandomRotator()
    ctx = Ctx({"length": "40", "alphabet": alphabet, "prefix": "sk_"})
    values = {r.create(ctx).reveal() for _ in range(50)}
    assert len(values) == 50
    for v in values:
        assert v.startswith("sk_") and len(v) == 43
        assert set(v[3:]) <= set(ALPHABETS[alphabet])
        r.test(Ctx(ctx.options, SecretValue(v)))


def test_test_step_refuses_a_value_off_policy() -> None:
    with pytest.raises(RotationFailed, match="does not match its policy"):
        RandomRotator().test(Ctx({"length": "16"}, SecretValue("short")))


@pytest.mark.parametrize(
    "options",
    [{"length": "8"}, {"length": "x"}, {"alphabet": "emoji"}, {"prefix": "a b"}, {"size": "3"}],
)
def test_bad_options_are_refused_at_configure_time(options: dict[str, str]) -> None:
    with pytest.raises(InvalidInput):
        RandomRotator().check(options)


def Ctx(options: Mapping[str, str], pending: SecretValue | None = None) -> FakeContext:
    return FakeContext(options, pending=pending)
