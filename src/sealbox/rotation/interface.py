"""What a rotator is: the steps of a rotation, against one upstream system.

The core runs a rotation as AWS Secrets Manager made standard: **create** (the new value,
stored as the secret's pending version), **set** (the upstream system accepts it),
**test** (the pending value works upstream), **finish** (pending becomes current,
current becomes previous). The core records each step before and after, under the
rotation's id, and owns every version and stage: a rotator never writes the vault. It
knows only its upstream system, and each of its steps is idempotent, because after a
crash the core runs the interrupted step again with the same pending value.

:meth:`Rotator.undo` makes the upstream system accept again what it accepted before
``set``: the core calls it to end a rehearsal (``sealbox rotate --dry-run``) and to
cancel a rotation whose ``set`` may have run.

A step that cannot reach or is refused by the upstream system raises
:class:`~sealbox.errors.UpstreamError`; a ``test`` that finds the pending value not
working raises :class:`~sealbox.errors.RotationFailed`. Either message says why, and never
holds a value.

A rotator that runs programs on the vault's host says so (``runs_programs(options)``):
the core then requires ``admin`` on ``sys/rotators/<name>`` to configure a secret with
it, so that a token allowed to rotate a secret cannot make the server run a program of
its choice. A third party adds a rotator by declaring a factory ``Callable[[], Rotator]``
in the entry points group ``sealbox.rotators`` (:mod:`sealbox.rotation.registry`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sealbox.model import SecretRef, SecretValue


class Step(enum.StrEnum):
    """A step of a rotation, in the order the core runs them (``undo`` ends a rehearsal
    or a cancel)."""

    CREATE = "create"
    SET = "set"
    TEST = "test"
    FINISH = "finish"
    UNDO = "undo"


class RotationContext(Protocol):
    """What one step of one rotation may see and keep. Built by the core per step."""

    @property
    def ref(self) -> SecretRef:
        """The secret being rotated."""
        ...

    @property
    def rotation_id(self) -> str:
        """The rotation's id (AWS's ClientRequestToken): the same across retried steps."""
        ...

    @property
    def options(self) -> Mapping[str, str]:
        """The secret's rotation options (not secret: other secrets are named by path,
        e.g. ``admin=payments/prod/PG_ADMIN_URL``)."""
        ...

    @property
    def dry_run(self) -> bool:
        """A rehearsal: the core will call :meth:`Rotator.undo` after ``test``."""
        ...

    @property
    def current(self) -> SecretValue | None:
        """The current value (None: the secret has none yet)."""
        ...

    @property
    def previous(self) -> SecretValue | None:
        """The value before the current one, while it is still staged ``previous`` (None:
        there is none, or it was archived or revoked). ``undo`` of a rotator whose
        upstream system kept it (the idle login of alternating users) puts it back."""
        ...

    @property
    def pending(self) -> SecretValue:
        """The value being rotated in (from ``set`` on; InvalidInput before)."""
        ...

    @property
    def state(self) -> MutableMapping[str, str]:
        """The rotator's own notes for this rotation (which user of an alternating pair
        takes the new password, say), kept with the rotation's record across steps and
        crashes. Not secret: stored in plain text, shown by ``rotation status``."""
        ...

    def secret(self, path: str) -> SecretValue:
        """Another secret's current value (the admin credentials a rotator uses), read
        as the caller of the rotation: authorised and audited like any read."""
        ...

    def note(self, message: str) -> None:
        """A line for the step's report and the rotation's history (never a value)."""
        ...


#: The policy path under which a rotator that runs programs on the vault's host must be
#: granted ``admin`` before a secret may be configured to use it (:func:`runs_programs`).
PRIVILEGED_PATH = "sys/rotators"


def runs_programs(rotator: object, options: Mapping[str, str]) -> bool:
    """Whether ``rotator`` with ``options`` runs programs on the vault's host (the
    ``command`` rotator; ``webhook`` with its set/test/undo programs). A rotator says so by
    a method ``runs_programs(options) -> bool``; one without it runs none."""
    check = getattr(rotator, "runs_programs", None)
    return bool(check(options)) if callable(check) else False


class Rotator(Protocol):
    """One kind of upstream system. Stateless: everything a step needs is in its context."""

    #: The name secrets configure (``sealbox rotation configure NAME --method <name>``).
    name: str

    def check(self, options: Mapping[str, str]) -> None:
        """Refuse options this rotator cannot use (InvalidInput naming the option), when
        a secret is configured: a mistake is found then, not at 3 a.m. on its due date."""
        ...

    def create(self, ctx: RotationContext) -> SecretValue:
        """The new value. The core stores it once per rotation id, so a retried
        ``create`` after a crash is not called again once its version is stored."""
        ...

    def set(self, ctx: RotationContext) -> None:
        """Make the upstream system accept ``ctx.pending``. Idempotent."""
        ...

    def test(self, ctx: RotationContext) -> None:
        """Prove ``ctx.pending`` works upstream (log in with it); RotationFailed if not."""
        ...

    def finish(self, ctx: RotationContext) -> None:
        """After the pending value became current: anything to retire upstream. Idempotent."""
        ...

    def undo(self, ctx: RotationContext) -> None:
        """Make the upstream system accept again what it accepted before ``set`` (``ctx.current``).
        Idempotent; a rotator whose system cannot go back says so in its docs."""
        ...
