"""One test double of :class:`~sealbox.rotation.interface.RotationContext` for rotator unit
tests: the values a step sees, the secrets it may read (each read logged), its notes.
:func:`_conforms` makes mypy check it against the protocol, so a new member of the
protocol fails here rather than in each test's own copy."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

from sealbox.errors import InvalidInput, NotFound
from sealbox.model import SecretRef, SecretValue
from sealbox.rotation.interface import RotationContext

DEFAULT_REF = SecretRef("payments", "prod", "TOKEN")


class FakeContext:
    def __init__(
        self,
        options: Mapping[str, str],
        *,
        pending: SecretValue | None = None,
        current: SecretValue | None = None,
        previous: SecretValue | None = None,
        secrets: Mapping[str, SecretValue] | None = None,
        ref: SecretRef = DEFAULT_REF,
        dry_run: bool = False,
    ) -> None:
        self.ref = ref
        self.rotation_id = "rot_test000001"
        self.options = options
        self.dry_run = dry_run
        self.current = current
        self.previous = previous
        self._pending = pending
        self._secrets = dict(secrets or {})
        self.state: MutableMapping[str, str] = {}
        self.notes: list[str] = []
        #: The paths the step read through ``secret`` (the engine audits those reads).
        self.read: list[str] = []

    @property
    def pending(self) -> SecretValue:
        if self._pending is None:
            raise InvalidInput("no pending value before set")
        return self._pending

    def secret(self, path: str) -> SecretValue:
        self.read.append(path)
        if path not in self._secrets:
            raise NotFound(f"secret {path} does not exist")
        return self._secrets[path]

    def note(self, message: str) -> None:
        self.notes.append(message)


def _conforms(ctx: FakeContext) -> RotationContext:
    return ctx
