"""One summary for the standing suites (crash, fuzz, access, canary, tamper).

Each suite counts what it survived or found with ``record("crash", "kill iterations", 1)``;
``pytest_terminal_summary`` in ``tests/conftest.py`` prints the totals at the end of the run,
so CI's log says what the suites covered, not just that they passed.
"""

from __future__ import annotations

from collections import defaultdict

_COUNTS: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))


def record(suite: str, what: str, n: int = 1) -> None:
    """Add ``n`` to the counter ``what`` of ``suite``."""
    _COUNTS[suite][what] += n


def lines() -> list[str]:
    """The summary as printable lines, suites and counters in a stable order."""
    out: list[str] = []
    for suite in sorted(_COUNTS):
        parts = ", ".join(f"{what}: {n}" for what, n in sorted(_COUNTS[suite].items()))
        out.append(f"{suite}: {parts}")
    return out
