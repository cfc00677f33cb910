"""Whole-vault views for the leak scanner and ``sealbox doctor``: ``vault.inventory``.

Each opens every stored version in memory (admin on ``sys/vault``) and hands out paths,
version numbers and, for the scanner alone, the values themselves as :class:`SecretValue`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from sealbox.auth.policy import Capability
from sealbox.context import CoreService
from sealbox.errors import SealboxError
from sealbox.model import SecretValue


class KnownValue(NamedTuple):
    """A managed value, for the scanner's exact-leak detector."""

    path: str
    version: int
    value: SecretValue


class ValueMatch(NamedTuple):
    """A candidate value that equals a managed secret's version (for doctor)."""

    candidate: int
    path: str
    version: int


class Inventory(CoreService):
    """Every version of one vault, opened in memory, for one caller."""

    __slots__ = ()

    def known_values(self) -> Iterator[KnownValue]:
        """Every version of every secret, decrypted in memory (for the leak scanner)."""
        self._authorize(Capability.ADMIN, "sys/vault", "scan.values")
        self._record("scan.values", "*")
        for row in self._storage.iter_versions():
            yield KnownValue(f"{row.project}/{row.env}/{row.name}", row.version, self._open(row))

    def find_values(self, candidates: list[str]) -> list[ValueMatch]:
        """Which candidates equal a stored version (constant-time compares; for doctor)."""
        import hmac

        encoded = [c.encode() for c in candidates]
        matches = []
        for known in self.known_values():
            raw = known.value.reveal_bytes()
            for i, cand in enumerate(encoded):
                if cand and hmac.compare_digest(cand, raw):
                    matches.append(ValueMatch(i, known.path, known.version))
        return matches

    def verify(self) -> list[str]:
        """Open every version; the problems found (no values, only paths and versions)."""
        self._authorize(Capability.ADMIN, "sys/vault", "verify")
        problems = list(self._storage.check())
        checked = 0
        for row in self._storage.iter_versions():
            checked += 1
            try:
                self._open(row)
            except SealboxError as exc:
                problems.append(exc.message)
        self._record("verify", "*", reason=f"{checked} versions, {len(problems)} problems")
        return problems
