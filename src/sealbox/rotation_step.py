"""What one step of one rotation may see and keep: the engine's
:class:`~sealbox.rotation.interface.RotationContext`, built per step."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Protocol

from sealbox.errors import InvalidInput
from sealbox.model import SecretRef, SecretValue
from sealbox.rotation_records import MAX_NOTE, MAX_NOTES
from sealbox.storage.rows import RotationRow


class Values(Protocol):
    """Where a step's values come from (the engine: opened versions, audited reads)."""

    def value_of(self, ref: SecretRef, version: int) -> SecretValue: ...
    def previous_of(self, ref: SecretRef, from_version: int | None) -> SecretValue | None: ...
    def read(self, path: str) -> SecretValue: ...


class StepContext:
    """What one step of one rotation may see and keep (:class:`RotationContext`)."""

    def __init__(
        self, values: Values, row: RotationRow, options: Mapping[str, str], state: dict[str, str]
    ) -> None:
        self._values = values
        self._row = row
        self._options = dict(options)
        self._state = state
        self.notes: list[str] = []
        self._current: SecretValue | None = None
        self._previous: tuple[SecretValue | None] | None = None
        self._pending: SecretValue | None = None

    @property
    def ref(self) -> SecretRef:
        return SecretRef(self._row.project, self._row.env, self._row.name)

    @property
    def rotation_id(self) -> str:
        return self._row.id

    @property
    def options(self) -> Mapping[str, str]:
        return self._options

    @property
    def dry_run(self) -> bool:
        return self._row.dry_run

    @property
    def current(self) -> SecretValue | None:
        if self._current is None and self._row.from_version:
            self._current = self._values.value_of(self.ref, self._row.from_version)
        return self._current

    @property
    def previous(self) -> SecretValue | None:
        if self._previous is None:
            self._previous = (self._values.previous_of(self.ref, self._row.from_version),)
        return self._previous[0]

    @property
    def pending(self) -> SecretValue:
        if self._pending is None:
            if not self._row.pending_version:
                raise InvalidInput(f"rotation {self._row.id} has no pending value yet")
            self._pending = self._values.value_of(self.ref, self._row.pending_version)
        return self._pending

    @property
    def state(self) -> MutableMapping[str, str]:
        return self._state

    def secret(self, path: str) -> SecretValue:
        return self._values.read(path)

    def note(self, message: str) -> None:
        if len(self.notes) < MAX_NOTES:
            self.notes.append(" ".join(str(message).split())[:MAX_NOTE])

    def use(self, row: RotationRow) -> None:
        self._row = row
