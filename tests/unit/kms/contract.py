"""The KeyProvider contract (DESIGN.md invariant 5): every provider family passes it.

A family joins by adding a :class:`Case` to :data:`CASES` in ``tests/unit/kms/conftest.py``
— a fixture that yields an open provider (a SoftHSM token, a ``bao server -dev``, a moto
server …) plus one that cannot be reached — and every test here runs against it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import NamedTuple

from sealbox.kms.interface import KeyProvider


class Case(NamedTuple):
    """How to get one family's provider for the contract tests."""

    kind: str
    #: An open, working provider (yielded; closed after the test).
    provider: Callable[[], AbstractContextManager[KeyProvider]]
    #: The same family pointed at something that does not answer (a closed port, a
    #: missing token) — or None where no such thing exists (the local provider).
    unreachable: Callable[[], AbstractContextManager[KeyProvider]] | None = None
    #: A second provider of the family with another key (blobs must not cross).
    other: Callable[[], AbstractContextManager[KeyProvider]] | None = None


Provided = Iterator[KeyProvider]
