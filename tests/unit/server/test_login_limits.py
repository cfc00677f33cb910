"""Login limits (issue 10, defect 4), with a fake clock: exact numbers, no sleeping."""

from __future__ import annotations

import pytest

from sealbox.errors import AuthenticationFailed
from sealbox.server.auth import RateLimiter
from sealbox.server.errors import TooManyRequests


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limits(clock: Clock) -> RateLimiter:
    return RateLimiter(5, 10, clock)  # the defaults: login_rate 5, login_burst 10


def fail(limits: RateLimiter, who: str = "identity:alice", source: str = "10.0.0.1") -> None:
    with pytest.raises(AuthenticationFailed), limits.attempt(who, source):
        raise AuthenticationFailed("invalid name or password")


def succeed(limits: RateLimiter, who: str = "identity:alice", source: str = "10.0.0.1") -> None:
    with limits.attempt(who, source):
        pass


def refused(limits: RateLimiter, who: str = "identity:alice", source: str = "10.0.0.1") -> int:
    with pytest.raises(TooManyRequests) as info:
        limits.admit(who, source)
    return info.value.retry_after


def test_a_pair_backs_off_exponentially_after_five_free_failures(
    limits: RateLimiter, clock: Clock
) -> None:
    for _ in range(5):
        fail(limits)
    fail(limits)  # the first failure past the free ones: 1 s
    assert refused(limits) == 1
    waits = []
    for _ in range(4):
        clock.now += 60  # enough for any wait below, and refills the source's budget
        fail(limits)
        waits.append(refused(limits))
    assert waits == [2, 4, 8, 16]
    # Refusals spend nothing: asking again while blocked does not lengthen the wait.
    assert refused(limits) == 16
    clock.now += 15.5
    assert refused(limits) == 1
    clock.now += 0.5
    succeed(limits)  # a success resets the pair
    fail(limits)
    succeed(limits)


def test_the_back_off_is_capped_and_forgotten_after_an_hour(
    limits: RateLimiter, clock: Clock
) -> None:
    for _ in range(20):
        clock.now += 901
        fail(limits)
    assert refused(limits) == 900
    clock.now += 3601
    for _ in range(5):
        fail(limits)  # five free failures again


def test_a_guesser_does_not_block_the_victim_elsewhere_or_its_neighbours(
    limits: RateLimiter,
) -> None:
    for _ in range(6):
        fail(limits, source="203.0.113.7")
    refused(limits, source="203.0.113.7")
    succeed(limits, source="198.51.100.2")  # the victim, from another address
    succeed(limits, who="identity:bob", source="203.0.113.7")  # a neighbour


def test_a_source_spraying_many_identities_runs_out_of_failures(
    limits: RateLimiter, clock: Clock
) -> None:
    for n in range(10):
        fail(limits, who=f"identity:user{n}")
    assert refused(limits, who="identity:someone-else") == 12  # 60 s / 5
    succeed(limits, who="identity:someone-else", source="10.0.0.2")  # other sources are fine
    clock.now += 12
    fail(limits, who="identity:user10")
    refused(limits, who="identity:user11")


def test_successes_spend_no_failure_budget_but_attempts_are_bounded(
    limits: RateLimiter, clock: Clock
) -> None:
    for n in range(10):
        fail(limits, who=f"identity:guessed{n}")  # the address's failure budget, spent
    clock.now += 60  # five failures' worth refilled
    for _ in range(30):
        succeed(limits)  # all 30 of the per-address attempts, none a failure
    # The Argon2 guard: one address gets 30 attempts at once, then one a second.
    assert refused(limits) == 1
    clock.now += 1
    succeed(limits)
    clock.now += 1
    fail(limits, who="identity:guessed0")  # the failure budget was still there
